// The Store under a misbehaving disk (storage/fault_injection.h): failed writes, a full disk,
// failed fsyncs and reads, and corrupted files on open. Each failure must come back as a Status
// naming what failed, must never leave part of a batch behind, and must not crash.
#include "storage/fault_injection.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "storage/store.h"

namespace m3vdb::storage {
namespace {

namespace fs = std::filesystem;

class FaultInjectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("m3vdb-fault-test-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    faults_ = std::make_shared<FaultInjection>();
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<Store> Open(bool with_faults) {
    StoreOptions options;
    if (with_faults) options.faults = faults_;
    auto s = Store::Open(dir_.string(), options);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }

  // A batch of `n` puts across three families, keyed by `tag`.
  static WriteBatch Batch(const std::string& tag, int n) {
    WriteBatch b;
    for (int i = 0; i < n; ++i) {
      const std::string key = tag + "/" + std::to_string(i);
      b.Put(Family::kDocs, key, "doc-" + key);
      b.Put(Family::kDense, key, std::string(256, static_cast<char>('a' + i % 26)));
      b.Put(Family::kIds, key, key);
    }
    return b;
  }
  // How many of the batch's keys are present in every family (and that none is present in
  // only some families).
  static int Present(const Store& store, const std::string& tag, int n) {
    int whole = 0;
    for (int i = 0; i < n; ++i) {
      const std::string key = tag + "/" + std::to_string(i);
      int families = 0;
      for (Family f : {Family::kDocs, Family::kDense, Family::kIds}) {
        auto v = store.Get(f, key);
        EXPECT_TRUE(v.ok()) << v.status().ToString();
        if (v.ok() && v->has_value()) ++families;
      }
      EXPECT_TRUE(families == 0 || families == 3) << key << " is in " << families << " of 3 families";
      if (families == 3) ++whole;
    }
    return whole;
  }

  fs::path dir_;
  std::shared_ptr<FaultInjection> faults_;
};

TEST_F(FaultInjectionTest, FailedWriteIsReportedAndTheBatchIsAbsentAfterReopen) {
  {
    auto store = Open(true);
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->Write(Batch("a", 20)).ok());
    faults_->fail_writes = true;
    Status s = store->Write(Batch("b", 20));
    EXPECT_FALSE(s.ok());
    EXPECT_EQ(s.code(), StatusCode::kIOError) << s.ToString();
    EXPECT_NE(s.message().find("injected fault"), std::string::npos) << s.ToString();
    EXPECT_GT(faults_->injected.load(), 0u);
    // The failed batch is not visible; what was acknowledged still is.
    EXPECT_EQ(Present(*store, "b", 20), 0);
    EXPECT_EQ(Present(*store, "a", 20), 20);
    faults_->Clear();
  }
  auto store = Open(false);
  ASSERT_TRUE(store);
  EXPECT_EQ(Present(*store, "a", 20), 20);
  EXPECT_EQ(Present(*store, "b", 20), 0);
  // The reopened database takes writes again.
  EXPECT_TRUE(store->Write(Batch("c", 5)).ok());
  EXPECT_EQ(Present(*store, "c", 5), 5);
}

TEST_F(FaultInjectionTest, FullDiskIsResourceExhaustedAndTheDatabaseStaysReadable) {
  {
    auto store = Open(true);
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->Write(Batch("a", 50)).ok());
    ASSERT_TRUE(store->Flush().ok());
    ASSERT_TRUE(store->Write(Batch("m", 10)).ok());  // still in the memtable
    faults_->no_space = true;
    for (int attempt = 0; attempt < 3; ++attempt) {
      Status s = store->Write(Batch("b" + std::to_string(attempt), 10));
      ASSERT_FALSE(s.ok());
      // The first failure is the disk's; RocksDB then stops writes and repeats the cause.
      EXPECT_TRUE(s.code() == StatusCode::kResourceExhausted || s.code() == StatusCode::kIOError)
          << s.ToString();
      EXPECT_NE(s.message().find("space"), std::string::npos) << s.ToString();
    }
    // Reads of table files and of the memtable, point and scan, still work.
    EXPECT_EQ(Present(*store, "a", 50), 50);
    EXPECT_EQ(Present(*store, "m", 10), 10);
    EXPECT_EQ(Present(*store, "b0", 10), 0);
    int scanned = 0;
    ASSERT_TRUE(store->Scan(Family::kDocs, "a/", [&](std::string_view, std::string_view, bool*) {
      ++scanned;
      return Status::OK();
    }).ok());
    EXPECT_EQ(scanned, 50);
    faults_->Clear();
  }
  // With space again, a reopen recovers everything acknowledged and writes again.
  auto store = Open(false);
  ASSERT_TRUE(store);
  EXPECT_EQ(Present(*store, "a", 50), 50);
  EXPECT_EQ(Present(*store, "m", 10), 10);
  for (int attempt = 0; attempt < 3; ++attempt) EXPECT_EQ(Present(*store, "b" + std::to_string(attempt), 10), 0);
  EXPECT_TRUE(store->Write(Batch("c", 5)).ok());
}

TEST_F(FaultInjectionTest, FailedFsyncIsReportedAndTheBatchIsWholeOrAbsent) {
  // A failed fsync happens after the bytes reached the OS: the batch may survive a reopen, but
  // only whole (never some of its keys), and the caller was told it is not known to be durable.
  {
    auto store = Open(true);
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->Write(Batch("a", 10)).ok());
    faults_->fail_syncs = true;
    Status s = store->Write(Batch("b", 10));
    EXPECT_FALSE(s.ok());
    EXPECT_NE(s.message().find("sync failed"), std::string::npos) << s.ToString();
    faults_->Clear();
  }
  auto store = Open(false);
  ASSERT_TRUE(store);
  EXPECT_EQ(Present(*store, "a", 10), 10);
  const int b = Present(*store, "b", 10);
  EXPECT_TRUE(b == 0 || b == 10) << b;
}

TEST_F(FaultInjectionTest, FailedTableReadsAreStatuses) {
  {
    auto store = Open(false);
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->Write(Batch("a", 200)).ok());
    ASSERT_TRUE(store->Flush().ok());
  }
  StoreOptions options;
  options.faults = faults_;
  options.block_cache_bytes = 0;  // every read goes to the file
  auto opened = Store::Open(dir_.string(), options);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  auto& store = *opened;
  faults_->fail_reads = true;
  auto v = store->Get(Family::kDocs, "a/7");
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kIOError) << v.status().ToString();
  EXPECT_NE(v.status().message().find("reading docs"), std::string::npos) << v.status().ToString();
  auto many = store->MultiGet(Family::kDense, {"a/1", "a/2"});
  EXPECT_FALSE(many.ok());
  Status scan = store->Scan(Family::kIds, "a/", [](std::string_view, std::string_view, bool*) { return Status::OK(); });
  EXPECT_FALSE(scan.ok());
  faults_->Clear();
  auto again = store->Get(Family::kDocs, "a/7");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->value_or(""), "doc-a/7");
}

// Overwrites `n` bytes in the middle of `path` with garbage.
void Scribble(const fs::path& path, size_t n) {
  const auto size = fs::file_size(path);
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(size / 2 > n / 2 ? size / 2 - n / 2 : 0));
  for (size_t i = 0; i < n; ++i) f.put(static_cast<char>(0xA5 ^ i));
}

std::vector<fs::path> FilesEndingWith(const fs::path& dir, const std::string& suffix, const std::string& prefix = "") {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0 &&
        name.rfind(prefix, 0) == 0)
      out.push_back(e.path());
  }
  return out;
}

TEST_F(FaultInjectionTest, CorruptedTableFileIsCorruptionNotACrash) {
  {
    auto store = Open(false);
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->Write(Batch("a", 300)).ok());
    ASSERT_TRUE(store->Flush().ok());
  }
  auto tables = FilesEndingWith(dir_, ".sst");
  ASSERT_FALSE(tables.empty());
  for (const auto& t : tables) Scribble(t, 64);
  StoreOptions options;
  options.block_cache_bytes = 0;
  auto opened = Store::Open(dir_.string(), options);
  if (!opened.ok()) {
    EXPECT_EQ(opened.status().code(), StatusCode::kCorruption) << opened.status().ToString();
    return;
  }
  // Opened: reading the damaged blocks must report the corruption (block checksums).
  Status seen = Status::OK();
  for (Family f : {Family::kDocs, Family::kDense, Family::kIds}) {
    Status s = (*opened)->Scan(f, "", [](std::string_view, std::string_view, bool*) { return Status::OK(); });
    if (!s.ok()) seen = s;
  }
  ASSERT_FALSE(seen.ok()) << "64 scribbled bytes in every table file went unnoticed";
  EXPECT_EQ(seen.code(), StatusCode::kCorruption) << seen.ToString();
}

TEST_F(FaultInjectionTest, CorruptedManifestIsAnErrorOnOpen) {
  {
    auto store = Open(false);
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->Write(Batch("a", 10)).ok());
    ASSERT_TRUE(store->Flush().ok());
  }
  auto manifests = FilesEndingWith(dir_, "", "MANIFEST-");
  ASSERT_EQ(manifests.size(), 1u);
  Scribble(manifests[0], 32);
  auto opened = Store::Open(dir_.string(), StoreOptions{});
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), StatusCode::kCorruption) << opened.status().ToString();
  EXPECT_NE(opened.status().message().find(dir_.string()), std::string::npos) << opened.status().ToString();
}

TEST_F(FaultInjectionTest, TruncatedTableFileIsAnErrorOnOpen) {
  {
    auto store = Open(false);
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->Write(Batch("a", 100)).ok());
    ASSERT_TRUE(store->Flush().ok());
  }
  auto tables = FilesEndingWith(dir_, ".sst");
  ASSERT_FALSE(tables.empty());
  fs::resize_file(tables[0], fs::file_size(tables[0]) / 2);
  auto opened = Store::Open(dir_.string(), StoreOptions{});
  ASSERT_FALSE(opened.ok());
  EXPECT_TRUE(opened.status().code() == StatusCode::kCorruption || opened.status().code() == StatusCode::kIOError)
      << opened.status().ToString();
}

}  // namespace
}  // namespace m3vdb::storage
