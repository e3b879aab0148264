#include "index/colbert.h"

#include <cblas.h>

#include <algorithm>
#include <limits>

namespace m3vdb::index {

float MaxSim(std::span<const float> query, uint32_t rows_q, std::span<const float> doc, uint32_t rows_d,
             uint32_t width, std::vector<float>* scratch) {
  if (rows_q == 0 || rows_d == 0) return 0;
  scratch->resize(size_t{rows_q} * rows_d);
  float* sim = scratch->data();
  // sim[rows_q x rows_d] = Q * D^T
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows_q), static_cast<int>(rows_d),
              static_cast<int>(width), 1.0f, query.data(), static_cast<int>(width), doc.data(),
              static_cast<int>(width), 0.0f, sim, static_cast<int>(rows_d));
  double total = 0;
  for (uint32_t i = 0; i < rows_q; ++i) {
    const float* row = sim + size_t{i} * rows_d;
    total += *std::max_element(row, row + rows_d);
  }
  return static_cast<float>(total / rows_q);
}

}  // namespace m3vdb::index
