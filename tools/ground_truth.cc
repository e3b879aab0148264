#include "tools/ground_truth.h"

#include <cblas.h>

#include <algorithm>
#include <numeric>
#include <unordered_set>

namespace m3vdb::tools {

std::vector<std::vector<uint32_t>> ExactNeighbors(const Matrix& base, const Matrix& queries, size_t k, Metric metric) {
  const size_t n = base.rows, d = base.cols, block = 64;
  std::vector<float> base_norms(n);
  for (size_t i = 0; i < n; ++i) base_norms[i] = cblas_sdot(static_cast<int>(d), base.row(i), 1, base.row(i), 1);
  std::vector<std::vector<uint32_t>> out(queries.rows);
  std::vector<float> scores(block * n);
  std::vector<uint32_t> order(n);
  for (size_t q0 = 0; q0 < queries.rows; q0 += block) {
    const size_t nq = std::min(block, queries.rows - q0);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(nq), static_cast<int>(n), static_cast<int>(d),
                1.0f, queries.row(q0), static_cast<int>(d), base.data.data(), static_cast<int>(d), 0.0f, scores.data(),
                static_cast<int>(n));
    for (size_t qi = 0; qi < nq; ++qi) {
      float* s = scores.data() + qi * n;
      if (metric == Metric::kL2)  // ranking by -||q-d||^2 = 2<q,d> - ||d||^2 - ||q||^2 (last term constant)
        for (size_t j = 0; j < n; ++j) s[j] = 2 * s[j] - base_norms[j];
      std::iota(order.begin(), order.end(), 0u);
      auto better = [s](uint32_t a, uint32_t b) { return s[a] > s[b] || (s[a] == s[b] && a < b); };
      std::nth_element(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k - 1), order.end(), better);
      std::sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), better);
      out[q0 + qi].assign(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k));
    }
  }
  return out;
}

double RecallAtK(const std::vector<std::vector<uint32_t>>& found, const std::vector<std::vector<uint32_t>>& truth,
                 size_t k) {
  if (truth.empty()) return 0;
  double total = 0;
  for (size_t i = 0; i < truth.size(); ++i) {
    std::unordered_set<uint32_t> t(truth[i].begin(), truth[i].begin() + static_cast<std::ptrdiff_t>(std::min(k, truth[i].size())));
    size_t hits = 0;
    for (size_t j = 0; j < std::min(k, found[i].size()); ++j) hits += t.count(found[i][j]);
    total += static_cast<double>(hits) / k;
  }
  return total / truth.size();
}

}  // namespace m3vdb::tools
