// storage: test-only fault injection (the one hook tests use to make the disk misbehave).
//
// When `StoreOptions::faults` is set, the Store runs RocksDB on a file system wrapper
// (detail/fault_fs.cc) that consults these switches on every file operation and, while a switch
// is on, fails the operation instead of passing it to the real file system:
//   fail_writes  Append / PositionedAppend / Flush of any file (WAL, SST, MANIFEST) -> IOError,
//                nothing of the failed call reaches the file
//   no_space     the same operations -> IOStatus::NoSpace (a full disk, ENOSPC)
//   fail_syncs   Sync / Fsync / RangeSync -> IOError (the data was written but not made durable)
//   fail_reads   Read / MultiRead of table files (.sst) -> IOError
// Switches may be flipped at any time from any thread; `injected` counts the failures handed
// out. Production code never sets `StoreOptions::faults` (it is null by default).
#pragma once

#include <atomic>
#include <cstdint>

namespace m3vdb::storage {

struct FaultInjection {
  std::atomic<bool> fail_writes{false};
  std::atomic<bool> no_space{false};
  std::atomic<bool> fail_syncs{false};
  std::atomic<bool> fail_reads{false};
  std::atomic<uint64_t> injected{0};

  void Clear() {
    fail_writes = false;
    no_space = false;
    fail_syncs = false;
    fail_reads = false;
  }
};

}  // namespace m3vdb::storage
