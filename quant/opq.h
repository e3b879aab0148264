// OPQ: the rotation R that makes product quantization of R x lose least (Ge et al., "Optimized
// Product Quantization", non-parametric version; what FAISS's OPQMatrix learns). Alternates PQ
// k-means on the rotated vectors with the orthogonal Procrustes rotation that maps the vectors
// closest to their PQ reconstructions, both on the centered vectors, from a random rotation (as
// FAISS does). Each subspace's k-means runs on one thread and is warm-started between updates,
// so it trains several times faster than FAISS's (Debian's generic build spends most of its 20
// minutes on 60,000 x 784 vectors in OpenMP hand-offs).
//
// Status: an experiment, not what `opq: true` trains. On Fashion-MNIST (M = 28) its rotation gave
// recall@10 0.7207 against FAISS's 0.7320, and an identity start that matched FAISS's PQ error on
// the raw vectors gave 0.6967 (docs/benchmarks.md, "m3vdb's own OPQ"). What it would need: the
// error of the IVF residuals, not of the raw vectors, as its objective. bench/opq_bench and
// ivfpq_bench's `m3vdb-opq` rows measure it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "m3vdb/status.h"

namespace m3vdb::quant {

struct OpqOptions {
  int iterations = 25;               // rotation updates
  int first_kmeans_iterations = 20;  // PQ k-means before the first update (from sampled rows)
  int kmeans_iterations = 2;         // PQ k-means before each later update (warm-started)
  size_t max_train_points = 65536;   // a sample of at most this many vectors (FAISS's default)
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
