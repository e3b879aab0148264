// Training checkpoints (engine/detail/train_checkpoint.h): a Train cancelled after a Distill-VQ
// epoch, then run again on the reopened database, skips k-means, resumes after that epoch and
// learns exactly the codebooks (bytes) and search results of an uninterrupted Train on an
// identical database; a checkpoint of other inputs or a corrupt one is ignored; the checkpoint
// goes with the trained generation's commit and with DropCollection.
#include <gtest/gtest.h>

#include <atomic>
#include <optional>
#include <string>
#include <vector>

#include "engine/detail/train_checkpoint.h"
#include "m3vdb/m3vdb.h"
#include "storage/keys.h"
#include "storage/records.h"
#include "storage/store.h"
#include "tests/engine/clustered_docs.h"
#include "tests/engine/seeded_random.h"
#include "tests/engine/temp_dir.h"

namespace m3vdb {
namespace {

constexpr uint32_t kDim = 16;
constexpr int kEpochs = 3;

std::vector<Document> MakeDocs(size_t begin, size_t end, uint64_t seed) {
  return test::MakeClusteredDocs(begin, end, seed, kDim);
}

CollectionSchema Schema(Metric metric) { return test::SmallIvfPqSchema(kDim, metric, kEpochs); }

std::unique_ptr<Database> Open(const test::TempDir& dir) {
  auto db = Database::Open(Options{}, dir.path().string());
  EXPECT_TRUE(db.ok()) << db.status().ToString();
  return db.ok() ? std::move(*db) : nullptr;
}

// A database with collection "c" holding the 1,200 documents.
std::shared_ptr<Collection> Create(Database& db, Metric metric) {
  auto coll = db.CreateCollection("c", Schema(metric));
  EXPECT_TRUE(coll.ok()) << coll.status().ToString();
  EXPECT_TRUE((*coll)->Upsert(MakeDocs(0, 1200, 7)).ok());
  return *coll;
}

std::vector<std::vector<SearchHit>> SearchAll(Collection& c) {
  std::vector<Query> qs;
  for (const auto& d : MakeDocs(0, 50, 8)) qs.push_back(Query{d.dense, {}, {}, {}});
  SearchOptions o;
  o.top_k = 10;
  o.rerank_k = 10;
  auto r = c.SearchBatch(qs, o);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : std::vector<std::vector<SearchHit>>{};
}

void ExpectSameHits(const std::vector<std::vector<SearchHit>>& a, const std::vector<std::vector<SearchHit>>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t q = 0; q < a.size(); ++q) {
    ASSERT_EQ(a[q].size(), b[q].size()) << "query " << q;
    for (size_t j = 0; j < a[q].size(); ++j) {
      EXPECT_EQ(a[q][j].id, b[q][j].id) << "query " << q;
      EXPECT_EQ(a[q][j].score, b[q][j].score) << "query " << q;
    }
  }
}

// Raw access to a closed database's meta records of collection "c".
class Raw {
 public:
  explicit Raw(const test::TempDir& dir) {
    storage::StoreOptions so;
    so.create_if_missing = false;
    auto store = storage::Store::Open(dir.path().string(), so);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    auto catalog = store_->Get(storage::Family::kMeta, storage::CollectionKey("c"));
    if (catalog.ok() && catalog->has_value()) {
      storage::CatalogRecord rec;
      EXPECT_TRUE(storage::DecodeCatalog(**catalog, &rec).ok());
      cid_ = rec.collection_id;
    }
  }
  uint64_t cid() const { return cid_; }
  void set_cid(uint64_t cid) { cid_ = cid; }
  std::optional<std::string> Get(const std::string& key) const {
    auto v = store_->Get(storage::Family::kMeta, key);
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    return v.ok() ? *v : std::nullopt;
  }
  std::optional<std::string> Codebooks() const { return Get(storage::CodebooksKey(cid_)); }
  std::optional<std::string> Checkpoint() const { return Get(storage::TrainCheckpointKey(cid_)); }
  void PutCheckpoint(const std::string& bytes) {
    storage::WriteBatch b;
    b.Put(storage::Family::kMeta, storage::TrainCheckpointKey(cid_), bytes);
    ASSERT_TRUE(store_->Write(b).ok());
  }

 private:
  std::unique_ptr<storage::Store> store_;
  uint64_t cid_ = 0;
};

// Trains with a cancel raised at the last step of Distill-VQ epoch `after_epoch` (0: before
// training starts, so it stops right after k-means). Returns the Train status.
Status TrainCancelled(Collection& c, int after_epoch, const TrainOptions& base = TrainOptions{}) {
  std::atomic<bool> cancel{after_epoch == 0};
  TrainOptions o = base;
  o.cancel = &cancel;
  o.progress = [&](std::string_view phase, double fraction, double) {
    if (phase == "distill" && fraction * kEpochs >= after_epoch - 1e-9) cancel.store(true);
  };
  return c.Train(o).status();
}

struct Reference {
  std::string codebooks;
  std::vector<std::vector<SearchHit>> hits;
};

// An uninterrupted Train on a fresh database holding the same documents (plus `extra`).
Reference Uninterrupted(Metric metric, const std::vector<Document>& extra = {}) {
  test::TempDir dir;
  Reference ref;
  {
    auto db = Open(dir);
    auto coll = Create(*db, metric);
    if (!extra.empty()) {
      EXPECT_TRUE(coll->Upsert(extra).ok());
    }
    auto report = coll->Train(TrainOptions{});
    EXPECT_TRUE(report.ok()) << report.status().ToString();
    EXPECT_FALSE(report->resumed_kmeans);
    EXPECT_EQ(report->resumed_epochs, 0);
    ref.hits = SearchAll(*coll);
  }
  Raw raw(dir);
  EXPECT_TRUE(raw.Codebooks().has_value());
  EXPECT_FALSE(raw.Checkpoint().has_value());  // deleted with the commit of the generation
  ref.codebooks = raw.Codebooks().value_or("");
  return ref;
}

class TrainCheckpointTest : public ::testing::TestWithParam<Metric> {};

TEST_P(TrainCheckpointTest, ResumedTrainEqualsUninterruptedTrain) {
  const Reference ref = Uninterrupted(GetParam());
  test::TempDir dir;
  {
    auto db = Open(dir);
    auto coll = Create(*db, GetParam());
    EXPECT_EQ(TrainCancelled(*coll, 1).code(), StatusCode::kUnavailable);
    EXPECT_EQ(coll->GetIndexInfo().kind, "flat");
  }
  {
    Raw raw(dir);
    EXPECT_FALSE(raw.Codebooks().has_value());
    auto bytes = raw.Checkpoint();
    ASSERT_TRUE(bytes.has_value());
    auto checkpoint = engine::DecodeTrainCheckpoint(*bytes);
    ASSERT_TRUE(checkpoint.ok()) << checkpoint.status().ToString();
    EXPECT_EQ(checkpoint->fingerprint.documents, 1200u);
    ASSERT_TRUE(checkpoint->distill.has_value());
    EXPECT_EQ(checkpoint->distill->epochs_done, 1u);
    EXPECT_EQ(checkpoint->distill->epochs, static_cast<uint32_t>(kEpochs));
  }
  std::vector<double> fractions;
  {
    auto db = Open(dir);
    auto coll = db->GetCollection("c");
    ASSERT_TRUE(coll.ok());
    TrainOptions o;
    o.progress = [&](std::string_view phase, double fraction, double) {
      if (phase == "distill") fractions.push_back(fraction);
    };
    auto report = (*coll)->Train(o);
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    EXPECT_TRUE(report->resumed_kmeans);
    EXPECT_EQ(report->kmeans_seconds, 0.0);
    EXPECT_EQ(report->resumed_epochs, 1);
    EXPECT_EQ(report->generation, 1u);
    ExpectSameHits(SearchAll(**coll), ref.hits);
  }
  // Progress starts after the resumed epoch: only epochs 2 and 3 are reported.
  ASSERT_FALSE(fractions.empty());
  EXPECT_GT(fractions.front() * kEpochs, 1.0);
  EXPECT_LT(fractions.front() * kEpochs, 1.5);
  EXPECT_EQ(fractions.back(), 1.0);
  Raw raw(dir);
  EXPECT_EQ(raw.Codebooks(), ref.codebooks);
  EXPECT_FALSE(raw.Checkpoint().has_value());
}

INSTANTIATE_TEST_SUITE_P(Metrics, TrainCheckpointTest, ::testing::Values(Metric::kInnerProduct, Metric::kL2));

// Stopped right after k-means: the next Train takes the k-means codebooks and runs every epoch.
TEST(TrainCheckpointRulesTest, KMeansCheckpointIsResumed) {
  const Reference ref = Uninterrupted(Metric::kInnerProduct);
  test::TempDir dir;
  {
    auto db = Open(dir);
    auto coll = Create(*db, Metric::kInnerProduct);
    EXPECT_EQ(TrainCancelled(*coll, 0).code(), StatusCode::kUnavailable);
  }
  {
    Raw raw(dir);
    auto checkpoint = engine::DecodeTrainCheckpoint(raw.Checkpoint().value_or(""));
    ASSERT_TRUE(checkpoint.ok()) << checkpoint.status().ToString();
    EXPECT_FALSE(checkpoint->distill.has_value());
  }
  {
    auto db = Open(dir);
    auto report = db->GetCollection("c").value()->Train(TrainOptions{});
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    EXPECT_TRUE(report->resumed_kmeans);
    EXPECT_EQ(report->resumed_epochs, 0);
  }
  EXPECT_EQ(Raw(dir).Codebooks(), ref.codebooks);
}

// A document added after the checkpoint: the stale checkpoint is not used, and the result is
// that of an uninterrupted Train of the new document set. Other queries or another seed do not
// resume either.
TEST(TrainCheckpointRulesTest, ChangedInputsDoNotResume) {
  const std::vector<Document> extra = MakeDocs(1200, 1201, 9);
  const Reference ref = Uninterrupted(Metric::kL2, extra);
  test::TempDir dir;
  {
    auto db = Open(dir);
    auto coll = Create(*db, Metric::kL2);
    EXPECT_EQ(TrainCancelled(*coll, 1).code(), StatusCode::kUnavailable);
    ASSERT_TRUE(coll->Upsert(extra).ok());
  }
  {
    auto db = Open(dir);
    auto coll = db->GetCollection("c").value();
    auto report = coll->Train(TrainOptions{});
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    EXPECT_FALSE(report->resumed_kmeans);
    EXPECT_EQ(report->resumed_epochs, 0);
    EXPECT_EQ(report->documents, 1201u);
    ExpectSameHits(SearchAll(*coll), ref.hits);
  }
  EXPECT_EQ(Raw(dir).Codebooks(), ref.codebooks);

  // Same document count, one document replaced (a new internal id): not resumed.
  test::TempDir replaced;
  {
    auto db = Open(replaced);
    auto coll = Create(*db, Metric::kL2);
    EXPECT_EQ(TrainCancelled(*coll, 1).code(), StatusCode::kUnavailable);
    std::vector<Document> again = MakeDocs(5, 6, 7);
    again[0].dense[0] += 0.5f;
    ASSERT_TRUE(coll->Upsert(again).ok());
    auto report = coll->Train(TrainOptions{});
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    EXPECT_EQ(report->documents, 1200u);
    EXPECT_FALSE(report->resumed_kmeans);
  }

  test::TempDir other;
  auto db = Open(other);
  auto coll = Create(*db, Metric::kL2);
  EXPECT_EQ(TrainCancelled(*coll, 1).code(), StatusCode::kUnavailable);
  TrainOptions with_queries;
  for (const auto& d : MakeDocs(0, 100, 3)) with_queries.queries.insert(with_queries.queries.end(), d.dense.begin(), d.dense.end());
  EXPECT_EQ(TrainCancelled(*coll, 1, with_queries).code(), StatusCode::kUnavailable);  // not resumed from the first
  TrainOptions other_seed;
  other_seed.seed = 99;
  auto report = coll->Train(other_seed);  // the checkpoint is of the queries run
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_FALSE(report->resumed_kmeans);
}

// A checkpoint that does not decode is ignored (logged) and training starts over.
TEST(TrainCheckpointRulesTest, CorruptCheckpointIsIgnored) {
  const Reference ref = Uninterrupted(Metric::kInnerProduct);
  test::TempDir dir;
  {
    auto db = Open(dir);
    auto coll = Create(*db, Metric::kInnerProduct);
    EXPECT_EQ(TrainCancelled(*coll, 2).code(), StatusCode::kUnavailable);
  }
  {
    Raw raw(dir);
    std::string bytes = raw.Checkpoint().value_or("");
    ASSERT_FALSE(bytes.empty());
    ASSERT_TRUE(engine::DecodeTrainCheckpoint(bytes).ok());
    bytes.pop_back();  // truncated
    EXPECT_EQ(engine::DecodeTrainCheckpoint(bytes).status().code(), StatusCode::kCorruption);
    raw.PutCheckpoint(bytes);
  }
  {
    auto db = Open(dir);
    auto report = db->GetCollection("c").value()->Train(TrainOptions{});
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    EXPECT_FALSE(report->resumed_kmeans);
    EXPECT_EQ(report->resumed_epochs, 0);
  }
  Raw raw(dir);
  EXPECT_EQ(raw.Codebooks(), ref.codebooks);
  EXPECT_FALSE(raw.Checkpoint().has_value());
}

TEST(TrainCheckpointRulesTest, DropDeletesTheCheckpoint) {
  test::TempDir dir;
  {
    auto db = Open(dir);
    auto coll = Create(*db, Metric::kInnerProduct);
    EXPECT_EQ(TrainCancelled(*coll, 1).code(), StatusCode::kUnavailable);
  }
  uint64_t cid = 0;
  {
    Raw raw(dir);
    cid = raw.cid();
    EXPECT_TRUE(raw.Checkpoint().has_value());
  }
  {
    auto db = Open(dir);
    ASSERT_TRUE(db->DropCollection("c").ok());
  }
  Raw raw(dir);
  raw.set_cid(cid);
  EXPECT_FALSE(raw.Checkpoint().has_value());
}

TEST(TrainCheckpointRecordTest, BadBytesAreCorruption) {
  engine::TrainFingerprint f{1, 2, 3, 4};
  EXPECT_EQ(engine::DecodeTrainCheckpoint("").status().code(), StatusCode::kCorruption);
  std::string bad_version = engine::EncodeTrainCheckpoint(f, "x", "");
  bad_version[0] = 9;
  EXPECT_EQ(engine::DecodeTrainCheckpoint(bad_version).status().code(), StatusCode::kCorruption);
  // Codebooks inside that are not a codebooks record.
  EXPECT_EQ(engine::DecodeTrainCheckpoint(engine::EncodeTrainCheckpoint(f, "xyz", "")).status().code(),
            StatusCode::kCorruption);
  const std::string header_only = engine::EncodeTrainCheckpoint(f, "", "");
  for (size_t len = 0; len < header_only.size(); ++len)
    EXPECT_EQ(engine::DecodeTrainCheckpoint(header_only.substr(0, len)).status().code(), StatusCode::kCorruption);
  engine::TrainFingerprint g = f;
  g.documents = 5;
  EXPECT_EQ(f.Difference(g), "documents 1 vs 5");
  EXPECT_EQ(f.Difference(f), "none");
}

}  // namespace
}  // namespace m3vdb
