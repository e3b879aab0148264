// OPQ: the rotation R that makes product quantization of R x lose least (Ge et al., "Optimized
// Product Quantization", non-parametric version; what FAISS's OPQMatrix learns). Alternates PQ
// k-means on the rotated vectors with the orthogonal Procrustes rotation that maps the vectors
// closest to their PQ reconstructions, both on the centered vectors (as FAISS does). m3vdb's own
// because FAISS's (Debian's generic build) took about 20 minutes on 60,000 x 784 vectors here,
// most of it in OpenMP hand-offs: this one keeps each subspace's k-means on one thread,
// warm-starts it from the previous rotation's codebooks, and starts from the identity rather
// than a random rotation (opq.cc says why).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "m3vdb/status.h"

namespace m3vdb::quant {

// Defaults from bench/opq_bench on Fashion-MNIST (M = 28): 40 updates on a 20,000-vector sample
// reach the PQ error of FAISS's OPQMatrix (50 updates on all 60,000: 6.01 against 6.00, identity
// 7.30) in a fraction of its time (docs/benchmarks.md).
struct OpqOptions {
  int iterations = 40;               // rotation updates
  int first_kmeans_iterations = 20;  // PQ k-means before the first update (from sampled rows)
  int kmeans_iterations = 2;         // PQ k-means before each later update (warm-started)
  size_t max_train_points = 20000;   // a sample of at most this many vectors
  uint64_t seed = 1234;
  // Called after each rotation update with the PQ's mean squared error before it.
  std::function<void(int iteration, int iterations, double pq_error)> on_iteration;
};

// The d x d rotation (row-major, x' = R x, orthonormal rows) for PQ with m subspaces of ksub
// codewords on the n x d vectors x. Deterministic for a fixed seed. Errors: m not dividing d, or
// fewer vectors than ksub.
Result<std::vector<float>> TrainOpqRotation(const float* x, size_t n, size_t d, size_t m, size_t ksub,
                                            const OpqOptions& options = {});

}  // namespace m3vdb::quant
