#include "engine/detail/fusion.h"

#include <algorithm>
#include <numeric>

namespace m3vdb::engine {
namespace {

// Adds 1/(k + rank) for the mode selected by `score_of` to every candidate that has it.
template <class ScoreOf>
void AddReciprocalRanks(std::vector<Candidate>* cands, ScoreOf score_of) {
  std::vector<size_t> order;
  for (size_t i = 0; i < cands->size(); ++i)
    if (score_of((*cands)[i]).has_value()) order.push_back(i);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const float sa = *score_of((*cands)[a]), sb = *score_of((*cands)[b]);
    return sa > sb || (sa == sb && (*cands)[a].internal_id < (*cands)[b].internal_id);
  });
  for (size_t rank = 0; rank < order.size(); ++rank)
    (*cands)[order[rank]].fused += 1.0f / (kRrfK + static_cast<float>(rank + 1));
}

}  // namespace

void FuseAndRank(Fusion fusion, const ModeWeights& weights, size_t top_k, std::vector<Candidate>* cands) {
  if (fusion == Fusion::kWeighted) {
    for (Candidate& c : *cands) {
      c.fused = 0;
      if (c.dense) c.fused += weights.dense * *c.dense;
      if (c.sparse) c.fused += weights.sparse * *c.sparse;
      if (c.colbert) c.fused += weights.colbert * *c.colbert;
    }
  } else {
    for (Candidate& c : *cands) c.fused = 0;
    AddReciprocalRanks(cands, [](const Candidate& c) { return c.dense; });
    AddReciprocalRanks(cands, [](const Candidate& c) { return c.sparse; });
    AddReciprocalRanks(cands, [](const Candidate& c) { return c.colbert; });
  }
  auto better = [](const Candidate& a, const Candidate& b) {
    return a.fused > b.fused || (a.fused == b.fused && a.internal_id < b.internal_id);
  };
  if (cands->size() > top_k) {
    std::partial_sort(cands->begin(), cands->begin() + static_cast<std::ptrdiff_t>(top_k), cands->end(), better);
    cands->resize(top_k);
  } else {
    std::sort(cands->begin(), cands->end(), better);
  }
}

}  // namespace m3vdb::engine
