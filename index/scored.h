// Scored ids and an exact top-k selector shared by the index types.
//
// Every index in m3vdb ranks by a score where larger is better. Ties are broken by the smaller
// internal id, so results are deterministic for a given content.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

namespace m3vdb::index {

struct ScoredId {
  uint64_t id = 0;
  float score = 0;
};

// True when `a` ranks before `b`.
inline bool RanksBefore(const ScoredId& a, const ScoredId& b) {
  return a.score > b.score || (a.score == b.score && a.id < b.id);
}

// Keeps the k best of a stream of (id, score) with a bounded heap: O(n log k).
class TopK {
 public:
  explicit TopK(size_t k) : k_(k) { heap_.reserve(k); }

  // Lowest score currently kept, or -inf until k items were seen (fast reject test).
  float threshold() const { return heap_.size() < k_ ? -std::numeric_limits<float>::infinity() : heap_.front().score; }

  void Push(uint64_t id, float score) {
    if (k_ == 0) return;
    ScoredId s{id, score};
    if (heap_.size() < k_) {
      heap_.push_back(s);
      std::push_heap(heap_.begin(), heap_.end(), RanksBefore);
    } else if (RanksBefore(s, heap_.front())) {
      std::pop_heap(heap_.begin(), heap_.end(), RanksBefore);
      heap_.back() = s;
      std::push_heap(heap_.begin(), heap_.end(), RanksBefore);
    }
  }

  // The kept items, best first. Leaves the selector empty.
  std::vector<ScoredId> Take() {
    std::sort(heap_.begin(), heap_.end(), RanksBefore);
    return std::move(heap_);
  }

 private:
  size_t k_;
  std::vector<ScoredId> heap_;  // heap ordered so that front() is the worst kept item
};

}  // namespace m3vdb::index
