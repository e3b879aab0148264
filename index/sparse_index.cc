#include "index/sparse_index.h"

#include <algorithm>

namespace m3vdb::index {
namespace {

// Dot product of two sparse vectors with sorted indices (merge join).
float SparseDot(std::span<const int32_t> ai, std::span<const float> av, std::span<const int32_t> bi,
                std::span<const float> bv) {
  float sum = 0;
  size_t i = 0, j = 0;
  while (i < ai.size() && j < bi.size()) {
    if (ai[i] < bi[j]) {
      ++i;
    } else if (ai[i] > bi[j]) {
      ++j;
    } else {
      sum += av[i++] * bv[j++];
    }
  }
  return sum;
}

}  // namespace

size_t SparseIndex::memory_bytes() const {
  size_t bytes = 0;
  for (const auto& [token, list] : postings_) bytes += list.capacity() * sizeof(Posting) + 32;
  for (const auto& f : forward_) bytes += f.indices.capacity() * 4 + f.values.capacity() * 4 + sizeof(Forward);
  return bytes + slot_ids_.capacity() * 8 + dead_.capacity() + slot_of_.size() * 32;
}

void SparseIndex::Add(uint64_t id, std::span<const int32_t> indices, std::span<const float> values) {
  Remove(id);
  const auto slot = static_cast<uint32_t>(slot_ids_.size());
  slot_ids_.push_back(id);
  dead_.push_back(0);
  forward_.push_back({std::vector<int32_t>(indices.begin(), indices.end()),
                      std::vector<float>(values.begin(), values.end())});
  slot_of_.emplace(id, slot);
  for (size_t i = 0; i < indices.size(); ++i) postings_[indices[i]].push_back({slot, values[i]});
  live_postings_ += indices.size();
}

bool SparseIndex::Remove(uint64_t id) {
  auto it = slot_of_.find(id);
  if (it == slot_of_.end()) return false;
  const uint32_t slot = it->second;
  slot_of_.erase(it);
  dead_[slot] = 1;
  const size_t n = forward_[slot].indices.size();
  live_postings_ -= n;
  dead_postings_ += n;
  forward_[slot] = Forward{};
  if (dead_postings_ > 1024 && dead_postings_ * 4 > live_postings_ + dead_postings_) Compact();
  return true;
}

void SparseIndex::Compact() {
  // Renumber live slots densely, in their old order, and rebuild the postings from the forward
  // lists (which keeps every list sorted by slot).
  std::vector<Forward> forward;
  std::vector<uint64_t> slot_ids;
  forward.reserve(slot_of_.size());
  slot_ids.reserve(slot_of_.size());
  for (size_t s = 0; s < slot_ids_.size(); ++s) {
    if (dead_[s]) continue;
    forward.push_back(std::move(forward_[s]));
    slot_ids.push_back(slot_ids_[s]);
  }
  postings_.clear();
  slot_of_.clear();
  for (uint32_t s = 0; s < slot_ids.size(); ++s) {
    slot_of_.emplace(slot_ids[s], s);
    const Forward& f = forward[s];
    for (size_t i = 0; i < f.indices.size(); ++i) postings_[f.indices[i]].push_back({s, f.values[i]});
  }
  forward_ = std::move(forward);
  slot_ids_ = std::move(slot_ids);
  dead_.assign(slot_ids_.size(), 0);
  dead_postings_ = 0;
}

float SparseIndex::Score(std::span<const int32_t> indices, std::span<const float> values, uint64_t id) const {
  auto it = slot_of_.find(id);
  if (it == slot_of_.end()) return 0;
  const Forward& f = forward_[it->second];
  return SparseDot(indices, values, f.indices, f.values);
}

std::vector<ScoredId> SparseIndex::Search(std::span<const int32_t> indices, std::span<const float> values,
                                          size_t k) const {
  // Term-at-a-time accumulation: exact, and for the short queries of lexical retrieval (tens
  // of tokens) it touches each relevant posting once.
  thread_local std::vector<float> acc;
  thread_local std::vector<uint8_t> seen;
  thread_local std::vector<uint32_t> touched;
  if (acc.size() < slot_ids_.size()) {
    acc.resize(slot_ids_.size(), 0.0f);
    seen.resize(slot_ids_.size(), 0);
  }
  touched.clear();
  for (size_t t = 0; t < indices.size(); ++t) {
    auto it = postings_.find(indices[t]);
    if (it == postings_.end()) continue;
    const float qw = values[t];
    for (const Posting& p : it->second) {
      if (dead_[p.slot]) continue;
      if (!seen[p.slot]) {
        seen[p.slot] = 1;
        touched.push_back(p.slot);
      }
      acc[p.slot] += qw * p.weight;
    }
  }
  TopK top(k);
  for (uint32_t s : touched) {
    top.Push(slot_ids_[s], acc[s]);
    acc[s] = 0;  // leave the scratch buffers zeroed for the next query
    seen[s] = 0;
  }
  return top.Take();
}

}  // namespace m3vdb::index
