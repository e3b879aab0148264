// CollectionImpl: one collection = its RocksDB key ranges + the in-memory indexes derived from
// them (dense flat index, sparse inverted index, internal -> user id map).
//
// Concurrency contract:
//  - `write_mu_` serializes writers (Upsert, Delete, Drop). A writer validates, commits one
//    WriteBatch to RocksDB, takes a RocksDB snapshot that contains exactly that batch, then
//    applies the batch to the in-memory state under `state_mu_` (exclusive, short) and
//    publishes the snapshot.
//  - Readers hold `state_mu_` shared and read RocksDB through the published snapshot, so the
//    in-memory indexes and the stored documents they see always agree: every batch
//    acknowledged before the read, and never part of a batch.
//  - Training (`Train`, or the auto-train thread) copies the vectors under the shared lock,
//    learns codebooks with no lock held, then takes `write_mu_`, encodes every current document,
//    commits codes + codebooks in one batch and swaps the new IvfPqIndex in. `train_mu_` allows
//    one training at a time. Its checkpoints (after k-means, after each Distill-VQ epoch) are
//    single-key writes under `write_mu_`, refused once the collection is dropped.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "engine/detail/fusion.h"
#include "engine/detail/shared_mutex.h"
#include "engine/detail/text_model.h"
#include "engine/detail/train_checkpoint.h"
#include "index/dense_index.h"
#include "index/ivfpq_index.h"
#include "index/sparse_index.h"
#include "m3vdb/m3vdb.h"
#include "storage/store.h"

namespace m3vdb::engine {

class CollectionImpl final : public Collection {
 public:
  // `model` is the database's text model (null when none is configured); used only when
  // schema.model.
  CollectionImpl(std::shared_ptr<storage::Store> store, const Limits& limits, std::string name,
                 uint64_t collection_id, const CollectionSchema& schema, std::shared_ptr<TextModel> model);
  ~CollectionImpl() override;

  // Rebuilds the in-memory state from storage (on open).
  Status Load();
  // Deletes everything stored for the collection (and its catalog entry) in one batch, then
  // makes every later call fail with FailedPrecondition.
  Status Drop(const std::string& catalog_key);

  const std::string& name() const override { return name_; }
  const CollectionSchema& schema() const override { return schema_; }
  uint64_t collection_id() const { return collection_id_; }

  using Collection::Upsert;
  Status Upsert(std::span<const Document> batch, const UpsertOptions& options) override;
  Result<std::optional<std::string>> GetProgressMarker() const override;
  Status Validate(std::span<const Document> batch) const override;
  Result<Document> Get(const std::string& id) const override;
  Result<size_t> Delete(std::span<const std::string> ids) override;
  Result<std::vector<SearchHit>> Search(const Query& query, const SearchOptions& options) const override;
  Result<std::vector<std::vector<SearchHit>>> SearchBatch(std::span<const Query> queries,
                                                          const SearchOptions& options) const override;
  uint64_t Count() const override;
  Result<TrainReport> Train(const TrainOptions& options) override;
  IndexInfo GetIndexInfo() const override;

  // Stops and joins a running auto-train thread (called before the database closes).
  void StopBackgroundWork();

 private:
  // Encodes `docs` with the current codebooks into `batch` and `codes` (one per doc: list + code).
  struct Encoded {
    uint32_t list;
    std::vector<uint8_t> code;
  };
  std::vector<Encoded> EncodeForIndex(std::span<const Document> docs, const std::vector<uint64_t>& iids,
                                      storage::WriteBatch* batch) const;
  Status LoadIndex();
  // Text encoding (text_encoding.cc). When some items carry text and lack modes, `*out` gets a
  // copy of `in` with those modes filled from one encode call and true is returned; otherwise
  // false and `*out` is untouched. Runs before any lock is taken.
  Result<bool> EncodeDocuments(std::span<const Document> in, std::vector<Document>* out) const;
  Result<bool> EncodeQueries(std::span<const Query> in, std::vector<Query>* out) const;
  Status ModelMissing() const;
  void MaybeStartAutoTrain();
  Status CheckNotDropped() const;
  // Internal ids currently stored for `ids` (nullopt where absent), read at the latest state.
  Result<std::vector<std::optional<uint64_t>>> LookupIds(std::span<const std::string> ids) const;
  // Adds the deletion of every key of internal id `iid` to `batch`.
  void DeleteDocKeys(uint64_t iid, storage::WriteBatch* batch) const;
  // Takes a snapshot after a committed write and publishes it with the in-memory changes made
  // by `apply` (run under the exclusive state lock).
  template <class Apply>
  void Publish(Apply&& apply);

  // Search of queries [begin, end) under one consistent view (hybrid_search.cc).
  Status SearchGroup(std::span<const Query> queries, const SearchOptions& options,
                     std::vector<std::vector<SearchHit>>* out) const;
  Status ScoreColbert(const Query& query, const storage::Snapshot* snap, std::vector<Candidate>* cands) const;
  Status FillHits(const std::vector<Candidate>& cands, const SearchOptions& options,
                  const storage::Snapshot* snap, std::vector<SearchHit>* hits) const;
  // The live documents' internal ids, ascending (state_mu_ held by the caller).
  std::vector<uint64_t> SortedInternalIds() const;
  // Training checkpoints (train.cc, engine/detail/train_checkpoint.h): the stored one when it
  // decodes and matches `fingerprint` (anything else is logged and ignored), and a write of one.
  std::optional<TrainCheckpoint> LoadTrainCheckpoint(const TrainFingerprint& fingerprint) const;
  void WriteTrainCheckpoint(const std::string& bytes, const char* what);

  const std::shared_ptr<storage::Store> store_;
  const Limits limits_;
  const std::string name_;
  const uint64_t collection_id_;
  const CollectionSchema schema_;
  const std::shared_ptr<TextModel> model_;

  std::mutex write_mu_;                 // serializes writers
  uint64_t next_doc_id_ = 0;            // guarded by write_mu_
  std::atomic<bool> dropped_{false};

  mutable SharedMutex state_mu_;        // guards everything below
  index::FlatDenseIndex dense_;
  index::SparseIndex sparse_;
  std::unordered_map<uint64_t, std::string> user_ids_;  // internal id -> user id (live docs)
  std::unordered_set<uint64_t> has_colbert_;            // internal ids with ColBERT vectors
  std::shared_ptr<const storage::Snapshot> snapshot_;   // storage view matching the state
  // The learned index; null until trained. Replaced (never mutated) only with both write_mu_
  // and state_mu_ held; Add/Remove on it happen under write_mu_ + exclusive state_mu_.
  std::shared_ptr<index::IvfPqIndex> ivfpq_;

  std::mutex train_mu_;                 // one training at a time
  std::atomic<bool> training_{false};
  std::atomic<bool> stop_{false};       // asks a running training to stop
  std::mutex thread_mu_;                // guards auto_train_
  std::thread auto_train_;
};

template <class Apply>
void CollectionImpl::Publish(Apply&& apply) {
  std::shared_ptr<const storage::Snapshot> snap = store_->GetSnapshot();
  std::unique_lock lock(state_mu_);
  apply();
  snapshot_ = std::move(snap);
}

}  // namespace m3vdb::engine
