// Vectorized float kernels shared by the encoder (attention softmax, GELU) and the Distill-VQ
// trainer (soft code assignment). exp is the Cephes polynomial (relative error ~1e-7, inputs
// clamped to [-87, 88]). Compiled for AVX2+FMA with a generic fallback, chosen when the library
// loads (target_clones), never with -march=native. Pure functions of their arguments: callers
// may run them on disjoint buffers from any number of threads.
#pragma once

#include <cstddef>

namespace m3vdb {

// x[i] = exp(x[i]) for i in [0, n).
void ExpInPlace(float* x, size_t n);

// Each of `rows` rows of n floats becomes softmax(row) = exp(row - max) / sum, in place.
void SoftmaxRows(float* s, size_t rows, size_t n);

}  // namespace m3vdb
