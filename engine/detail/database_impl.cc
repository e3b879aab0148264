#include "engine/detail/database_impl.h"

#include "engine/detail/validation.h"
#include "storage/keys.h"
#include "storage/records.h"

namespace m3vdb {

Result<std::unique_ptr<Database>> Database::Open(const Options& options, const std::string& path) {
  storage::StoreOptions store_options;
  store_options.create_if_missing = options.create_if_missing;
  store_options.sync = options.sync;
  store_options.block_cache_bytes = options.block_cache_bytes;
  std::shared_ptr<engine::TextModel> model;
  if (!options.model_dir.empty()) {
    auto acquired = engine::AcquireTextModel(options.model_dir, options.encoder);
    if (!acquired.ok()) return acquired.status().WithContext("loading model '" + options.model_dir + "'");
    model = std::move(acquired).value();
  }
  M3VDB_ASSIGN_OR_RETURN(std::shared_ptr<storage::Store> store, storage::Store::Open(path, store_options));
  auto db = std::make_unique<engine::DatabaseImpl>(std::move(store), options, std::move(model));
  M3VDB_RETURN_IF_ERROR(db->Load().WithContext("opening " + path));
  return std::unique_ptr<Database>(std::move(db));
}

namespace engine {

using storage::Family;

namespace {

CollectionSchema SchemaFromRecord(const storage::CatalogRecord& r) {
  CollectionSchema s;
  s.dense_dim = r.dense_dim;
  s.metric = r.metric == 1 ? Metric::kL2 : Metric::kInnerProduct;
  s.sparse = r.sparse;
  s.colbert = r.colbert;
  s.colbert_dim = r.colbert_dim;
  s.model = r.model;
  s.index.nlist = r.index_nlist;
  s.index.m = r.index_m;
  s.index.opq = r.index_opq;
  s.index.distill = r.index_distill;
  s.index.epochs = r.index_epochs;
  s.index.nprobe = r.index_nprobe;
  s.index.train_threshold = r.index_train_threshold;
  return s;
}

}  // namespace

DatabaseImpl::DatabaseImpl(std::shared_ptr<storage::Store> store, const Options& options,
                           std::shared_ptr<TextModel> model)
    : store_(std::move(store)), options_(options), model_(std::move(model)) {}

Status DatabaseImpl::Load() {
  std::lock_guard lock(mu_);
  M3VDB_ASSIGN_OR_RETURN(auto version, store_->Get(Family::kMeta, storage::kFormatVersionKey));
  if (!version) {
    storage::WriteBatch batch;
    batch.Put(Family::kMeta, storage::kFormatVersionKey, storage::EncodeU64(storage::kFormatVersion));
    M3VDB_RETURN_IF_ERROR(store_->Write(batch));
  } else {
    uint64_t v;
    M3VDB_RETURN_IF_ERROR(storage::DecodeU64(*version, &v).WithContext("format version"));
    if (v != storage::kFormatVersion)
      return Status::FailedPrecondition("database format version " + std::to_string(v) +
                                        " is not supported (this build reads version " +
                                        std::to_string(storage::kFormatVersion) + ")");
  }
  M3VDB_ASSIGN_OR_RETURN(auto next, store_->Get(Family::kMeta, storage::kNextCollectionIdKey));
  if (next) M3VDB_RETURN_IF_ERROR(storage::DecodeU64(*next, &next_collection_id_));

  std::vector<std::pair<std::string, storage::CatalogRecord>> records;
  M3VDB_RETURN_IF_ERROR(store_->Scan(
      Family::kMeta, storage::kCollectionKeyPrefix, [&](std::string_view key, std::string_view value, bool*) {
        storage::CatalogRecord rec;
        std::string name(key.substr(storage::kCollectionKeyPrefix.size()));
        M3VDB_RETURN_IF_ERROR(storage::DecodeCatalog(value, &rec).WithContext("collection '" + name + "'"));
        records.emplace_back(std::move(name), rec);
        return Status::OK();
      }));
  for (auto& [name, rec] : records) {
    auto coll = std::make_shared<CollectionImpl>(store_, options_.limits, name, rec.collection_id,
                                                 SchemaFromRecord(rec), model_);
    M3VDB_RETURN_IF_ERROR(coll->Load());
    collections_.emplace(name, std::move(coll));
  }
  return Status::OK();
}

Result<std::shared_ptr<Collection>> DatabaseImpl::CreateCollection(const std::string& name,
                                                                   const CollectionSchema& requested) {
  M3VDB_RETURN_IF_ERROR(ValidateCollectionName(name));
  CollectionSchema schema = requested;
  if (schema.model) {
    if (!model_)
      return Status::FailedPrecondition("collection '" + name +
                                        "' asks for a model, but the database was opened without one "
                                        "(set Options::model_dir, or start the server with --model DIR)");
    const uint32_t dim = static_cast<uint32_t>(model_->embedder().dim());
    const uint32_t colbert_dim = static_cast<uint32_t>(model_->embedder().colbert_dim());
    if (schema.dense_dim == 0) schema.dense_dim = dim;
    if (schema.dense_dim != dim)
      return Status::InvalidArgument("schema dense_dim " + std::to_string(schema.dense_dim) +
                                     " does not match the model's hidden size " + std::to_string(dim));
    if (schema.colbert) {
      if (schema.colbert_dim == 0) schema.colbert_dim = colbert_dim;
      if (schema.colbert_dim != colbert_dim)
        return Status::InvalidArgument("schema colbert_dim " + std::to_string(schema.colbert_dim) +
                                       " does not match the model's ColBERT width " + std::to_string(colbert_dim));
    }
  }
  M3VDB_RETURN_IF_ERROR(ValidateSchema(options_.limits, &schema));
  std::lock_guard lock(mu_);
  if (collections_.count(name)) return Status::AlreadyExists("collection '" + name + "' already exists");

  storage::CatalogRecord rec;
  rec.collection_id = next_collection_id_;
  rec.dense_dim = schema.dense_dim;
  rec.metric = schema.metric == Metric::kL2 ? 1 : 0;
  rec.sparse = schema.sparse;
  rec.colbert = schema.colbert;
  rec.colbert_dim = schema.colbert_dim;
  rec.model = schema.model;
  rec.index_nlist = schema.index.nlist;
  rec.index_m = schema.index.m;
  rec.index_opq = schema.index.opq;
  rec.index_distill = schema.index.distill;
  rec.index_epochs = schema.index.epochs;
  rec.index_nprobe = schema.index.nprobe;
  rec.index_train_threshold = schema.index.train_threshold;
  storage::WriteBatch batch;
  batch.Put(Family::kMeta, storage::CollectionKey(name), storage::EncodeCatalog(rec));
  batch.Put(Family::kMeta, storage::kNextCollectionIdKey, storage::EncodeU64(next_collection_id_ + 1));
  batch.Put(Family::kMeta, storage::NextDocIdKey(rec.collection_id), storage::EncodeU64(0));
  M3VDB_RETURN_IF_ERROR(store_->Write(batch));
  ++next_collection_id_;

  auto coll = std::make_shared<CollectionImpl>(store_, options_.limits, name, rec.collection_id, schema, model_);
  collections_.emplace(name, coll);
  return std::shared_ptr<Collection>(coll);
}

Result<std::shared_ptr<Collection>> DatabaseImpl::GetCollection(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = collections_.find(name);
  if (it == collections_.end()) return Status::NotFound("collection '" + name + "' not found");
  return std::shared_ptr<Collection>(it->second);
}

std::vector<CollectionInfo> DatabaseImpl::ListCollections() const {
  std::lock_guard lock(mu_);
  std::vector<CollectionInfo> out;
  for (const auto& [name, coll] : collections_) out.push_back({name, coll->schema(), coll->Count()});
  return out;
}

Status DatabaseImpl::DropCollection(const std::string& name) {
  std::lock_guard lock(mu_);
  auto it = collections_.find(name);
  if (it == collections_.end()) return Status::NotFound("collection '" + name + "' not found");
  M3VDB_RETURN_IF_ERROR(it->second->Drop(storage::CollectionKey(name)));
  collections_.erase(it);
  return Status::OK();
}

Status DatabaseImpl::Checkpoint(const std::string& dir) const { return store_->Checkpoint(dir); }

Result<std::vector<TextEmbedding>> DatabaseImpl::Embed(std::span<const std::string> texts) const {
  if (!model_)
    return Status::FailedPrecondition("no model is configured (set Options::model_dir, or start the server with --model DIR)");
  const Limits& limits = options_.limits;
  if (texts.size() > limits.max_batch_documents)
    return Status::ResourceExhausted(std::to_string(texts.size()) + " texts exceed the limit of " +
                                     std::to_string(limits.max_batch_documents));
  for (size_t i = 0; i < texts.size(); ++i)
    if (texts[i].size() > limits.max_text_bytes)
      return Status::ResourceExhausted("text " + std::to_string(i) + " is " + std::to_string(texts[i].size()) +
                                       " bytes, limit is " + std::to_string(limits.max_text_bytes));
  return model_->Encode(texts);
}

std::optional<ModelInfo> DatabaseImpl::GetModelInfo() const {
  if (!model_) return std::nullopt;
  return model_->Info();
}

}  // namespace engine
}  // namespace m3vdb
