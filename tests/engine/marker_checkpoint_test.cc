// Engine hooks used by `m3vdb build` and `m3vdb snapshot`: the progress marker commits with
// its batch (a rejected batch leaves the old marker), survives reopening and goes with a
// dropped collection; exact search ignores a trained index and matches brute force; a
// checkpoint taken while a writer runs opens and holds whole batches only.
#include <gtest/gtest.h>
#include <m3vdb/m3vdb.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <thread>

#include "seeded_random.h"
#include "temp_dir.h"
#include "db_options.h"

namespace m3vdb {
namespace {

constexpr uint32_t kDim = 8;

Document Doc(const std::string& id, test::SeededRandom& rng) {
  Document d;
  d.id = id;
  for (uint32_t j = 0; j < kDim; ++j) d.dense.push_back(static_cast<float>(rng.Uniform(-1, 1)));
  return d;
}

CollectionSchema Schema(Metric metric = Metric::kInnerProduct) {
  CollectionSchema s;
  s.dense_dim = kDim;
  s.metric = metric;
  return s;
}

UpsertOptions Marker(std::string value) {
  UpsertOptions o;
  o.progress_marker = std::move(value);
  return o;
}

TEST(ProgressMarker, CommitsWithItsBatchOnly) {
  test::TempDir dir;
  test::SeededRandom rng(1);
  {
    auto db = Database::Open(Options{}, dir.Sub("db"));
    ASSERT_TRUE(db.ok());
    auto c = (*db)->CreateCollection("c", Schema());
    ASSERT_TRUE(c.ok());
    EXPECT_FALSE((*c)->GetProgressMarker()->has_value());
    std::vector<Document> batch = {Doc("a", rng), Doc("b", rng)};
    ASSERT_TRUE((*c)->Upsert(batch, Marker("after-1")).ok());
    EXPECT_EQ(**(*c)->GetProgressMarker(), "after-1");
    // A rejected batch (one document of the wrong dimension) writes neither documents nor marker.
    std::vector<Document> bad = {Doc("c", rng), Doc("d", rng)};
    bad[1].dense.pop_back();
    EXPECT_FALSE((*c)->Upsert(bad, Marker("after-2")).ok());
    EXPECT_EQ(**(*c)->GetProgressMarker(), "after-1");
    EXPECT_EQ((*c)->Count(), 2u);
    EXPECT_FALSE((*c)->Validate(bad).ok());
    EXPECT_TRUE((*c)->Validate(std::span<const Document>(bad.data(), 1)).ok());
    // An empty batch with a marker writes just the marker.
    ASSERT_TRUE((*c)->Upsert(std::span<const Document>(), Marker("phase-2")).ok());
    EXPECT_EQ((*c)->Count(), 2u);
  }
  auto db = Database::Open(Options{}, dir.Sub("db"));
  ASSERT_TRUE(db.ok());
  auto c = (*db)->GetCollection("c");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(**(*c)->GetProgressMarker(), "phase-2");
  ASSERT_TRUE((*db)->DropCollection("c").ok());
  auto again = (*db)->CreateCollection("c", Schema());
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE((*again)->GetProgressMarker()->has_value()) << "a dropped collection's marker must go with it";
}

TEST(ExactSearch, IgnoresTheLearnedIndexAndMatchesBruteForce) {
  test::TempDir dir;
  test::SeededRandom rng(2);
  auto db = Database::Open(Options{}, dir.Sub("db"));
  ASSERT_TRUE(db.ok());
  CollectionSchema schema = Schema(Metric::kL2);
  schema.index.nlist = 16;
  schema.index.m = 2;
  schema.index.distill = false;  // k-means codebooks suffice to make the index approximate
  schema.index.nprobe = 1;
  auto c = (*db)->CreateCollection("c", schema);
  ASSERT_TRUE(c.ok());
  std::vector<Document> docs;
  for (int i = 0; i < 2000; ++i) docs.push_back(Doc(std::to_string(i), rng));
  ASSERT_TRUE((*c)->Upsert(docs).ok());
  ASSERT_TRUE((*c)->Train(TrainOptions{}).ok());
  ASSERT_EQ((*c)->GetIndexInfo().kind, "ivfpq");
  SearchOptions exact;
  exact.top_k = 10;
  exact.rerank_k = 10;
  exact.exact = true;
  SearchOptions approx = exact;
  approx.exact = false;
  size_t approx_hits = 0;
  for (int q = 0; q < 30; ++q) {
    Query query;
    query.dense = Doc("q", rng).dense;
    std::vector<std::pair<float, std::string>> truth;
    for (const auto& d : docs) {
      float dist = 0;
      for (uint32_t j = 0; j < kDim; ++j) dist += (d.dense[j] - query.dense[j]) * (d.dense[j] - query.dense[j]);
      truth.emplace_back(dist, d.id);
    }
    std::sort(truth.begin(), truth.end());
    auto hits = (*c)->Search(query, exact);
    ASSERT_TRUE(hits.ok());
    ASSERT_EQ(hits->size(), 10u);
    for (size_t i = 0; i < 10; ++i) EXPECT_EQ((*hits)[i].id, truth[i].second) << "query " << q << " rank " << i;
    auto a = (*c)->Search(query, approx);
    ASSERT_TRUE(a.ok());
    for (const auto& h : *a)
      for (size_t i = 0; i < 10; ++i) approx_hits += h.id == truth[i].second;
  }
  // nprobe 1 of 16 lists and 2-byte codes: the quantized search must be visibly approximate,
  // which shows the exact flag took another path.
  EXPECT_LT(approx_hits, 30u * 10u);
}

TEST(Checkpoint, TakenDuringWritesOpensWithWholeBatches) {
  test::TempDir dir;
  auto db = Database::Open(test::NoSync(), dir.Sub("db"));
  ASSERT_TRUE(db.ok());
  auto c = (*db)->CreateCollection("c", Schema());
  ASSERT_TRUE(c.ok());
  constexpr int kBatch = 40;
  std::atomic<bool> stop{false};
  std::atomic<int> batches{0};
  std::thread writer([&] {
    test::SeededRandom rng(3);
    for (int b = 0; !stop.load(); ++b) {
      std::vector<Document> docs;
      for (int i = 0; i < kBatch; ++i) docs.push_back(Doc(std::to_string(b) + "-" + std::to_string(i), rng));
      if (!(*c)->Upsert(docs, Marker(std::to_string(b + 1))).ok()) return;
      batches.store(b + 1);
    }
  });
  for (int snap = 0; snap < 5; ++snap) {
    while (batches.load() < 5 * (snap + 1)) std::this_thread::yield();
    const std::string to = dir.Sub("snap" + std::to_string(snap));
    ASSERT_TRUE((*db)->Checkpoint(to).ok());
    auto copy = Database::Open(test::ExistingOnly(), to);
    ASSERT_TRUE(copy.ok()) << copy.status().ToString();
    auto cc = (*copy)->GetCollection("c");
    ASSERT_TRUE(cc.ok());
    const uint64_t n = (*cc)->Count();
    EXPECT_EQ(n % kBatch, 0u) << "a checkpoint must hold whole batches";
    const int whole = static_cast<int>(n / kBatch);
    EXPECT_GE(whole, 5 * (snap + 1));
    EXPECT_EQ(**(*cc)->GetProgressMarker(), std::to_string(whole)) << "the marker matches the batches present";
    for (int b = 0; b < whole; b += 7) EXPECT_TRUE((*cc)->Get(std::to_string(b) + "-" + std::to_string(kBatch - 1)).ok());
    EXPECT_FALSE((*db)->Checkpoint(to).ok()) << "an existing directory is refused";
  }
  stop.store(true);
  writer.join();
}

}  // namespace
}  // namespace m3vdb
