// A collection with the learned IVF-PQ index: training switches dense candidates to IVF-PQ,
// reopening restores the same index without re-encoding, retraining swaps generations while
// searches go on, and writes after training are encoded and searchable; deletes apply at once.
#include <gtest/gtest.h>
#include <m3vdb/m3vdb.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "clustered_docs.h"
#include "seeded_random.h"
#include "temp_dir.h"

namespace m3vdb {
namespace {

constexpr uint32_t kDim = 16;

std::vector<Document> MakeDocs(size_t begin, size_t end, uint64_t seed) {
  return test::MakeClusteredDocs(begin, end, seed, kDim);
}

CollectionSchema Schema(Metric metric) { return test::SmallIvfPqSchema(kDim, metric, 1); }

std::vector<std::vector<SearchHit>> SearchAll(Collection& c, const std::vector<Document>& probes, int rerank_k) {
  std::vector<Query> qs;
  for (const auto& d : probes) qs.push_back(Query{d.dense, {}, {}, {}});
  SearchOptions o;
  o.top_k = 10;
  o.rerank_k = rerank_k;
  auto r = c.SearchBatch(qs, o);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : std::vector<std::vector<SearchHit>>{};
}

class IvfPqCollectionTest : public ::testing::TestWithParam<Metric> {};

TEST_P(IvfPqCollectionTest, TrainReopenRetrainDelete) {
  test::TempDir dir;
  auto docs = MakeDocs(0, 1500, 7);
  auto probes = MakeDocs(0, 40, 8);
  std::vector<std::vector<SearchHit>> before;
  {
    auto db = Database::Open(Options{}, dir.path().string());
    ASSERT_TRUE(db.ok());
    auto coll = (*db)->CreateCollection("c", Schema(GetParam()));
    ASSERT_TRUE(coll.ok());
    ASSERT_TRUE((*coll)->Upsert(docs).ok());
    EXPECT_EQ((*coll)->GetIndexInfo().kind, "flat");
    auto exact = SearchAll(**coll, probes, 10);

    auto report = (*coll)->Train(TrainOptions{});
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    EXPECT_EQ(report->generation, 1u);
    EXPECT_EQ(report->documents, 1500u);
    // Best-epoch selection ran (150 of the 1,500 sampled training queries held out): one
    // held-out recall for the k-means start and one per epoch, the kept epoch the best of them.
    const auto& recall = report->validation_recall;
    ASSERT_EQ(recall.size(), static_cast<size_t>(Schema(GetParam()).index.epochs) + 1);
    ASSERT_GE(report->best_epoch, 0);
    EXPECT_EQ(recall[static_cast<size_t>(report->best_epoch)], *std::max_element(recall.begin(), recall.end()));
    IndexInfo info = (*coll)->GetIndexInfo();
    EXPECT_EQ(info.kind, "ivfpq");
    EXPECT_EQ(info.bytes_per_vector, 4u);

    // Exact rerank of IVF-PQ candidates: scores are exact, and with a generous rerank_k and all
    // lists probed the answer equals exact search.
    SearchOptions all;
    all.top_k = 10;
    all.rerank_k = 300;
    all.nprobe = 8;
    for (size_t q = 0; q < probes.size(); ++q) {
      auto hits = (*coll)->Search(Query{probes[q].dense, {}, {}, {}}, all);
      ASSERT_TRUE(hits.ok());
      ASSERT_EQ(hits->size(), exact[q].size());
      for (size_t r = 0; r < hits->size(); ++r) EXPECT_NEAR((*hits)[r].score, exact[q][r].score, 1e-3);
    }
    before = SearchAll(**coll, probes, 20);
  }
  // Reopen: identical results, index restored from stored codes.
  auto db = Database::Open(Options{}, dir.path().string());
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  auto coll = (*db)->GetCollection("c");
  ASSERT_TRUE(coll.ok());
  EXPECT_EQ((*coll)->GetIndexInfo().generation, 1u);
  auto after = SearchAll(**coll, probes, 20);
  ASSERT_EQ(after.size(), before.size());
  for (size_t q = 0; q < before.size(); ++q) {
    ASSERT_EQ(after[q].size(), before[q].size());
    for (size_t r = 0; r < before[q].size(); ++r) {
      EXPECT_EQ(after[q][r].id, before[q][r].id);
      EXPECT_EQ(after[q][r].score, before[q][r].score);
    }
  }

  // Writes after training are encoded with the current codebooks and found.
  Document fresh = probes[0];
  fresh.id = "fresh";
  ASSERT_TRUE((*coll)->Upsert(std::vector<Document>{fresh}).ok());
  auto hits = (*coll)->Search(Query{fresh.dense, {}, {}, {}}, SearchOptions{});
  ASSERT_TRUE(hits.ok());
  bool found = false;
  for (const auto& h : *hits) found |= h.id == "fresh";
  EXPECT_TRUE(found);

  // Retrain while searching: no error and never a partial result.
  std::atomic<bool> done{false};
  std::atomic<int> searches{0}, failures{0};
  std::thread searcher([&] {
    SearchOptions o;
    o.top_k = 10;
    while (!done.load()) {
      auto r = (*coll)->Search(Query{probes[searches % probes.size()].dense, {}, {}, {}}, o);
      if (!r.ok() || r->size() != 10) ++failures;
      ++searches;
    }
  });
  auto retrained = (*coll)->Train(TrainOptions{});
  done = true;
  searcher.join();
  ASSERT_TRUE(retrained.ok()) << retrained.status().ToString();
  EXPECT_EQ(retrained->generation, 2u);
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(searches.load(), 0);

  // Delete after training hides the document immediately.
  hits = (*coll)->Search(Query{fresh.dense, {}, {}, {}}, SearchOptions{});
  ASSERT_TRUE(hits.ok());
  ASSERT_FALSE(hits->empty());
  const std::string top = (*hits)[0].id;
  ASSERT_EQ((*coll)->Delete(std::vector<std::string>{top}).value(), 1u);
  hits = (*coll)->Search(Query{fresh.dense, {}, {}, {}}, SearchOptions{});
  ASSERT_TRUE(hits.ok());
  for (const auto& h : *hits) EXPECT_NE(h.id, top);
}

// A batch of several query groups is spread over threads; every query's answer must equal
// the one it gets alone, before (exact index) and after training (IVF-PQ), in input order.
TEST_P(IvfPqCollectionTest, LargeBatchEqualsSingleSearches) {
  test::TempDir dir;
  auto db = Database::Open(Options{}, dir.path().string());
  ASSERT_TRUE(db.ok());
  auto coll = (*db)->CreateCollection("c", Schema(GetParam()));
  ASSERT_TRUE(coll.ok());
  ASSERT_TRUE((*coll)->Upsert(MakeDocs(0, 1500, 7)).ok());
  auto probes = MakeDocs(0, 333, 9);  // three groups of 128 and a partial one
  for (int trained = 0; trained < 2; ++trained) {
    if (trained) {
      ASSERT_TRUE((*coll)->Train(TrainOptions{}).ok());
    }
    const auto batch = SearchAll(**coll, probes, 20);
    ASSERT_EQ(batch.size(), probes.size());
    for (size_t i = 0; i < probes.size(); i += 7) {
      SearchOptions o;
      o.top_k = 10;
      o.rerank_k = 20;
      auto one = (*coll)->Search(Query{probes[i].dense, {}, {}, {}}, o);
      ASSERT_TRUE(one.ok());
      ASSERT_EQ(one->size(), batch[i].size()) << "query " << i;
      for (size_t j = 0; j < one->size(); ++j) {
        EXPECT_EQ((*one)[j].id, batch[i][j].id) << "query " << i << " rank " << j << " trained " << trained;
        EXPECT_FLOAT_EQ((*one)[j].score, batch[i][j].score);
      }
    }
  }
}

// Training depends only on the documents, not on the history of the in-memory maps: the same
// documents trained right after ingest (with deletes and re-upserts shuffling the hash maps)
// and trained after a reopen give the same codes, so codes-only searches agree exactly.
TEST_P(IvfPqCollectionTest, TrainingAfterReopenLearnsTheSameIndex) {
  auto docs = MakeDocs(0, 1500, 7);
  auto again = MakeDocs(0, 1500, 7);
  auto probes = MakeDocs(0, 60, 8);
  auto ingest = [&](Collection& c) {
    ASSERT_TRUE(c.Upsert(docs).ok());
    std::vector<std::string> gone;
    for (size_t i = 0; i < docs.size(); i += 5) gone.push_back(docs[i].id);
    ASSERT_TRUE(c.Delete(gone).ok());
    std::vector<Document> back;
    for (size_t i = 0; i < docs.size(); i += 10) back.push_back(again[i]);
    ASSERT_TRUE(c.Upsert(back).ok());
  };
  test::TempDir a_dir, b_dir;
  std::vector<std::vector<SearchHit>> a_hits, b_hits;
  {
    auto db = Database::Open(Options{}, a_dir.path().string());
    ASSERT_TRUE(db.ok());
    auto coll = (*db)->CreateCollection("c", Schema(GetParam()));
    ASSERT_TRUE(coll.ok());
    ingest(**coll);
    ASSERT_TRUE((*coll)->Train(TrainOptions{}).ok());
    a_hits = SearchAll(**coll, probes, 10);
  }
  {
    auto db = Database::Open(Options{}, b_dir.path().string());
    ASSERT_TRUE(db.ok());
    auto coll = (*db)->CreateCollection("c", Schema(GetParam()));
    ASSERT_TRUE(coll.ok());
    ingest(**coll);
  }
  {
    auto db = Database::Open(Options{}, b_dir.path().string());
    ASSERT_TRUE(db.ok());
    auto coll = (*db)->GetCollection("c");
    ASSERT_TRUE(coll.ok());
    ASSERT_TRUE((*coll)->Train(TrainOptions{}).ok());
    b_hits = SearchAll(**coll, probes, 10);
  }
  ASSERT_EQ(a_hits.size(), b_hits.size());
  for (size_t q = 0; q < a_hits.size(); ++q) {
    ASSERT_EQ(a_hits[q].size(), b_hits[q].size()) << "query " << q;
    for (size_t j = 0; j < a_hits[q].size(); ++j) EXPECT_EQ(a_hits[q][j].id, b_hits[q][j].id) << "query " << q;
  }
}

INSTANTIATE_TEST_SUITE_P(Metrics, IvfPqCollectionTest, ::testing::Values(Metric::kInnerProduct, Metric::kL2));

TEST(IvfPqCollectionErrorsTest, BadSettingsAndTooFewDocuments) {
  test::TempDir dir;
  auto db = Database::Open(Options{}, dir.path().string());
  ASSERT_TRUE(db.ok());
  CollectionSchema bad = Schema(Metric::kL2);
  bad.index.m = 5;  // does not divide 16
  EXPECT_EQ((*db)->CreateCollection("bad", bad).status().code(), StatusCode::kInvalidArgument);
  auto coll = (*db)->CreateCollection("small", Schema(Metric::kL2));
  ASSERT_TRUE(coll.ok());
  ASSERT_TRUE((*coll)->Upsert(MakeDocs(0, 50, 1)).ok());
  EXPECT_EQ((*coll)->Train(TrainOptions{}).status().code(), StatusCode::kFailedPrecondition);
  TrainOptions wrong;
  wrong.queries = {1, 2, 3};  // not a multiple of the dimension
  EXPECT_EQ((*coll)->Train(wrong).status().code(), StatusCode::kInvalidArgument);
  SearchOptions o;
  o.nprobe = -1;
  EXPECT_EQ((*coll)->Search(Query{std::vector<float>(kDim, 0.5f), {}, {}, {}}, o).status().code(),
            StatusCode::kInvalidArgument);
}

// A cancelled training gives up with Unavailable and changes nothing; the collection can then
// be trained normally.
TEST(IvfPqCollectionErrorsTest, CancelledTrainingChangesNothing) {
  test::TempDir dir;
  auto db = Database::Open(Options{}, dir.path().string());
  ASSERT_TRUE(db.ok());
  CollectionSchema s = Schema(Metric::kL2);
  s.index.epochs = 3;
  auto coll = (*db)->CreateCollection("c", s);
  ASSERT_TRUE(coll.ok());
  ASSERT_TRUE((*coll)->Upsert(MakeDocs(0, 1200, 5)).ok());

  std::atomic<bool> cancel{true};  // cancelled before it starts: stops right after k-means
  TrainOptions before;
  before.cancel = &cancel;
  EXPECT_EQ((*coll)->Train(before).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ((*coll)->GetIndexInfo().kind, "flat");

  cancel.store(false);  // cancelled from the progress callback during Distill-VQ
  std::vector<std::string> phases;
  TrainOptions during;
  during.cancel = &cancel;
  during.progress = [&](std::string_view phase, double, double) {
    phases.emplace_back(phase);
    if (phase == "distill") cancel.store(true);
  };
  EXPECT_EQ((*coll)->Train(during).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ((*coll)->GetIndexInfo().kind, "flat");
  EXPECT_FALSE((*coll)->GetIndexInfo().training);
  ASSERT_GE(phases.size(), 2u);
  EXPECT_EQ(phases.back(), "distill");  // no "encode": it stopped after the first step
  EXPECT_EQ(std::count(phases.begin(), phases.end(), "distill"), 1);

  auto report = (*coll)->Train(TrainOptions{});
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->generation, 1u);
  EXPECT_EQ((*coll)->GetIndexInfo().kind, "ivfpq");
}

TEST(IvfPqCollectionErrorsTest, AutoTrainAtThreshold) {
  test::TempDir dir;
  auto db = Database::Open(Options{}, dir.path().string());
  ASSERT_TRUE(db.ok());
  CollectionSchema s = Schema(Metric::kInnerProduct);
  s.index.train_threshold = 1000;
  auto coll = (*db)->CreateCollection("auto", s);
  ASSERT_TRUE(coll.ok());
  ASSERT_TRUE((*coll)->Upsert(MakeDocs(0, 1200, 3)).ok());
  for (int i = 0; i < 600 && (*coll)->GetIndexInfo().kind != "ivfpq"; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ((*coll)->GetIndexInfo().kind, "ivfpq");
  EXPECT_EQ((*coll)->Search(Query{std::vector<float>(kDim, 0.5f), {}, {}, {}}, SearchOptions{}).value().size(), 10u);
}

}  // namespace
}  // namespace m3vdb
