// Score fusion for hybrid search (DESIGN.md "Query"): each candidate carries the exact score of
// every mode the query has; fusion turns them into one score and orders the candidates.
//   weighted: sum over present modes of weight * raw score (M3 paper: dense 1, sparse 0.3, colbert 1)
//   rrf:      sum over present modes of 1 / (60 + rank), rank 1-based among the candidates
//             that have that mode, by score descending (ties: smaller internal id first)
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "m3vdb/m3vdb.h"

namespace m3vdb::engine {

struct Candidate {
  uint64_t internal_id = 0;
  std::optional<float> dense, sparse, colbert;
  float fused = 0;
};

inline constexpr float kRrfK = 60.0f;

// Sets `fused` on every candidate, sorts best first (ties: smaller internal id) and keeps the
// first `top_k`.
void FuseAndRank(Fusion fusion, const ModeWeights& weights, size_t top_k, std::vector<Candidate>* candidates);

}  // namespace m3vdb::engine
