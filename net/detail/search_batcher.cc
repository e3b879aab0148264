#include "net/detail/search_batcher.h"

#include <algorithm>

namespace m3vdb::net::detail {

struct SearchBatcher::Pending {
  const Query* query = nullptr;
  Result<std::vector<SearchHit>> result = Status::Internal("search not run");
  bool done = false;  // guarded by the lane's mutex
  bool lead = false;  // guarded by the lane's mutex: this caller runs `batch` next
  std::vector<Pending*> batch;  // set with `lead`; starts with this caller
};

struct SearchBatcher::Lane {
  explicit Lane(std::shared_ptr<Collection> c) : collection(std::move(c)) {}
  const std::shared_ptr<Collection> collection;  // kept alive: the key holds its address
  std::mutex mu;
  std::condition_variable changed;
  size_t running = 0;              // runners working on this lane's batches
  std::vector<Pending*> waiting;   // in arrival order
};

namespace {

// Searches may share a batch only with identical options: the key holds every field.
std::string LaneKey(const Collection* collection, const SearchOptions& o) {
  std::string key(reinterpret_cast<const char*>(&collection), sizeof(collection));
  auto add = [&key](const auto& v) { key.append(reinterpret_cast<const char*>(&v), sizeof(v)); };
  add(o.top_k);
  add(o.rerank_k);
  add(o.fusion);
  add(o.weights.dense);
  add(o.weights.sparse);
  add(o.weights.colbert);
  add(o.nprobe);
  add(o.include_metadata);
  add(o.include_text);
  return key;
}

}  // namespace

SearchBatcher::SearchBatcher(size_t parallel, size_t max_batch)
    : parallel_(std::max<size_t>(parallel, 1)), max_batch_(std::max<size_t>(max_batch, 1)) {}

void SearchBatcher::Run(Collection& collection, const SearchOptions& options, const std::vector<Pending*>& batch) {
  if (batch.size() == 1) {
    batch[0]->result = collection.Search(*batch[0]->query, options);
    return;
  }
  std::vector<Query> queries;
  queries.reserve(batch.size());
  for (const Pending* p : batch) queries.push_back(*p->query);
  auto results = collection.SearchBatch(queries, options);
  if (results.ok() && results->size() == batch.size()) {
    for (size_t i = 0; i < batch.size(); ++i) batch[i]->result = std::move((*results)[i]);
    return;
  }
  for (Pending* p : batch) p->result = collection.Search(*p->query, options);  // whose query was bad?
}

Result<std::vector<SearchHit>> SearchBatcher::Search(const std::shared_ptr<Collection>& collection,
                                                     const Query& query, const SearchOptions& options) {
  if (query.dense.empty() && query.text.empty()) return collection->Search(query, options);
  const std::string key = LaneKey(collection.get(), options);
  std::shared_ptr<Lane> lane;
  {
    std::lock_guard lock(mu_);
    auto& slot = lanes_[key];
    if (!slot) slot = std::make_shared<Lane>(collection);
    lane = slot;
  }
  Pending me;
  me.query = &query;
  std::unique_lock lock(lane->mu);
  std::vector<Pending*> batch;
  if (lane->running < parallel_) {
    ++lane->running;
    batch.push_back(&me);
  } else {
    lane->waiting.push_back(&me);
    lane->changed.wait(lock, [&] { return me.done || me.lead; });
    if (me.done) return std::move(me.result);
    batch = std::move(me.batch);  // promoted by a runner that finished
  }
  lock.unlock();
  ++engine_calls_;
  searches_ += batch.size();
  Run(*lane->collection, options, batch);
  lock.lock();
  for (Pending* p : batch) p->done = true;
  // Hand this runner's place to the callers waiting now (up to max_batch, the first of them
  // runs them), or give it up.
  if (!lane->waiting.empty()) {
    const auto end = lane->waiting.begin() + static_cast<std::ptrdiff_t>(std::min(lane->waiting.size(), max_batch_));
    Pending* next = lane->waiting.front();
    next->batch.assign(lane->waiting.begin(), end);
    next->lead = true;
    lane->waiting.erase(lane->waiting.begin(), end);
  } else {
    --lane->running;
  }
  const bool idle = lane->running == 0;
  lock.unlock();
  lane->changed.notify_all();
  if (idle) {
    std::lock_guard map_lock(mu_);
    std::lock_guard lane_lock(lane->mu);
    auto it = lanes_.find(key);
    if (it != lanes_.end() && it->second == lane && lane->running == 0 && lane->waiting.empty()) lanes_.erase(it);
  }
  return std::move(me.result);
}

}  // namespace m3vdb::net::detail
