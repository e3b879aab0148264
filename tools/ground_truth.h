// Exact k-nearest neighbours for measuring recall, computed independently of the engine's
// search path: full score matrix per block of queries (BLAS), then nth_element per row.
#pragma once

#include <cstdint>
#include <vector>

#include "m3vdb/metric.h"
#include "tools/fashion_mnist.h"

namespace m3vdb::tools {

// Row i holds the ids (row numbers of `base`) of the k best rows for query i, best first.
std::vector<std::vector<uint32_t>> ExactNeighbors(const Matrix& base, const Matrix& queries, size_t k, Metric metric);

// Mean over queries of |found_i ∩ truth_i[0:k]| / k.
double RecallAtK(const std::vector<std::vector<uint32_t>>& found, const std::vector<std::vector<uint32_t>>& truth,
                 size_t k);

}  // namespace m3vdb::tools
