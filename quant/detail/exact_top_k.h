// Exact top-k of queries against a document matrix, used for the teacher's ranking.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "m3vdb/metric.h"

namespace m3vdb::quant::detail {

// For each of nq queries (nq x d) the k best documents of `docs` (n x d) under `metric`, best
// first, as (document index, score) rows of `ids`/`scores` (size nq*k). `exclude` (size nq, or
// null) names one document per query to leave out (-1 for none).
void ExactTopK(Metric metric, const float* queries, size_t nq, const float* docs, size_t n, size_t d, size_t k,
               const int64_t* exclude, uint32_t* ids, float* scores);

}  // namespace m3vdb::quant::detail
