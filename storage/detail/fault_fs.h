// A RocksDB FileSystem that fails operations on demand (see storage/fault_injection.h for the
// switches and what each one fails). Used only when StoreOptions::faults is set.
#pragma once

#include <rocksdb/file_system.h>

#include <memory>

#include "storage/fault_injection.h"

namespace m3vdb::storage::detail {

std::shared_ptr<rocksdb::FileSystem> NewFaultInjectionFileSystem(
    std::shared_ptr<rocksdb::FileSystem> base, std::shared_ptr<FaultInjection> faults);

}  // namespace m3vdb::storage::detail
