// ColBERT late-interaction scoring (BGE-M3 multi-vector mode, SPECS.md §1.4):
//   MaxSim(Q, D) = (1/|Q|) * sum_i max_j <Q_i, D_j>
// Q is the query's token vectors (rows_q x width), D the document's (rows_d x width), both
// row-major float32. ColBERT vectors are not indexed: they rerank candidates.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace m3vdb::index {

// Returns MaxSim of `query` (size rows_q*width) against `doc` (size rows_d*width); 0 when either
// side has no rows. Uses one GEMM; `scratch` is reused between calls to avoid allocation.
float MaxSim(std::span<const float> query, uint32_t rows_q, std::span<const float> doc, uint32_t rows_d,
             uint32_t width, std::vector<float>* scratch);

}  // namespace m3vdb::index
