// Helper process for crash_test.cc: opens the database at argv[1], gets (or creates) the crash
// collection and upserts batches argv[2], argv[2]+1, ... (content from crash_batch.h), printing
// "ack <n>" and flushing stdout after each batch that Upsert acknowledged. It runs until killed
// (or, with argv[3], for that many batches). Any error exits with status 2.

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "m3vdb/m3vdb.h"
#include "tests/engine/crash_batch.h"

namespace {

int Fail(const std::string& what, const m3vdb::Status& status) {
  std::fprintf(stderr, "crash_writer: %s: %s\n", what.c_str(), status.ToString().c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: crash_writer <db path> <first batch> [batches]\n");
    return 2;
  }
  const std::string path = argv[1];
  const long long first = std::atoll(argv[2]);
  const long long count = argc > 3 ? std::atoll(argv[3]) : -1;

  auto db = m3vdb::Database::Open(m3vdb::Options{}, path);
  if (!db.ok()) return Fail("open " + path, db.status());
  auto collection = (*db)->GetCollection(m3vdb::test::kCrashCollection);
  if (!collection.ok() && collection.status().code() == m3vdb::StatusCode::kNotFound) {
    collection = (*db)->CreateCollection(m3vdb::test::kCrashCollection, m3vdb::test::CrashSchema());
  }
  if (!collection.ok()) return Fail("collection", collection.status());

  for (long long batch = first; count < 0 || batch < first + count; ++batch) {
    const auto docs = m3vdb::test::CrashBatch(batch);
    const m3vdb::Status status = (*collection)->Upsert(docs);
    if (!status.ok()) return Fail("upsert batch " + std::to_string(batch), status);
    std::printf("ack %lld\n", batch);
    std::fflush(stdout);
  }
  return 0;
}
