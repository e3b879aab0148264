#include "storage/store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

namespace m3vdb::storage {
namespace {

namespace fs = std::filesystem;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("m3vdb-store-test-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::unique_ptr<Store> OpenStore() {
    auto s = Store::Open(dir_.string(), StoreOptions{});
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return std::move(s).value();
  }
  fs::path dir_;
};

TEST_F(StoreTest, BatchIsAppliedWholeAndSurvivesReopen) {
  {
    auto store = OpenStore();
    WriteBatch b;
    b.Put(Family::kDocs, "k1", "v1");
    b.Put(Family::kDense, "k1", "d1");
    b.Put(Family::kMeta, "m", "x");
    ASSERT_TRUE(store->Write(b).ok());
  }
  auto store = OpenStore();
  EXPECT_EQ(store->Get(Family::kDocs, "k1").value().value(), "v1");
  EXPECT_EQ(store->Get(Family::kDense, "k1").value().value(), "d1");
  EXPECT_FALSE(store->Get(Family::kSparse, "k1").value().has_value());  // families are separate
  auto many = store->MultiGet(Family::kDocs, {"k1", "nope"});
  ASSERT_TRUE(many.ok());
  EXPECT_EQ(many->at(0).value(), "v1");
  EXPECT_FALSE(many->at(1).has_value());
}

TEST_F(StoreTest, ScanDeleteRangeAndSnapshot) {
  auto store = OpenStore();
  WriteBatch b;
  for (char c : std::string("abcde")) b.Put(Family::kIds, std::string("p") + c, std::string(1, c));
  b.Put(Family::kIds, "q0", "other");
  ASSERT_TRUE(store->Write(b).ok());
  auto snap = store->GetSnapshot();

  std::string seen;
  ASSERT_TRUE(store->Scan(Family::kIds, "p", [&](std::string_view, std::string_view v, bool*) {
    seen += v;
    return Status::OK();
  }).ok());
  EXPECT_EQ(seen, "abcde");

  WriteBatch del;
  del.DeleteRange(Family::kIds, "pb", "pd");
  del.Delete(Family::kIds, "pe");
  ASSERT_TRUE(store->Write(del).ok());
  seen.clear();
  ASSERT_TRUE(store->Scan(Family::kIds, "p", [&](std::string_view, std::string_view v, bool*) {
    seen += v;
    return Status::OK();
  }).ok());
  EXPECT_EQ(seen, "ad");
  // The snapshot still sees the state before the delete.
  seen.clear();
  ASSERT_TRUE(store->Scan(Family::kIds, "p", [&](std::string_view, std::string_view v, bool*) {
    seen += v;
    return Status::OK();
  }, snap.get()).ok());
  EXPECT_EQ(seen, "abcde");
  EXPECT_EQ(store->Get(Family::kIds, "pe", snap.get()).value().value(), "e");
  // A visitor's error stops the scan and is returned.
  Status s = store->Scan(Family::kIds, "p", [](std::string_view, std::string_view, bool*) {
    return Status::Corruption("stop");
  });
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
}

TEST_F(StoreTest, CheckpointIsAConsistentCopy) {
  auto store = OpenStore();
  WriteBatch b;
  b.Put(Family::kDocs, "a", "1");
  ASSERT_TRUE(store->Write(b).ok());
  const fs::path copy = dir_.string() + "-copy";
  fs::remove_all(copy);
  ASSERT_TRUE(store->Checkpoint(copy.string()).ok());
  WriteBatch later;
  later.Put(Family::kDocs, "b", "2");
  ASSERT_TRUE(store->Write(later).ok());
  {
    auto c = Store::Open(copy.string(), StoreOptions{});
    ASSERT_TRUE(c.ok());
    EXPECT_EQ((*c)->Get(Family::kDocs, "a").value().value(), "1");
    EXPECT_FALSE((*c)->Get(Family::kDocs, "b").value().has_value());
  }
  fs::remove_all(copy);
  Status exists = store->Checkpoint(dir_.string());  // target exists
  EXPECT_FALSE(exists.ok());
  EXPECT_NE(exists.message().find(dir_.string()), std::string::npos) << exists.ToString();
}

TEST_F(StoreTest, OpenErrorsAreStatuses) {
  StoreOptions no_create;
  no_create.create_if_missing = false;
  auto missing = Store::Open(dir_.string(), no_create);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find(dir_.string()), std::string::npos);

  fs::create_directories(dir_);
  {
    auto store = OpenStore();
    ASSERT_TRUE(store->Flush().ok());
  }
  // Corrupt the CURRENT file: opening reports an error instead of crashing.
  {
    FILE* f = std::fopen((dir_ / "CURRENT").c_str(), "w");
    std::fputs("MANIFEST-999999\n", f);
    std::fclose(f);
  }
  auto corrupt = Store::Open(dir_.string(), StoreOptions{});
  EXPECT_FALSE(corrupt.ok());
}

}  // namespace
}  // namespace m3vdb::storage
