// CPU math kernels of the encoder: GEMM with bias split over threads (OpenBLAS underneath),
// row-wise LayerNorm with residual and exact GELU (softmax: common/vector_math.h). Vectorizable polynomial exp/erf
// (Cephes expf, Abramowitz-Stegun 7.1.26 erf: |error| < 2e-7), compiled for AVX2+FMA with a
// generic fallback chosen at load time. Work is split over the caller's WorkerTeam.
#pragma once

#include <cstddef>

#include "embedder/detail/model.h"
#include "embedder/detail/worker_team.h"

namespace m3vdb::embedder {

// y[m, l.out] = x[m, l.in] * W^T + b.
void LinearForward(const float* x, size_t m, const Linear& l, float* y, WorkerTeam& team);

// x[r] = LayerNorm(x[r] + add[r]) for r < rows (add may be null), width n.
void AddLayerNorm(float* x, const float* add, size_t rows, size_t n, const LayerNormWeights& ln, float eps,
                  WorkerTeam* team);

// x = 0.5 x (1 + erf(x / sqrt 2)), size n.
void GeluInPlace(float* x, size_t n, WorkerTeam& team);

// v /= max(||v||, 1e-12), size n (torch.nn.functional.normalize).
void NormalizeL2(float* v, size_t n);

}  // namespace m3vdb::embedder
