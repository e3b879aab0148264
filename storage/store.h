// storage: the only module that sees RocksDB.
//
// A `Store` is one RocksDB instance with one column family per kind of data (see `Family` and
// docs/formats.md). Callers build a `WriteBatch` of puts and deletes across families and commit
// it with `Write`: the batch lands whole or not at all, and `Write` returns only after RocksDB
// accepted it (WAL fsynced first when `StoreOptions::sync`). Reads see the latest committed
// state, or the state of a `Snapshot`.
//
// Thread safety: every method of Store is safe to call concurrently. A WriteBatch is a plain
// value owned by one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "m3vdb/status.h"

namespace m3vdb::storage {

// Column families. The order is part of nothing persistent: families are opened by name.
enum class Family : int {
  kMeta = 0,  // format version, collection catalog, per-collection counters
  kDocs,      // text + metadata JSON per document
  kDense,     // float32 dense vector per document
  kSparse,    // packed (token id, weight) pairs per document
  kColbert,   // fp16 ColBERT matrix per document
  kCodes,     // IVF list + PQ code per document (learned index)
  kIds,       // user id <-> internal id
};
inline constexpr int kFamilyCount = 7;
std::string_view FamilyName(Family family);

struct FaultInjection;  // storage/fault_injection.h (tests only)

struct StoreOptions {
  bool create_if_missing = true;
  bool sync = true;
  size_t block_cache_bytes = 256 << 20;
  // Test-only: when set, every file operation of this store consults these switches and fails
  // on demand (storage/fault_injection.h). Null in production.
  std::shared_ptr<FaultInjection> faults;
};

class WriteBatch {
 public:
  WriteBatch();
  ~WriteBatch();
  WriteBatch(WriteBatch&&) noexcept;
  WriteBatch& operator=(WriteBatch&&) noexcept;

  void Put(Family family, std::string_view key, std::string_view value);
  void Delete(Family family, std::string_view key);
  // Deletes every key in [begin, end) of the family.
  void DeleteRange(Family family, std::string_view begin, std::string_view end);
  size_t Count() const;

  // The recorded operations, in order (read by the Store implementation).
  struct Op {
    enum Kind { kPut, kDelete, kDeleteRange } kind;
    Family family;
    std::string a, b;  // key and value, or begin and end of a range
  };
  const std::vector<Op>& ops() const { return ops_; }

 private:
  std::vector<Op> ops_;
};

// A consistent read view; release it by destroying it (before the Store).
class Snapshot {
 public:
  virtual ~Snapshot() = default;
};

class Store {
 public:
  static Result<std::unique_ptr<Store>> Open(const std::string& path, const StoreOptions& options);
  virtual ~Store() = default;

  virtual Status Write(const WriteBatch& batch) = 0;

  // The value at `key`, std::nullopt when absent. `snapshot` may be null (latest state).
  virtual Result<std::optional<std::string>> Get(Family family, std::string_view key,
                                                 const Snapshot* snapshot = nullptr) const = 0;
  // Values for many keys of one family, in order (std::nullopt where absent).
  virtual Result<std::vector<std::optional<std::string>>> MultiGet(
      Family family, const std::vector<std::string>& keys,
      const Snapshot* snapshot = nullptr) const = 0;

  // Calls `visit(key, value)` for every key starting with `prefix`, in key order, until it
  // returns false. A Status returned by `visit` other than OK stops the scan and is returned.
  using Visitor = std::function<Status(std::string_view key, std::string_view value, bool* stop)>;
  virtual Status Scan(Family family, std::string_view prefix, const Visitor& visit,
                      const Snapshot* snapshot = nullptr) const = 0;

  virtual std::unique_ptr<Snapshot> GetSnapshot() const = 0;

  // A consistent copy of the whole database in `dir` (which must not exist), taken while
  // writes go on (RocksDB checkpoint: hard links where possible).
  virtual Status Checkpoint(const std::string& dir) const = 0;

  // Flushes memtables to SST files (used by tests and before snapshots).
  virtual Status Flush() = 0;
};

}  // namespace m3vdb::storage
