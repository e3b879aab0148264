// One Distill-VQ step's forward and backward pass (SPECS.md §2.2-2.4), separated from the
// training loop so gradients can be checked against finite differences.
//
// For a batch of queries Q (b x d) and candidate documents X (c x d), all in the rotated
// space, with each document's IVF list fixed:
//   teacher  T = <q, x>            or -||q - x||^2
//   IVF      S_ivf = <q, c_l(x)>   or -||q - c_l(x)||^2
//   PQ       S_pq  = <q, x^>       or -||q - x^||^2,  x^ = c_l(x) + concat_j C_j[k_j]
// where k_j = argmin_k ||r_j - C_j[k]||^2 (r = x - c_l(x)) forward, and the backward pass uses the
// straight-through estimator a = onehot(k) - sg(p) + p with p = softmax_k(-||r_j - C_j[k]||^2 / tau_code).
// Losses are ListNet: mean over queries of -sum_j softmax(T/tau)_j log softmax(S/tau)_j.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "quant/codebooks.h"

namespace m3vdb::quant::detail {

struct StepInput {
  const float* queries = nullptr;  // b x d, rotated
  size_t b = 0;
  const float* docs = nullptr;     // c x d, rotated
  const uint32_t* lists = nullptr; // c: fixed IVF list of each document
  size_t c = 0;
  float tau = 1;                   // score temperature (teacher and student)
  float tau_code = 1;              // temperature of the soft code assignment (backward only)
};

struct StepOutput {
  double loss_pq = 0, loss_ivf = 0;
  std::vector<float> grad_pq;             // same layout as Codebooks::pq: the PQ loss
  std::vector<float> grad_centroids_ivf;  // nlist x d: the IVF loss (the caller weights it)
};

// Buffers reused from one step to the next. At Fashion-MNIST scale (64 queries, ~6,000
// candidates of 784 floats) a step needs over 100 MB of scratch; allocating it afresh every step
// cost more in page faults than the arithmetic.
struct StepWorkspace {
  // One per OpenMP thread: the subspace loops give each thread whole subspaces.
  struct Subspace {
    std::vector<float> dots, dp, dz_colsum, dzr;
  };
  std::vector<Subspace> threads;
  std::vector<float> resid, rnorm, recon, g_recon, cnorm;
  std::vector<float> teacher, s_pq, s_ivf, g_pq, g_ivf, coarse;
  std::vector<double> row_loss;
  std::vector<uint8_t> code;
};

// ListNet loss of one row and its gradient dL/ds (size n), for scores already divided by tau.
double ListNet(const float* teacher, const float* student, size_t n, float* grad_student);

// Forward + backward for one batch with the given codebooks. Runs on the OpenMP threads: whole
// subspaces per thread for the codeword work, fixed blocks of candidates for the score GEMMs, with
// OpenBLAS held at one thread meanwhile (its own two-thread GEMMs at these shapes were slower than
// one thread). The work is split the same way whatever the thread count, so the result is too.
void DistillStep(const Codebooks& books, const StepInput& in, StepOutput* out, StepWorkspace* workspace);
void DistillStep(const Codebooks& books, const StepInput& in, StepOutput* out);  // with its own workspace

}  // namespace m3vdb::quant::detail
