// SparseIndex: exact top-k over sparse lexical weights (BGE-M3's sparse head) with an inverted
// index. Score of a document = sum over shared token ids of query weight * document weight.
//
// Postings are token -> (slot, weight). Deletes leave a tombstone that queries skip; the lists
// are compacted once tombstones exceed a quarter of the postings. A document's own weights are
// also kept (forward lists) so that a candidate found by another mode can be scored exactly.
//
// Thread safety: const methods may run concurrently; mutating methods need exclusive access.
#pragma once

#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "index/scored.h"

namespace m3vdb::index {

class SparseIndex {
 public:
  SparseIndex() = default;

  size_t size() const { return slot_of_.size(); }
  size_t memory_bytes() const;

  // Adds the document `id` (indices strictly increasing, values finite), replacing any
  // previous entry. An empty vector is allowed: the document then matches nothing.
  void Add(uint64_t id, std::span<const int32_t> indices, std::span<const float> values);
  bool Remove(uint64_t id);
  bool Contains(uint64_t id) const { return slot_of_.count(id) != 0; }

  // Exact score against the stored weights of `id` (0 when absent or no overlap).
  float Score(std::span<const int32_t> indices, std::span<const float> values, uint64_t id) const;

  // The k documents with the highest score among those sharing at least one token with the
  // query, best first.
  std::vector<ScoredId> Search(std::span<const int32_t> indices, std::span<const float> values,
                               size_t k) const;

 private:
  struct Posting {
    uint32_t slot;
    float weight;
  };
  struct Forward {
    std::vector<int32_t> indices;
    std::vector<float> values;
  };
  void Compact();

  std::unordered_map<int32_t, std::vector<Posting>> postings_;
  std::vector<Forward> forward_;    // per slot
  std::vector<uint64_t> slot_ids_;  // per slot
  std::vector<uint8_t> dead_;       // per slot: tombstone
  std::unordered_map<uint64_t, uint32_t> slot_of_;
  size_t dead_postings_ = 0;
  size_t live_postings_ = 0;
};

}  // namespace m3vdb::index
