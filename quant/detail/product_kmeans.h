// Product k-means: each subspace's sub-vectors clustered on their own (Lloyd's algorithm), as
// PQ trains its codebooks. The subspaces run on the OpenMP threads with single-threaded BLAS,
// so the result does not depend on the thread count.
#pragma once

#include <cstddef>
#include <cstdint>

namespace m3vdb::quant::detail {

struct ProductLayout {
  size_t d = 0;     // vector dimension
  size_t m = 0;     // subspaces (d % m == 0)
  size_t ksub = 0;  // centroids per subspace (<= 256)
  size_t dsub() const { return d / m; }
};

// Squared L2 norm of n floats.
inline float SquaredNorm(const float* x, size_t n) {
  float s = 0;
#pragma omp simd reduction(+ : s)
  for (size_t i = 0; i < n; ++i) s += x[i] * x[i];
  return s;
}

// The first k with the largest 2 dots[k] - cnorm[k] (the nearest of K codewords to a vector whose
// dot products with them are `dots` and their squared norms `cnorm`): one pass in 8 lanes.
size_t NearestCodeword(const float* dots, const float* cnorm, size_t K);

// Runs `iterations` Lloyd iterations on the n x d rows x, updating `centroids` (m x ksub x dsub,
// the layout of Codebooks::pq) in place. With `init` the centroids are first set to ksub
// distinct rows per subspace drawn with `seed` (n >= ksub). A cluster left empty takes half of
// the largest one (its centroid split in two slightly apart, as FAISS does). Returns the mean
// squared quantization error of the last assignment.
double ProductKMeans(const float* x, size_t n, const ProductLayout& layout, int iterations, bool init, uint64_t seed,
                     float* centroids);

// The reconstruction of each row by its nearest centroid per subspace (n x d into `out`); returns
// the mean squared error.
double ProductReconstruct(const float* x, size_t n, const ProductLayout& layout, const float* centroids, float* out);

}  // namespace m3vdb::quant::detail
