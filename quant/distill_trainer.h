// Distill-VQ (Xiao et al., SIGIR'22; SPECS.md §2): learns IVF centroids and PQ codebooks by
// distilling the exact scores, so that the quantized index keeps the ranking rather than
// minimising reconstruction error.
//
// Starting from k-means codebooks (quant/faiss_bridge.h), with every document's IVF list kept
// fixed, each step takes a batch of queries and, as candidates, the documents of the batch: the
// union of every query's teacher top-K (`candidates_per_query` of them, sampled when fewer than
// K), so each query ranks its own top-K plus every other query's documents (in-batch
// negatives), SPECS.md §2.3 "IB + Top-K". The
// PQ loss is ListNet between softmax(teacher/tau) and softmax(student/tau) with the student the
// score against the PQ reconstruction (straight-through codes); the IVF loss is the same with the
// student <q, centroid>, weighted so that it starts equal to the PQ loss. PQ codebooks use AdamW
// (linear warm-up over 10% of the steps, then linear decay), centroids SGD. After the last
// epoch every document is re-assigned to its nearest new centroid and re-encoded.
//
// Training queries: the caller's queries (a query log) when given. Otherwise documents sampled
// from the corpus act as queries, and each such query's own document is excluded from its
// teacher top-K: real queries are not in the corpus, and a self-match would teach nothing but
// "rank an exact duplicate first", which any quantizer already does.
//
// Best epoch: `validation_queries` of those queries are held out of training (the last ones of
// the shuffled pool, so the training sample is the same with or without them whenever the pool
// has room). Before the first epoch and after every epoch the trainer measures recall@10 on them
// as the index will search (lists re-assigned, codes re-encoded, `validation_nprobe` lists
// probed; quant/detail/held_out_recall.h) and returns the codebooks of the best measurement,
// the initial ones included: training cannot leave the index worse than its start on held-out
// queries (a learning rate too large for a given start drifts; docs/benchmarks.md). Ties keep
// the earlier epoch. Off (the last epoch returned) when validation_queries is 0 or the pool is
// too small to spare at least 10.
//
// The arithmetic of a step runs on a `DistillBackend`: the CPU one (OpenBLAS GEMMs, its threads)
// or the CUDA one (cuBLAS GEMMs and kernels, quant/cuda/), compiled when nvcc is found and chosen
// at run time only when a GPU exists (DistillDevice::kAuto, common/gpu.h). The loop itself (sampling,
// AdamW, SGD) runs on the host for both, so the two differ only in float rounding.
//
// Deterministic for a fixed seed, backend and thread count. A backend serves one trainer at a time.
//
// Checkpoints: with `on_epoch` set, the trainer hands out a DistillState (quant/distill_state.h)
// after every completed epoch except the last. A later DistillTrain given that state as
// `resume`, with the same documents, queries, options (seed included), backend and thread count,
// and the same *initial* codebooks in `books` (not the state's: the fixed IVF lists, tau_code
// and the learning rates are computed from the initial ones), recomputes what precedes the loop,
// then takes the codebooks, optimizer, random engine and step from the state and runs the
// remaining epochs: it ends with exactly the codebooks (bit for bit) an uninterrupted run gives.
// A state that does not fit the call (other shape, other initial codebooks, a recomputed tau,
// tau_code or learning rate that differs) is InvalidArgument, and `books` is left unchanged.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "quant/codebooks.h"
#include "quant/distill_state.h"

namespace m3vdb::quant {

// Where a training step runs. kAuto: CUDA when it was compiled in and a GPU is found, else CPU.
// kCuda without a usable GPU is an Unavailable error, never a silent fallback.
enum class DistillDevice { kAuto, kCpu, kCuda };

struct DistillOptions {
  int epochs = 4;
  size_t batch_queries = 64;
  size_t teacher_top_k = 100;
  size_t candidates_per_query = 100;  // of each query's teacher top-K put in the batch (top-1 always)
  size_t max_queries = 20000;   // training queries (sampled when more are available)
  float lr_pq = 0;              // AdamW learning rate of the PQ codebooks; 0 = auto: 0.015 x RMS of the
                                // codebooks (chosen on a validation split: 0.05 drifted below k-means
                                // over 4 epochs, 0.005 and 0.015 beat it; docs/benchmarks.md), and
                                // 0.005 x RMS from an OPQ start (0.015 drifted 1.2 points below OPQ,
                                // 0.005 gained 0.6 on a validation split)
  float lr_ivf = 0;             // SGD learning rate of the centroids; 0 = auto: each step moves the
                                // centroids by 1e-3 of their RMS (gradient-normalised SGD)
  float weight_decay = 0;
  float tau = 0;                // score temperature; 0 = auto: median over queries of (t_1 - t_10) / 3
  float tau_code = -1;          // temperature of the soft code assignment; > 0 as given (LibVQ uses 1);
                                // 0 = auto: the median over 1,000 sampled documents x M subspaces of
                                // the gap between the nearest and second-nearest codeword's squared
                                // distance; < 0 (default) = auto for unit_norm codebooks, 1 otherwise.
                                // Unit vectors have squared residual gaps about 1/100 of Fashion-MNIST
                                // pixels', so 1 makes their soft assignment nearly uniform: auto gained
                                // 2.1 points of R@10 there (validation split, M=28), while on raw
                                // pixels it hurt full runs at M=16 (docs/benchmarks.md).
  size_t validation_queries = 2000;  // held out to pick the best epoch (above); 0 = off
  size_t validation_nprobe = 0;      // lists probed for it; 0 = nlist / 16 (at least 1)
  uint64_t seed = 1234;
  DistillDevice device = DistillDevice::kAuto;  // used when DistillTrain is given no backend
  // Called after every step: (step, total steps, PQ loss, IVF loss).
  std::function<void(size_t, size_t, double, double)> on_step;
  // When set and true, training stops after the current step with Unavailable. A stop seen at the
  // last step of an epoch comes after that epoch's on_epoch.
  const std::atomic<bool>* stop = nullptr;
  // Called with each held-out recall@10: (epoch, recall), epoch 0 = the initial codebooks.
  std::function<void(int, double)> on_validation;
  // Called after every completed epoch but the last with the state to resume from (see above).
  std::function<void(const DistillState&)> on_epoch;
  // When set, training continues from this state (see above) instead of starting at epoch 0.
  const DistillState* resume = nullptr;
};

struct DistillReport {
  size_t steps = 0;
  double first_loss_pq = 0, last_loss_pq = 0;
  double first_loss_ivf = 0, last_loss_ivf = 0;
  float tau = 0, tau_code = 0, lr_pq = 0, lr_ivf = 0, w_ivf = 0;
  double seconds = 0;
  const char* backend = "";  // name() of the backend that ran the steps
  int resumed_epochs = 0;    // epochs taken from options.resume (0: started at epoch 0)
  size_t validation_queries = 0;          // held out (0: best-epoch selection was off)
  std::vector<double> validation_recall;  // recall@10 on them: [0] initial, [e] after epoch e
  int best_epoch = -1;                    // epoch of the returned codebooks (0: the initial ones); -1 when off
};

// The arithmetic of a training step, behind one interface so that a GPU backend can replace
// the CPU one. `Step` computes the losses and gradients of one batch (quant/detail/distill_step.h
// states the model): grad_pq in the layout of Codebooks::pq, grad_centroids_ivf (nlist x dim) the
// gradient of the IVF loss alone, both for unit loss weights.
class DistillBackend {
 public:
  virtual ~DistillBackend() = default;
  virtual const char* name() const = 0;
  struct Batch {
    const float* queries;   // b x d rotated
    size_t b;
    const float* docs;      // c x d rotated
    const uint32_t* lists;  // c
    size_t c;
    float tau, tau_code;
  };
  struct Gradients {
    double loss_pq = 0, loss_ivf = 0;
    std::vector<float> grad_pq, grad_centroids_ivf;
  };
  virtual Status Step(const Codebooks& books, const Batch& batch, Gradients* out) = 0;
};

// The OpenBLAS backend.
std::unique_ptr<DistillBackend> CreateCpuDistillBackend();
// The backend for `device` (see DistillDevice). Unavailable for kCuda when CUDA was not
// compiled in or no GPU is usable.
Result<std::unique_ptr<DistillBackend>> CreateDistillBackend(DistillDevice device);

// Trains `books` in place on documents `docs` (n x dim). `queries` (nq x dim) may be null
// (nq = 0): then documents are sampled as queries (see above). Without `backend` the one for
// options.device is created.
Result<DistillReport> DistillTrain(const float* docs, size_t n, const float* queries, size_t nq, Codebooks* books,
                                   const DistillOptions& options, DistillBackend* backend = nullptr);

}  // namespace m3vdb::quant
