// Coalesces concurrent searches: searches of one collection with the same options that arrive
// while that collection's searches already occupy `parallel` runners wait, and the next free
// runner answers all of them (up to `max_batch`) with one Collection::SearchBatch call. Exact
// dense search is bound by the pass over the stored vectors; SearchBatch makes that one pass
// over the int8 copy per group of 8 queries (index/dense_index.h), so under load one pass
// serves several queries instead of one each.
//
// No delay is added: a search starts at once when a runner is free, so a lone client sees plain
// Search latency. Searches without a dense part or text (nothing to share) run directly; text
// queries of a batch are encoded by the engine in one call. If a batch
// fails (one invalid query fails SearchBatch as a whole) its queries are answered one by one,
// so every caller gets its own answer or its own error.
//
// Thread safety: `Search` may be called from any number of threads; waiting callers sleep.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "m3vdb/m3vdb.h"

namespace m3vdb::net::detail {

class SearchBatcher {
 public:
  SearchBatcher(size_t parallel, size_t max_batch);

  Result<std::vector<SearchHit>> Search(const std::shared_ptr<Collection>& collection, const Query& query,
                                        const SearchOptions& options);

  // Engine calls made for dense searches, and the searches they answered (searches / calls is
  // the mean batch size).
  uint64_t engine_calls() const { return engine_calls_; }
  uint64_t searches() const { return searches_; }

 private:
  struct Pending;
  struct Lane;
  // Runs `batch` (on the caller's thread) and hands each caller its result.
  static void Run(Collection& collection, const SearchOptions& options, const std::vector<Pending*>& batch);

  const size_t parallel_, max_batch_;
  std::atomic<uint64_t> engine_calls_{0}, searches_{0};
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Lane>> lanes_;  // by collection and options; idle lanes are removed
};

}  // namespace m3vdb::net::detail
