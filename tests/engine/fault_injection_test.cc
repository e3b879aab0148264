// The engine over a misbehaving disk (storage/fault_injection.h): a write that the disk refuses
// is reported to the caller and changes nothing (in memory, and after a reopen); a full disk
// leaves the collection searchable; corrupted records on open are Corruption, not a crash.
#include "storage/fault_injection.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "engine/detail/database_impl.h"
#include "m3vdb/m3vdb.h"
#include "storage/keys.h"
#include "storage/store.h"
#include "tests/engine/seeded_random.h"
#include "tests/engine/temp_dir.h"

namespace m3vdb {
namespace {

using test::SeededRandom;
using test::TempDir;

constexpr uint32_t kDim = 4;

Document Doc(const std::string& id, uint64_t seed) {
  SeededRandom rng(seed);
  Document d;
  d.id = id;
  for (uint32_t j = 0; j < kDim; ++j) d.dense.push_back(static_cast<float>(rng.Uniform(-1, 1)));
  d.metadata_json = "{\"seed\":" + std::to_string(seed) + "}";
  return d;
}

class EngineFaultTest : public ::testing::Test {
 protected:
  void SetUp() override { faults_ = std::make_shared<storage::FaultInjection>(); }

  // The database over a store that consults faults_.
  std::unique_ptr<Database> OpenFaulty() {
    storage::StoreOptions so;
    so.faults = faults_;
    auto store = storage::Store::Open(dir_.path().string(), so);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    if (!store.ok()) return nullptr;
    auto db = std::make_unique<engine::DatabaseImpl>(std::shared_ptr<storage::Store>(std::move(*store)), Options{},
                                                     /*model=*/nullptr);
    Status s = db->Load();
    EXPECT_TRUE(s.ok()) << s.ToString();
    return db;
  }
  std::unique_ptr<Database> OpenPlain() {
    auto db = Database::Open(Options{}, dir_.path().string());
    EXPECT_TRUE(db.ok()) << db.status().ToString();
    return db.ok() ? std::move(*db) : nullptr;
  }

  // Ids of the top-n hits for the query `q`.
  static std::vector<std::string> Top(const Collection& c, const std::vector<float>& q, int n) {
    Query query;
    query.dense = q;
    SearchOptions o;
    o.top_k = n;
    auto hits = c.Search(query, o);
    EXPECT_TRUE(hits.ok()) << hits.status().ToString();
    std::vector<std::string> ids;
    if (hits.ok())
      for (const auto& h : *hits) ids.push_back(h.id);
    return ids;
  }

  // The state every check compares against: ten acknowledged documents a0..a9.
  static void ExpectAcknowledgedOnly(const Collection& c) {
    EXPECT_EQ(c.Count(), 10u);
    for (int i = 0; i < 10; ++i) {
      auto d = c.Get("a" + std::to_string(i));
      ASSERT_TRUE(d.ok()) << d.status().ToString();
      EXPECT_EQ(d->dense, Doc("a" + std::to_string(i), i).dense);  // not the refused replacement
    }
    for (int i = 0; i < 5; ++i) EXPECT_EQ(c.Get("b" + std::to_string(i)).status().code(), StatusCode::kNotFound);
    // Search sees exactly the ten: a full-depth search returns each once, nothing else.
    auto ids = Top(c, Doc("q", 99).dense, 20);
    std::sort(ids.begin(), ids.end());
    std::vector<std::string> want;
    for (int i = 0; i < 10; ++i) want.push_back("a" + std::to_string(i));
    EXPECT_EQ(ids, want);
  }

  // A batch that adds b0..b4 and replaces a0 with a different vector.
  static std::vector<Document> Refused() {
    std::vector<Document> batch;
    for (int i = 0; i < 5; ++i) batch.push_back(Doc("b" + std::to_string(i), 100 + i));
    batch.push_back(Doc("a0", 555));
    return batch;
  }

  TempDir dir_;
  std::shared_ptr<storage::FaultInjection> faults_;
};

TEST_F(EngineFaultTest, RefusedWriteIsReportedAndChangesNothing) {
  {
    auto db = OpenFaulty();
    ASSERT_TRUE(db);
    CollectionSchema schema;
    schema.dense_dim = kDim;
    auto c = db->CreateCollection("c", schema);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    std::vector<Document> docs;
    for (int i = 0; i < 10; ++i) docs.push_back(Doc("a" + std::to_string(i), i));
    ASSERT_TRUE((*c)->Upsert(docs).ok());

    faults_->fail_writes = true;
    Status s = (*c)->Upsert(Refused());
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.code(), StatusCode::kIOError) << s.ToString();
    EXPECT_NE(s.message().find("injected fault"), std::string::npos) << s.ToString();
    std::vector<std::string> del = {"a1", "a2"};
    auto deleted = (*c)->Delete(del);
    EXPECT_FALSE(deleted.ok());
    EXPECT_FALSE(db->CreateCollection("d", schema).ok());
    EXPECT_FALSE(db->DropCollection("c").ok());
    ExpectAcknowledgedOnly(**c);
    faults_->Clear();
  }
  auto db = OpenPlain();
  ASSERT_TRUE(db);
  EXPECT_EQ(db->ListCollections().size(), 1u);
  auto c = db->GetCollection("c");
  ASSERT_TRUE(c.ok());
  ExpectAcknowledgedOnly(**c);
  // And the reopened database takes the batch that was refused.
  ASSERT_TRUE((*c)->Upsert(Refused()).ok());
  EXPECT_EQ((*c)->Count(), 15u);
}

TEST_F(EngineFaultTest, FullDiskIsResourceExhaustedAndSearchGoesOn) {
  auto db = OpenFaulty();
  ASSERT_TRUE(db);
  CollectionSchema schema;
  schema.dense_dim = kDim;
  auto c = db->CreateCollection("c", schema);
  ASSERT_TRUE(c.ok());
  std::vector<Document> docs;
  for (int i = 0; i < 10; ++i) docs.push_back(Doc("a" + std::to_string(i), i));
  ASSERT_TRUE((*c)->Upsert(docs).ok());
  faults_->no_space = true;
  Status s = (*c)->Upsert(Refused());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted) << s.ToString();
  EXPECT_NE(s.message().find("no space left"), std::string::npos) << s.ToString();
  ExpectAcknowledgedOnly(**c);  // reads and searches are unaffected
}

TEST_F(EngineFaultTest, CorruptedCatalogRecordIsCorruptionNamingTheCollection) {
  {
    auto db = OpenPlain();
    ASSERT_TRUE(db);
    CollectionSchema schema;
    schema.dense_dim = kDim;
    ASSERT_TRUE(db->CreateCollection("books", schema).ok());
  }
  {
    auto store = storage::Store::Open(dir_.path().string(), storage::StoreOptions{});
    ASSERT_TRUE(store.ok());
    storage::WriteBatch b;
    b.Put(storage::Family::kMeta, storage::CollectionKey("books"), std::string("\x01\x02", 2));
    ASSERT_TRUE((*store)->Write(b).ok());
  }
  auto db = Database::Open(Options{}, dir_.path().string());
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), StatusCode::kCorruption) << db.status().ToString();
  EXPECT_NE(db.status().message().find("books"), std::string::npos) << db.status().ToString();
}

TEST_F(EngineFaultTest, CorruptedDocumentRecordsAreCorruptionNotCrashes) {
  // Families the reopen reads (dense, sparse, the id map) fail the open cleanly; families read
  // later (docs) fail the read that meets them. Every value of the family is overwritten.
  for (storage::Family family :
       {storage::Family::kDense, storage::Family::kSparse, storage::Family::kIds, storage::Family::kDocs}) {
    TempDir dir;
    {
      auto db = Database::Open(Options{}, dir.path().string());
      ASSERT_TRUE(db.ok());
      CollectionSchema schema;
      schema.dense_dim = kDim;
      schema.sparse = true;
      auto c = (*db)->CreateCollection("c", schema);
      ASSERT_TRUE(c.ok());
      std::vector<Document> docs;
      for (int i = 0; i < 5; ++i) {
        docs.push_back(Doc("a" + std::to_string(i), i));
        docs.back().sparse.indices = {1, 7};
        docs.back().sparse.values = {0.5f, 1.5f};
      }
      ASSERT_TRUE((*c)->Upsert(docs).ok());
    }
    {
      auto store = storage::Store::Open(dir.path().string(), storage::StoreOptions{});
      ASSERT_TRUE(store.ok());
      std::vector<std::string> keys;
      ASSERT_TRUE((*store)->Scan(family, "", [&](std::string_view key, std::string_view, bool*) {
        keys.emplace_back(key);
        return Status::OK();
      }).ok());
      ASSERT_FALSE(keys.empty());
      storage::WriteBatch b;
      for (const auto& k : keys) b.Put(family, k, std::string("\xff\x00\x07", 3));
      ASSERT_TRUE((*store)->Write(b).ok());
    }
    auto db = Database::Open(Options{}, dir.path().string());
    const std::string name(storage::FamilyName(family));
    if (family == storage::Family::kDense || family == storage::Family::kSparse) {
      ASSERT_FALSE(db.ok()) << name;
      EXPECT_EQ(db.status().code(), StatusCode::kCorruption) << name << ": " << db.status().ToString();
      continue;
    }
    if (!db.ok()) {  // the id map is read on open too (internal -> user id)
      EXPECT_EQ(db.status().code(), StatusCode::kCorruption) << name << ": " << db.status().ToString();
      continue;
    }
    auto c = (*db)->GetCollection("c");
    ASSERT_TRUE(c.ok());
    auto got = (*c)->Get("a1");
    ASSERT_FALSE(got.ok()) << name;
    EXPECT_EQ(got.status().code(), StatusCode::kCorruption) << name << ": " << got.status().ToString();
  }
}

}  // namespace
}  // namespace m3vdb
