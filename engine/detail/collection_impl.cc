#include "engine/detail/collection_impl.h"

#include <shared_mutex>

#include "engine/detail/validation.h"
#include "storage/keys.h"
#include "storage/records.h"

namespace m3vdb::engine {

using storage::Family;

CollectionImpl::CollectionImpl(std::shared_ptr<storage::Store> store, const Limits& limits, std::string name,
                               uint64_t collection_id, const CollectionSchema& schema,
                               std::shared_ptr<TextModel> model)
    : store_(std::move(store)),
      limits_(limits),
      name_(std::move(name)),
      collection_id_(collection_id),
      schema_(schema),
      model_(std::move(model)),
      dense_(schema.dense_dim, schema.metric),
      snapshot_(store_->GetSnapshot()) {}

CollectionImpl::~CollectionImpl() { StopBackgroundWork(); }

void CollectionImpl::StopBackgroundWork() {
  stop_.store(true);
  std::lock_guard lock(thread_mu_);
  if (auto_train_.joinable()) auto_train_.join();
}

Status CollectionImpl::CheckNotDropped() const {
  if (dropped_.load(std::memory_order_acquire))
    return Status::FailedPrecondition("collection '" + name_ + "' was dropped");
  return Status::OK();
}

Status CollectionImpl::Load() {
  const std::string prefix = storage::CollectionPrefix(collection_id_);
  auto next = store_->Get(Family::kMeta, storage::NextDocIdKey(collection_id_));
  M3VDB_RETURN_IF_ERROR(next.status());
  if (next->has_value()) M3VDB_RETURN_IF_ERROR(storage::DecodeU64(**next, &next_doc_id_));

  std::unique_lock lock(state_mu_);
  const std::string id_prefix = storage::InternalIdPrefix(collection_id_);
  M3VDB_RETURN_IF_ERROR(store_->Scan(Family::kIds, id_prefix, [&](std::string_view key, std::string_view value, bool*) {
    uint64_t iid;
    if (!storage::ReadBigEndian64(key, id_prefix.size(), &iid) || key.size() != id_prefix.size() + 8)
      return Status::Corruption("ids key of collection '" + name_ + "' is malformed");
    user_ids_.emplace(iid, std::string(value));
    return Status::OK();
  }));

  dense_.Reserve(user_ids_.size());
  std::vector<float> dense;
  std::vector<int32_t> indices;
  std::vector<float> values;
  auto parse_key = [&](std::string_view key, const char* family, uint64_t* iid) {
    uint64_t cid;
    if (!storage::ParseDocKey(key, &cid, iid) || cid != collection_id_)
      return Status::Corruption(std::string(family) + " key of collection '" + name_ + "' is malformed");
    if (!user_ids_.count(*iid))
      return Status::Corruption(std::string(family) + " entry of collection '" + name_ + "' has no id mapping");
    return Status::OK();
  };
  M3VDB_RETURN_IF_ERROR(store_->Scan(Family::kDense, prefix, [&](std::string_view key, std::string_view value, bool*) {
    uint64_t iid;
    M3VDB_RETURN_IF_ERROR(parse_key(key, "dense", &iid));
    M3VDB_RETURN_IF_ERROR(storage::DecodeDense(value, &dense));
    if (dense.size() != schema_.dense_dim)
      return Status::Corruption("stored dense vector of collection '" + name_ + "' has the wrong dimension");
    dense_.Add(iid, dense);
    return Status::OK();
  }));
  if (dense_.size() != user_ids_.size())
    return Status::Corruption("collection '" + name_ + "' has " + std::to_string(user_ids_.size()) + " ids but " +
                              std::to_string(dense_.size()) + " dense vectors");
  if (schema_.sparse) {
    M3VDB_RETURN_IF_ERROR(store_->Scan(Family::kSparse, prefix, [&](std::string_view key, std::string_view value, bool*) {
      uint64_t iid;
      M3VDB_RETURN_IF_ERROR(parse_key(key, "sparse", &iid));
      M3VDB_RETURN_IF_ERROR(storage::DecodeSparse(value, &indices, &values));
      sparse_.Add(iid, indices, values);
      return Status::OK();
    }));
  }
  if (schema_.colbert) {
    M3VDB_RETURN_IF_ERROR(store_->Scan(Family::kColbert, prefix, [&](std::string_view key, std::string_view, bool*) {
      uint64_t iid;
      M3VDB_RETURN_IF_ERROR(parse_key(key, "colbert", &iid));
      has_colbert_.insert(iid);
      return Status::OK();
    }));
  }
  snapshot_ = store_->GetSnapshot();
  lock.unlock();
  return LoadIndex();
}

Status CollectionImpl::LoadIndex() {
  M3VDB_ASSIGN_OR_RETURN(auto bytes, store_->Get(Family::kMeta, storage::CodebooksKey(collection_id_)));
  if (!bytes) return Status::OK();  // never trained: exact search
  M3VDB_ASSIGN_OR_RETURN(auto books, quant::Codebooks::Parse(*bytes));
  if (books.params.dim != schema_.dense_dim || books.params.metric != schema_.metric)
    return Status::Corruption("codebooks of collection '" + name_ + "' do not match its schema");
  auto shared = std::make_shared<const quant::Codebooks>(std::move(books));
  auto ivf = std::make_shared<index::IvfPqIndex>(shared);
  const std::string prefix = storage::CollectionPrefix(collection_id_);
  storage::CodeRecord rec;
  M3VDB_RETURN_IF_ERROR(store_->Scan(Family::kCodes, prefix, [&](std::string_view key, std::string_view value, bool*) {
    uint64_t cid, iid;
    if (!storage::ParseDocKey(key, &cid, &iid)) return Status::Corruption("codes key of collection '" + name_ + "' is malformed");
    M3VDB_RETURN_IF_ERROR(storage::DecodeCode(value, &rec));
    if (rec.generation != shared->generation || rec.list >= shared->params.nlist ||
        rec.code.size() != shared->params.code_size())
      return Status::Corruption("code of a document in collection '" + name_ + "' does not match generation " +
                                std::to_string(shared->generation));
    ivf->Add(iid, rec.list, reinterpret_cast<const uint8_t*>(rec.code.data()));
    return Status::OK();
  }));
  std::unique_lock lock(state_mu_);
  if (ivf->size() != dense_.size())
    return Status::Corruption("collection '" + name_ + "' has " + std::to_string(dense_.size()) +
                              " vectors but " + std::to_string(ivf->size()) + " codes");
  ivfpq_ = std::move(ivf);
  return Status::OK();
}

std::vector<CollectionImpl::Encoded> CollectionImpl::EncodeForIndex(std::span<const Document> docs,
                                                                    const std::vector<uint64_t>& iids,
                                                                    storage::WriteBatch* batch) const {
  std::vector<Encoded> out;
  if (!ivfpq_) return out;
  const quant::Codebooks& books = ivfpq_->codebooks();
  const size_t d = schema_.dense_dim, m = books.params.code_size();
  std::vector<float> x(docs.size() * d);
  for (size_t i = 0; i < docs.size(); ++i) std::copy(docs[i].dense.begin(), docs[i].dense.end(), x.begin() + i * d);
  std::vector<uint32_t> lists(docs.size());
  std::vector<uint8_t> codes(docs.size() * m);
  books.Encode(x.data(), docs.size(), lists.data(), codes.data());
  out.resize(docs.size());
  for (size_t i = 0; i < docs.size(); ++i) {
    out[i].list = lists[i];
    out[i].code.assign(codes.begin() + i * m, codes.begin() + (i + 1) * m);
    batch->Put(Family::kCodes, storage::DocKey(collection_id_, iids[i]),
               storage::EncodeCode(books.generation, lists[i], out[i].code.data(), m));
  }
  return out;
}

IndexInfo CollectionImpl::GetIndexInfo() const {
  IndexInfo info;
  info.training = training_.load();
  std::shared_lock lock(state_mu_);
  if (!ivfpq_) {
    info.bytes_per_vector = sizeof(float) * schema_.dense_dim;
    return info;
  }
  const auto& p = ivfpq_->codebooks().params;
  info.kind = "ivfpq";
  info.generation = ivfpq_->codebooks().generation;
  info.nlist = p.nlist;
  info.m = p.m;
  info.bytes_per_vector = p.code_size();
  return info;
}

Result<std::vector<std::optional<uint64_t>>> CollectionImpl::LookupIds(std::span<const std::string> ids) const {
  std::vector<std::string> keys;
  keys.reserve(ids.size());
  for (const auto& id : ids) keys.push_back(storage::UserIdKey(collection_id_, id));
  M3VDB_ASSIGN_OR_RETURN(auto values, store_->MultiGet(Family::kIds, keys));
  std::vector<std::optional<uint64_t>> out(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!values[i]) continue;
    uint64_t iid;
    M3VDB_RETURN_IF_ERROR(storage::DecodeU64(*values[i], &iid).WithContext("id '" + ids[i] + "'"));
    out[i] = iid;
  }
  return out;
}

void CollectionImpl::DeleteDocKeys(uint64_t iid, storage::WriteBatch* batch) const {
  const std::string key = storage::DocKey(collection_id_, iid);
  for (Family f : {Family::kDocs, Family::kDense, Family::kSparse, Family::kColbert, Family::kCodes})
    batch->Delete(f, key);
  batch->Delete(Family::kIds, storage::InternalIdKey(collection_id_, iid));
}

Status CollectionImpl::Validate(std::span<const Document> docs) const {
  M3VDB_RETURN_IF_ERROR(ValidateBatch(schema_, limits_, docs));
  return CheckNotDropped();
}

Result<std::optional<std::string>> CollectionImpl::GetProgressMarker() const {
  M3VDB_RETURN_IF_ERROR(CheckNotDropped());
  return store_->Get(Family::kMeta, storage::ProgressMarkerKey(collection_id_));
}

Status CollectionImpl::Upsert(std::span<const Document> docs, const UpsertOptions& options) {
  std::vector<Document> with_vectors;  // the batch with its texts encoded (model collections)
  M3VDB_ASSIGN_OR_RETURN(const bool filled, EncodeDocuments(docs, &with_vectors));
  if (filled) docs = with_vectors;
  M3VDB_RETURN_IF_ERROR(ValidateBatch(schema_, limits_, docs));
  if (docs.empty() && !options.progress_marker) return CheckNotDropped();
  std::lock_guard write_lock(write_mu_);
  M3VDB_RETURN_IF_ERROR(CheckNotDropped());
  if (docs.empty()) {  // just the marker
    storage::WriteBatch batch;
    batch.Put(Family::kMeta, storage::ProgressMarkerKey(collection_id_), *options.progress_marker);
    return store_->Write(batch);
  }

  std::vector<std::string> ids;
  ids.reserve(docs.size());
  for (const auto& d : docs) ids.push_back(d.id);
  M3VDB_ASSIGN_OR_RETURN(auto old_iids, LookupIds(ids));

  // A replaced document gets a fresh internal id: its old keys are deleted in the same batch,
  // so every in-memory structure stays append-only per internal id.
  storage::WriteBatch batch;
  std::vector<uint64_t> new_iids(docs.size());
  uint64_t next = next_doc_id_;
  for (size_t i = 0; i < docs.size(); ++i) {
    const Document& d = docs[i];
    if (old_iids[i]) DeleteDocKeys(*old_iids[i], &batch);
    const uint64_t iid = next++;
    new_iids[i] = iid;
    const std::string key = storage::DocKey(collection_id_, iid);
    batch.Put(Family::kIds, storage::UserIdKey(collection_id_, d.id), storage::EncodeU64(iid));
    batch.Put(Family::kIds, storage::InternalIdKey(collection_id_, iid), d.id);
    batch.Put(Family::kDocs, key, storage::EncodeDoc(d.text, d.metadata_json));
    batch.Put(Family::kDense, key, storage::EncodeDense(d.dense));
    if (!d.sparse.empty()) batch.Put(Family::kSparse, key, storage::EncodeSparse(d.sparse.indices, d.sparse.values));
    if (!d.colbert.empty())
      batch.Put(Family::kColbert, key, storage::EncodeColbert(d.colbert.data, d.colbert.rows, schema_.colbert_dim));
  }
  batch.Put(Family::kMeta, storage::NextDocIdKey(collection_id_), storage::EncodeU64(next));
  if (options.progress_marker)
    batch.Put(Family::kMeta, storage::ProgressMarkerKey(collection_id_), *options.progress_marker);
  const std::vector<Encoded> encoded = EncodeForIndex(docs, new_iids, &batch);
  M3VDB_RETURN_IF_ERROR(store_->Write(batch));
  next_doc_id_ = next;

  Publish([&] {
    for (size_t i = 0; i < docs.size(); ++i) {
      const Document& d = docs[i];
      if (old_iids[i]) {
        const uint64_t old = *old_iids[i];
        dense_.Remove(old);
        sparse_.Remove(old);
        user_ids_.erase(old);
        has_colbert_.erase(old);
        if (ivfpq_) ivfpq_->Remove(old);
      }
      const uint64_t iid = new_iids[i];
      if (ivfpq_) ivfpq_->Add(iid, encoded[i].list, encoded[i].code.data());
      user_ids_.emplace(iid, d.id);
      dense_.Add(iid, d.dense);
      if (schema_.sparse && !d.sparse.empty()) sparse_.Add(iid, d.sparse.indices, d.sparse.values);
      if (!d.colbert.empty()) has_colbert_.insert(iid);
    }
  });
  MaybeStartAutoTrain();
  return Status::OK();
}

Result<size_t> CollectionImpl::Delete(std::span<const std::string> ids) {
  M3VDB_RETURN_IF_ERROR(ValidateIds(limits_, ids));
  std::lock_guard write_lock(write_mu_);
  M3VDB_RETURN_IF_ERROR(CheckNotDropped());
  M3VDB_ASSIGN_OR_RETURN(auto iids, LookupIds(ids));
  storage::WriteBatch batch;
  std::vector<uint64_t> removed;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!iids[i]) continue;
    if (std::find(removed.begin(), removed.end(), *iids[i]) != removed.end()) continue;  // id listed twice
    DeleteDocKeys(*iids[i], &batch);
    batch.Delete(Family::kIds, storage::UserIdKey(collection_id_, ids[i]));
    removed.push_back(*iids[i]);
  }
  if (removed.empty()) return size_t{0};
  M3VDB_RETURN_IF_ERROR(store_->Write(batch));
  Publish([&] {
    for (uint64_t iid : removed) {
      dense_.Remove(iid);
      sparse_.Remove(iid);
      user_ids_.erase(iid);
      has_colbert_.erase(iid);
      if (ivfpq_) ivfpq_->Remove(iid);
    }
  });
  return removed.size();
}

Status CollectionImpl::Drop(const std::string& catalog_key) {
  stop_.store(true);  // a running training gives up
  std::lock_guard write_lock(write_mu_);
  M3VDB_RETURN_IF_ERROR(CheckNotDropped());
  storage::WriteBatch batch;
  batch.Delete(Family::kMeta, catalog_key);
  batch.Delete(Family::kMeta, storage::NextDocIdKey(collection_id_));
  batch.Delete(Family::kMeta, storage::CodebooksKey(collection_id_));
  batch.Delete(Family::kMeta, storage::ProgressMarkerKey(collection_id_));
  batch.Delete(Family::kMeta, storage::TrainCheckpointKey(collection_id_));
  const std::string begin = storage::CollectionPrefix(collection_id_);
  const std::string end = storage::CollectionPrefixEnd(collection_id_);
  for (Family f : {Family::kDocs, Family::kDense, Family::kSparse, Family::kColbert, Family::kCodes, Family::kIds})
    batch.DeleteRange(f, begin, end);
  M3VDB_RETURN_IF_ERROR(store_->Write(batch));
  dropped_.store(true, std::memory_order_release);
  Publish([&] {
    dense_ = index::FlatDenseIndex(schema_.dense_dim, schema_.metric);
    sparse_ = index::SparseIndex();
    user_ids_.clear();
    has_colbert_.clear();
    ivfpq_.reset();
  });
  return Status::OK();
}

Result<Document> CollectionImpl::Get(const std::string& id) const {
  M3VDB_RETURN_IF_ERROR(ValidateIds(limits_, std::span<const std::string>(&id, 1)));
  M3VDB_RETURN_IF_ERROR(CheckNotDropped());
  std::shared_ptr<const storage::Snapshot> snap;
  {
    std::shared_lock lock(state_mu_);
    snap = snapshot_;
  }
  M3VDB_ASSIGN_OR_RETURN(auto iid_value, store_->Get(Family::kIds, storage::UserIdKey(collection_id_, id), snap.get()));
  if (!iid_value) return Status::NotFound("document '" + id + "' not found in collection '" + name_ + "'");
  uint64_t iid;
  M3VDB_RETURN_IF_ERROR(storage::DecodeU64(*iid_value, &iid));
  const std::string key = storage::DocKey(collection_id_, iid);

  Document doc;
  doc.id = id;
  M3VDB_ASSIGN_OR_RETURN(auto docs_value, store_->Get(Family::kDocs, key, snap.get()));
  M3VDB_ASSIGN_OR_RETURN(auto dense_value, store_->Get(Family::kDense, key, snap.get()));
  if (!docs_value || !dense_value)
    return Status::Corruption("document '" + id + "' of collection '" + name_ + "' is incomplete in storage");
  storage::DocRecord rec;
  M3VDB_RETURN_IF_ERROR(storage::DecodeDoc(*docs_value, &rec));
  doc.text = std::move(rec.text);
  doc.metadata_json = std::move(rec.metadata_json);
  M3VDB_RETURN_IF_ERROR(storage::DecodeDense(*dense_value, &doc.dense));
  if (schema_.sparse) {
    M3VDB_ASSIGN_OR_RETURN(auto v, store_->Get(Family::kSparse, key, snap.get()));
    if (v) M3VDB_RETURN_IF_ERROR(storage::DecodeSparse(*v, &doc.sparse.indices, &doc.sparse.values));
  }
  if (schema_.colbert) {
    M3VDB_ASSIGN_OR_RETURN(auto v, store_->Get(Family::kColbert, key, snap.get()));
    if (v) {
      uint32_t width;
      M3VDB_RETURN_IF_ERROR(storage::DecodeColbert(*v, &doc.colbert.data, &doc.colbert.rows, &width));
    }
  }
  return doc;
}

uint64_t CollectionImpl::Count() const {
  std::shared_lock lock(state_mu_);
  return user_ids_.size();
}

}  // namespace m3vdb::engine
