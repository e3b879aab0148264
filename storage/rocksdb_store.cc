// Store on RocksDB: one column family per storage::Family, WAL on, optional fsync per write.
#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>

#include <rocksdb/env.h>

#include <array>

#include "storage/detail/fault_fs.h"
#include "storage/store.h"

namespace m3vdb::storage {

WriteBatch::WriteBatch() = default;
WriteBatch::~WriteBatch() = default;
WriteBatch::WriteBatch(WriteBatch&&) noexcept = default;
WriteBatch& WriteBatch::operator=(WriteBatch&&) noexcept = default;

void WriteBatch::Put(Family family, std::string_view key, std::string_view value) {
  ops_.push_back({Op::kPut, family, std::string(key), std::string(value)});
}
void WriteBatch::Delete(Family family, std::string_view key) {
  ops_.push_back({Op::kDelete, family, std::string(key), {}});
}
void WriteBatch::DeleteRange(Family family, std::string_view begin, std::string_view end) {
  ops_.push_back({Op::kDeleteRange, family, std::string(begin), std::string(end)});
}
size_t WriteBatch::Count() const { return ops_.size(); }

std::string_view FamilyName(Family family) {
  switch (family) {
    case Family::kMeta: return "meta";
    case Family::kDocs: return "docs";
    case Family::kDense: return "dense";
    case Family::kSparse: return "sparse";
    case Family::kColbert: return "colbert";
    case Family::kCodes: return "codes";
    case Family::kIds: return "ids";
  }
  return "?";
}

namespace {

Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return Status::OK();
  std::string msg = std::string(what) + ": " + s.ToString();
  if (s.IsCorruption()) return Status::Corruption(std::move(msg));
  if (s.IsNotFound()) return Status::NotFound(std::move(msg));
  if (s.IsInvalidArgument()) return Status::InvalidArgument(std::move(msg));
  if (s.IsNoSpace()) return Status::ResourceExhausted(std::move(msg));
  if (s.IsBusy() || s.IsTryAgain() || s.IsTimedOut()) return Status::Unavailable(std::move(msg));
  return Status::IOError(std::move(msg));
}

class RocksSnapshot final : public Snapshot {
 public:
  RocksSnapshot(rocksdb::DB* db, const rocksdb::Snapshot* snap) : db_(db), snap_(snap) {}
  ~RocksSnapshot() override { db_->ReleaseSnapshot(snap_); }
  const rocksdb::Snapshot* get() const { return snap_; }

 private:
  rocksdb::DB* db_;
  const rocksdb::Snapshot* snap_;
};

class RocksStore final : public Store {
 public:
  RocksStore(std::unique_ptr<rocksdb::Env> env, std::unique_ptr<rocksdb::DB> db,
             std::vector<rocksdb::ColumnFamilyHandle*> handles, bool sync)
      : env_(std::move(env)), db_(std::move(db)), sync_(sync) {
    // handles[0] is "default"; our families follow in Family order.
    default_ = handles[0];
    for (int i = 0; i < kFamilyCount; ++i) families_[i] = handles[i + 1];
  }

  ~RocksStore() override {
    for (auto* h : families_) db_->DestroyColumnFamilyHandle(h);
    db_->DestroyColumnFamilyHandle(default_);
    db_->Close().PermitUncheckedError();
  }

  Status Write(const WriteBatch& batch) override {
    rocksdb::WriteBatch wb;
    for (const auto& op : batch.ops()) {
      rocksdb::Status s;
      auto* cf = cf_of(op.family);
      switch (op.kind) {
        case WriteBatch::Op::kPut: s = wb.Put(cf, op.a, op.b); break;
        case WriteBatch::Op::kDelete: s = wb.Delete(cf, op.a); break;
        case WriteBatch::Op::kDeleteRange: s = wb.DeleteRange(cf, op.a, op.b); break;
      }
      M3VDB_RETURN_IF_ERROR(FromRocks(s, "building write batch"));
    }
    rocksdb::WriteOptions wo;
    wo.sync = sync_;
    return FromRocks(db_->Write(wo, &wb), "write");
  }

  Result<std::optional<std::string>> Get(Family family, std::string_view key,
                                         const Snapshot* snapshot) const override {
    std::string value;
    rocksdb::Status s = db_->Get(read_options(snapshot), cf_of(family), key, &value);
    if (s.IsNotFound()) return std::optional<std::string>();
    if (!s.ok()) return FromRocks(s, std::string("reading ") + std::string(FamilyName(family)));
    return std::optional<std::string>(std::move(value));
  }

  Result<std::vector<std::optional<std::string>>> MultiGet(
      Family family, const std::vector<std::string>& keys, const Snapshot* snapshot) const override {
    std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
    std::vector<rocksdb::PinnableSlice> values(keys.size());
    std::vector<rocksdb::Status> statuses(keys.size());
    db_->MultiGet(read_options(snapshot), cf_of(family), keys.size(), slices.data(), values.data(),
                  statuses.data());
    std::vector<std::optional<std::string>> out(keys.size());
    for (size_t i = 0; i < keys.size(); ++i) {
      if (statuses[i].IsNotFound()) continue;
      if (!statuses[i].ok())
        return FromRocks(statuses[i], std::string("reading ") + std::string(FamilyName(family)));
      out[i] = values[i].ToString();
    }
    return out;
  }

  Status Scan(Family family, std::string_view prefix, const Visitor& visit,
              const Snapshot* snapshot) const override {
    rocksdb::ReadOptions ro = read_options(snapshot);
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_of(family)));
    bool stop = false;
    for (it->Seek(prefix); it->Valid() && !stop; it->Next()) {
      std::string_view key(it->key().data(), it->key().size());
      if (key.substr(0, prefix.size()) != prefix) break;
      M3VDB_RETURN_IF_ERROR(visit(key, std::string_view(it->value().data(), it->value().size()), &stop));
    }
    return FromRocks(it->status(), std::string("scanning ") + std::string(FamilyName(family)));
  }

  std::unique_ptr<Snapshot> GetSnapshot() const override {
    return std::make_unique<RocksSnapshot>(db_.get(), db_->GetSnapshot());
  }

  Status Checkpoint(const std::string& dir) const override {
    rocksdb::Checkpoint* raw = nullptr;
    M3VDB_RETURN_IF_ERROR(FromRocks(rocksdb::Checkpoint::Create(db_.get(), &raw), "checkpoint"));
    std::unique_ptr<rocksdb::Checkpoint> cp(raw);
    return FromRocks(cp->CreateCheckpoint(dir), "checkpoint to " + dir);
  }

  Status Flush() override {
    std::vector<rocksdb::ColumnFamilyHandle*> all(families_.begin(), families_.end());
    return FromRocks(db_->Flush(rocksdb::FlushOptions(), all), "flush");
  }

 private:
  rocksdb::ColumnFamilyHandle* cf_of(Family f) const { return families_[static_cast<int>(f)]; }
  static rocksdb::ReadOptions read_options(const Snapshot* snapshot) {
    rocksdb::ReadOptions ro;
    if (snapshot) ro.snapshot = static_cast<const RocksSnapshot*>(snapshot)->get();
    return ro;
  }

  std::unique_ptr<rocksdb::Env> env_;  // the fault-injection Env, or null; outlives db_
  std::unique_ptr<rocksdb::DB> db_;
  bool sync_;
  rocksdb::ColumnFamilyHandle* default_ = nullptr;
  std::array<rocksdb::ColumnFamilyHandle*, kFamilyCount> families_{};
};

}  // namespace

Result<std::unique_ptr<Store>> Store::Open(const std::string& path, const StoreOptions& options) {
  rocksdb::Options db_options;
  db_options.create_if_missing = options.create_if_missing;
  db_options.create_missing_column_families = true;
  db_options.paranoid_checks = true;
  db_options.IncreaseParallelism(2);
  std::unique_ptr<rocksdb::Env> env;
  if (options.faults) {  // tests only (storage/fault_injection.h)
    env = rocksdb::NewCompositeEnv(
        detail::NewFaultInjectionFileSystem(rocksdb::FileSystem::Default(), options.faults));
    db_options.env = env.get();
  }

  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  rocksdb::ColumnFamilyOptions cf_options;
  cf_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));

  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  descriptors.emplace_back(rocksdb::kDefaultColumnFamilyName, cf_options);
  for (int i = 0; i < kFamilyCount; ++i)
    descriptors.emplace_back(std::string(FamilyName(static_cast<Family>(i))), cf_options);

  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(rocksdb::DBOptions(db_options), path, descriptors, &handles, &raw);
  if (!s.ok()) return FromRocks(s, "opening database at " + path);
  return std::unique_ptr<Store>(
      std::make_unique<RocksStore>(std::move(env), std::unique_ptr<rocksdb::DB>(raw), std::move(handles),
                                   options.sync));
}

}  // namespace m3vdb::storage
