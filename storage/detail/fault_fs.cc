// The fault-injecting file system: thin wrappers around RocksDB's own file objects that check
// the FaultInjection switches before delegating.
#include "storage/detail/fault_fs.h"

#include <string>

namespace m3vdb::storage::detail {

namespace {

using rocksdb::IODebugContext;
using rocksdb::IOOptions;
using rocksdb::IOStatus;
using rocksdb::Slice;

// The status to return instead of writing, or OK to go ahead.
IOStatus WriteFault(FaultInjection& f, const char* op) {
  if (f.no_space.load()) {
    f.injected.fetch_add(1);
    return IOStatus::NoSpace(std::string("injected fault: no space left on device (") + op + ")");
  }
  if (f.fail_writes.load()) {
    f.injected.fetch_add(1);
    return IOStatus::IOError(std::string("injected fault: write failed (") + op + ")");
  }
  return IOStatus::OK();
}

IOStatus SyncFault(FaultInjection& f, const char* op) {
  if (f.fail_syncs.load()) {
    f.injected.fetch_add(1);
    return IOStatus::IOError(std::string("injected fault: sync failed (") + op + ")");
  }
  return IOStatus::OK();
}

IOStatus ReadFault(FaultInjection& f) {
  if (f.fail_reads.load()) {
    f.injected.fetch_add(1);
    return IOStatus::IOError("injected fault: read failed");
  }
  return IOStatus::OK();
}

class FaultWritableFile final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  FaultWritableFile(std::unique_ptr<rocksdb::FSWritableFile> file, std::shared_ptr<FaultInjection> f)
      : FSWritableFileOwnerWrapper(std::move(file)), f_(std::move(f)) {}

  IOStatus Append(const Slice& data, const IOOptions& o, IODebugContext* dbg) override {
    IOStatus s = WriteFault(*f_, "append");
    return s.ok() ? target()->Append(data, o, dbg) : s;
  }
  IOStatus Append(const Slice& data, const IOOptions& o, const rocksdb::DataVerificationInfo& v,
                  IODebugContext* dbg) override {
    IOStatus s = WriteFault(*f_, "append");
    return s.ok() ? target()->Append(data, o, v, dbg) : s;
  }
  IOStatus PositionedAppend(const Slice& data, uint64_t offset, const IOOptions& o,
                            IODebugContext* dbg) override {
    IOStatus s = WriteFault(*f_, "positioned append");
    return s.ok() ? target()->PositionedAppend(data, offset, o, dbg) : s;
  }
  IOStatus PositionedAppend(const Slice& data, uint64_t offset, const IOOptions& o,
                            const rocksdb::DataVerificationInfo& v, IODebugContext* dbg) override {
    IOStatus s = WriteFault(*f_, "positioned append");
    return s.ok() ? target()->PositionedAppend(data, offset, o, v, dbg) : s;
  }
  IOStatus Flush(const IOOptions& o, IODebugContext* dbg) override {
    IOStatus s = WriteFault(*f_, "flush");
    return s.ok() ? target()->Flush(o, dbg) : s;
  }
  IOStatus Sync(const IOOptions& o, IODebugContext* dbg) override {
    IOStatus s = SyncFault(*f_, "sync");
    return s.ok() ? target()->Sync(o, dbg) : s;
  }
  IOStatus Fsync(const IOOptions& o, IODebugContext* dbg) override {
    IOStatus s = SyncFault(*f_, "fsync");
    return s.ok() ? target()->Fsync(o, dbg) : s;
  }
  IOStatus RangeSync(uint64_t offset, uint64_t nbytes, const IOOptions& o, IODebugContext* dbg) override {
    IOStatus s = SyncFault(*f_, "range sync");
    return s.ok() ? target()->RangeSync(offset, nbytes, o, dbg) : s;
  }

 private:
  std::shared_ptr<FaultInjection> f_;
};

class FaultRandomAccessFile final : public rocksdb::FSRandomAccessFileOwnerWrapper {
 public:
  FaultRandomAccessFile(std::unique_ptr<rocksdb::FSRandomAccessFile> file, std::shared_ptr<FaultInjection> f)
      : FSRandomAccessFileOwnerWrapper(std::move(file)), f_(std::move(f)) {}

  IOStatus Read(uint64_t offset, size_t n, const IOOptions& o, Slice* result, char* scratch,
                IODebugContext* dbg) const override {
    IOStatus s = ReadFault(*f_);
    return s.ok() ? target()->Read(offset, n, o, result, scratch, dbg) : s;
  }
  IOStatus MultiRead(rocksdb::FSReadRequest* reqs, size_t num_reqs, const IOOptions& o,
                     IODebugContext* dbg) override {
    IOStatus s = ReadFault(*f_);
    if (!s.ok()) {
      for (size_t i = 0; i < num_reqs; ++i) reqs[i].status = s;
      return s;
    }
    return target()->MultiRead(reqs, num_reqs, o, dbg);
  }

 private:
  std::shared_ptr<FaultInjection> f_;
};

bool IsTableFile(const std::string& name) {
  return name.size() >= 4 && name.compare(name.size() - 4, 4, ".sst") == 0;
}

class FaultFileSystem final : public rocksdb::FileSystemWrapper {
 public:
  FaultFileSystem(std::shared_ptr<rocksdb::FileSystem> base, std::shared_ptr<FaultInjection> f)
      : FileSystemWrapper(base), f_(std::move(f)) {}

  const char* Name() const override { return "M3vdbFaultInjectionFileSystem"; }

  IOStatus NewWritableFile(const std::string& name, const rocksdb::FileOptions& o,
                           std::unique_ptr<rocksdb::FSWritableFile>* out, IODebugContext* dbg) override {
    IOStatus s = WriteFault(*f_, "create file");
    if (!s.ok()) return s;
    s = target()->NewWritableFile(name, o, out, dbg);
    if (s.ok()) *out = std::make_unique<FaultWritableFile>(std::move(*out), f_);
    return s;
  }
  IOStatus ReopenWritableFile(const std::string& name, const rocksdb::FileOptions& o,
                              std::unique_ptr<rocksdb::FSWritableFile>* out, IODebugContext* dbg) override {
    IOStatus s = target()->ReopenWritableFile(name, o, out, dbg);
    if (s.ok()) *out = std::make_unique<FaultWritableFile>(std::move(*out), f_);
    return s;
  }
  IOStatus ReuseWritableFile(const std::string& name, const std::string& old_name,
                             const rocksdb::FileOptions& o, std::unique_ptr<rocksdb::FSWritableFile>* out,
                             IODebugContext* dbg) override {
    IOStatus s = target()->ReuseWritableFile(name, old_name, o, out, dbg);
    if (s.ok()) *out = std::make_unique<FaultWritableFile>(std::move(*out), f_);
    return s;
  }
  IOStatus NewRandomAccessFile(const std::string& name, const rocksdb::FileOptions& o,
                               std::unique_ptr<rocksdb::FSRandomAccessFile>* out,
                               IODebugContext* dbg) override {
    IOStatus s = target()->NewRandomAccessFile(name, o, out, dbg);
    if (s.ok() && IsTableFile(name)) *out = std::make_unique<FaultRandomAccessFile>(std::move(*out), f_);
    return s;
  }

 private:
  std::shared_ptr<FaultInjection> f_;
};

}  // namespace

std::shared_ptr<rocksdb::FileSystem> NewFaultInjectionFileSystem(
    std::shared_ptr<rocksdb::FileSystem> base, std::shared_ptr<FaultInjection> faults) {
  return std::make_shared<FaultFileSystem>(std::move(base), std::move(faults));
}

}  // namespace m3vdb::storage::detail
