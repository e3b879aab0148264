#include "quant/detail/exact_top_k.h"

#include <cblas.h>

#include <algorithm>
#include <numeric>

namespace m3vdb::quant::detail {

void ExactTopK(Metric metric, const float* queries, size_t nq, const float* docs, size_t n, size_t d, size_t k,
               const int64_t* exclude, uint32_t* ids, float* scores) {
  const size_t block = 128;
  std::vector<float> norms(n, 0.0f), s(block * n);
  if (metric == Metric::kL2)
    for (size_t j = 0; j < n; ++j) norms[j] = cblas_sdot(static_cast<int>(d), docs + j * d, 1, docs + j * d, 1);
  for (size_t q0 = 0; q0 < nq; q0 += block) {
    const size_t b = std::min(block, nq - q0);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(b), static_cast<int>(n), static_cast<int>(d),
                1.0f, queries + q0 * d, static_cast<int>(d), docs, static_cast<int>(d), 0.0f, s.data(),
                static_cast<int>(n));
    // The rows' selections are independent: one per OpenMP task.
#pragma omp parallel
    {
      std::vector<uint32_t> order(n);
#pragma omp for schedule(dynamic, 8)
      for (std::ptrdiff_t is = 0; is < static_cast<std::ptrdiff_t>(b); ++is) {
        const auto i = static_cast<size_t>(is);
        float* row = s.data() + i * n;
        if (metric == Metric::kL2) {
          const float* q = queries + (q0 + i) * d;
          const float qn = cblas_sdot(static_cast<int>(d), q, 1, q, 1);
          for (size_t j = 0; j < n; ++j) row[j] = 2 * row[j] - norms[j] - qn;
        }
        std::iota(order.begin(), order.end(), 0u);
        size_t m = n;
        if (exclude && exclude[q0 + i] >= 0) {
          std::swap(order[static_cast<size_t>(exclude[q0 + i])], order[n - 1]);
          --m;
        }
        const size_t kk = std::min(k, m);
        auto better = [row](uint32_t a, uint32_t c) { return row[a] > row[c] || (row[a] == row[c] && a < c); };
        std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(kk),
                          order.begin() + static_cast<std::ptrdiff_t>(m), better);
        for (size_t r = 0; r < k; ++r) {
          const size_t out = (q0 + i) * k + r;
          ids[out] = r < kk ? order[r] : order[kk - 1];
          scores[out] = row[ids[out]];
        }
      }
    }
  }
}

}  // namespace m3vdb::quant::detail
