// Options for opening databases in tests.
#pragma once

#include "m3vdb/m3vdb.h"

namespace m3vdb::test {

// Opens an existing database only (a missing one is an error, never a new empty one).
inline Options ExistingOnly() {
  Options o;
  o.create_if_missing = false;
  return o;
}

inline Options NoSync() {
  Options o;
  o.sync = false;
  return o;
}

}  // namespace m3vdb::test
