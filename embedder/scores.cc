#include <algorithm>
#include <limits>

#include "embedder/embedder.h"

namespace m3vdb::embedder {

float SparseScore(const SparseWeights& q, const SparseWeights& d) {
  float score = 0;
  size_t i = 0, j = 0;
  while (i < q.ids.size() && j < d.ids.size()) {
    if (q.ids[i] < d.ids[j]) ++i;
    else if (q.ids[i] > d.ids[j]) ++j;
    else score += q.weights[i++] * d.weights[j++];
  }
  return score;
}

float ColbertScore(std::span<const float> q, size_t q_rows, std::span<const float> d, size_t d_rows, size_t dim) {
  if (q_rows == 0 || d_rows == 0 || dim == 0 || q.size() < q_rows * dim || d.size() < d_rows * dim) return 0;
  double total = 0;
  for (size_t i = 0; i < q_rows; ++i) {
    float best = -std::numeric_limits<float>::infinity();
    for (size_t j = 0; j < d_rows; ++j) {
      float dot = 0;
      for (size_t k = 0; k < dim; ++k) dot += q[i * dim + k] * d[j * dim + k];
      best = std::max(best, dot);
    }
    total += best;
  }
  return static_cast<float>(total / static_cast<double>(q_rows));
}

}  // namespace m3vdb::embedder
