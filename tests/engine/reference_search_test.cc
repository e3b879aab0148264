// Collection::Search and SearchBatch against an independent brute-force reference written here
// with plain loops in double precision (no m3vdb internals): dense scores for both metrics,
// sparse lexical scores, ColBERT MaxSim, the candidate union of dense top-R and sparse top-R,
// weighted and reciprocal-rank fusion.
//
// ColBERT values are multiples of 1/256 in [-1, 1], exactly representable in fp16, so storing
// them as fp16 loses nothing and the reference is exact. Queries whose expected answer hinges on
// a near tie (a rank boundary or an RRF rank decided by float rounding) are redrawn.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "m3vdb/m3vdb.h"
#include "tests/engine/seeded_random.h"
#include "tests/engine/temp_dir.h"

namespace m3vdb {
namespace {

using test::SeededRandom;
using test::TempDir;

constexpr size_t kDocs = 300;
constexpr size_t kBatch = 100;
constexpr uint32_t kDenseDim = 16;
constexpr uint64_t kVocab = 150;
constexpr double kRrfK = 60;

// ---- data -----------------------------------------------------------------------------------

SparseVector RandomSparse(SeededRandom& rng, size_t terms) {
  std::set<int32_t> tokens;
  while (tokens.size() < terms) tokens.insert(static_cast<int32_t>(rng.Below(kVocab)));
  SparseVector sparse;
  for (int32_t token : tokens) {
    sparse.indices.push_back(token);
    sparse.values.push_back(static_cast<float>(rng.Uniform(0.05, 1.0)));
  }
  return sparse;
}

MultiVector RandomColbert(SeededRandom& rng, uint32_t rows, uint32_t width) {
  MultiVector colbert;
  colbert.rows = rows;
  for (uint32_t i = 0; i < rows * width; ++i) colbert.data.push_back(rng.Half());
  return colbert;
}

std::vector<float> RandomDense(SeededRandom& rng) {
  std::vector<float> dense;
  for (uint32_t j = 0; j < kDenseDim; ++j) dense.push_back(static_cast<float>(rng.Uniform(-1, 1)));
  return dense;
}

struct Corpus {
  CollectionSchema schema;
  uint32_t colbert_width = 0;
  std::vector<Document> docs;  // in insertion order
};

// 300 documents; most carry sparse weights and ColBERT vectors, some do not.
Corpus MakeCorpus(uint64_t seed, Metric metric) {
  SeededRandom rng(seed);
  Corpus corpus;
  corpus.schema.dense_dim = kDenseDim;
  corpus.schema.metric = metric;
  corpus.schema.sparse = true;
  corpus.schema.colbert = true;
  corpus.schema.colbert_dim = seed % 2 == 0 ? 8 : 0;  // 0: as wide as the dense vector
  corpus.colbert_width = corpus.schema.colbert_dim == 0 ? kDenseDim : corpus.schema.colbert_dim;
  for (size_t i = 0; i < kDocs; ++i) {
    Document doc;
    doc.id = "doc-" + std::to_string(i);
    doc.text = "text of document " + std::to_string(i);
    doc.metadata_json = "{\"i\":" + std::to_string(i) + "}";
    doc.dense = RandomDense(rng);
    if (rng.Below(5) != 0) doc.sparse = RandomSparse(rng, 1 + rng.Below(8));
    if (rng.Below(10) < 7) {
      doc.colbert = RandomColbert(rng, 1 + static_cast<uint32_t>(rng.Below(5)), corpus.colbert_width);
    }
    corpus.docs.push_back(std::move(doc));
  }
  return corpus;
}

struct QueryModes {
  bool dense = false;
  bool sparse = false;
  bool colbert = false;
};

Query RandomQuery(SeededRandom& rng, const Corpus& corpus, QueryModes modes) {
  Query query;
  if (modes.dense) query.dense = RandomDense(rng);
  if (modes.sparse) query.sparse = RandomSparse(rng, 2 + rng.Below(4));
  if (modes.colbert) {
    query.colbert = RandomColbert(rng, 1 + static_cast<uint32_t>(rng.Below(4)), corpus.colbert_width);
  }
  return query;
}

// ---- the reference ----------------------------------------------------------------------------

double DenseScore(Metric metric, const std::vector<float>& q, const std::vector<float>& d) {
  double sum = 0;
  for (size_t j = 0; j < q.size(); ++j) {
    if (metric == Metric::kInnerProduct) {
      sum += static_cast<double>(q[j]) * d[j];
    } else {
      const double diff = static_cast<double>(q[j]) - d[j];
      sum -= diff * diff;
    }
  }
  return sum;
}

// Sum over shared token ids of query weight * document weight; `shared` says whether any exist.
double SparseScore(const SparseVector& q, const SparseVector& d, bool* shared) {
  double sum = 0;
  *shared = false;
  for (size_t i = 0; i < q.indices.size(); ++i) {
    for (size_t j = 0; j < d.indices.size(); ++j) {
      if (q.indices[i] == d.indices[j]) {
        sum += static_cast<double>(q.values[i]) * d.values[j];
        *shared = true;
      }
    }
  }
  return sum;
}

// Mean over query rows of the largest dot product with any document row.
double MaxSim(const MultiVector& q, const MultiVector& d, uint32_t width) {
  double total = 0;
  for (uint32_t i = 0; i < q.rows; ++i) {
    double best = -INFINITY;
    for (uint32_t j = 0; j < d.rows; ++j) {
      double dot = 0;
      for (uint32_t k = 0; k < width; ++k) {
        dot += static_cast<double>(q.data[i * width + k]) * d.data[j * width + k];
      }
      best = std::max(best, dot);
    }
    total += best;
  }
  return total / q.rows;
}

struct RefHit {
  size_t doc = 0;  // index in the corpus = insertion order
  double fused = 0;
  std::optional<double> dense, sparse, colbert;
};

struct Reference {
  std::vector<RefHit> ranked;      // every candidate, best first
  std::vector<bool> in_dense_top;  // per document: among the dense top-R
  bool ambiguous = false;          // the answer depends on how a near tie is rounded
};

// Two different scores so close that float rounding in the engine may order them either way.
bool NearTie(double a, double b) {
  return a != b && std::abs(a - b) < 1e-5 * std::max({1.0, std::abs(a), std::abs(b)});
}

// (score, document) pairs, best first: score descending, ties by earlier insertion.
void RankBest(std::vector<std::pair<double, size_t>>* scored) {
  std::sort(scored->begin(), scored->end(), [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  });
}

bool AnyNearTie(const std::vector<std::pair<double, size_t>>& ranked) {
  for (size_t i = 1; i < ranked.size(); ++i) {
    if (NearTie(ranked[i - 1].first, ranked[i].first)) return true;
  }
  return false;
}

Reference BruteForce(const Corpus& corpus, const Query& query, const SearchOptions& options) {
  const bool has_dense = !query.dense.empty();
  const bool has_sparse = !query.sparse.empty();
  const bool has_colbert = !query.colbert.empty();
  const size_t r = static_cast<size_t>(std::max(options.rerank_k, options.top_k));
  const std::vector<Document>& docs = corpus.docs;

  Reference ref;
  ref.in_dense_top.assign(docs.size(), false);
  std::vector<bool> candidate(docs.size(), false);
  auto take_top = [&](std::vector<std::pair<double, size_t>> scored, bool dense) {
    RankBest(&scored);
    if (scored.size() > r && NearTie(scored[r - 1].first, scored[r].first)) ref.ambiguous = true;
    for (size_t i = 0; i < std::min(r, scored.size()); ++i) {
      candidate[scored[i].second] = true;
      if (dense) ref.in_dense_top[scored[i].second] = true;
    }
  };
  if (has_dense) {
    std::vector<std::pair<double, size_t>> scored;
    for (size_t i = 0; i < docs.size(); ++i) {
      scored.emplace_back(DenseScore(corpus.schema.metric, query.dense, docs[i].dense), i);
    }
    take_top(std::move(scored), /*dense=*/true);
  }
  if (has_sparse) {
    std::vector<std::pair<double, size_t>> scored;
    for (size_t i = 0; i < docs.size(); ++i) {
      bool shared = false;
      const double score = SparseScore(query.sparse, docs[i].sparse, &shared);
      if (shared) scored.emplace_back(score, i);
    }
    take_top(std::move(scored), /*dense=*/false);
  }
  if (!has_dense && !has_sparse && has_colbert) {
    for (size_t i = 0; i < docs.size(); ++i) candidate[i] = !docs[i].colbert.empty();
  }

  for (size_t i = 0; i < docs.size(); ++i) {
    if (!candidate[i]) continue;
    RefHit hit;
    hit.doc = i;
    if (has_dense) hit.dense = DenseScore(corpus.schema.metric, query.dense, docs[i].dense);
    if (has_sparse) {
      bool shared = false;
      hit.sparse = SparseScore(query.sparse, docs[i].sparse, &shared);
    }
    if (has_colbert && !docs[i].colbert.empty()) {
      hit.colbert = MaxSim(query.colbert, docs[i].colbert, corpus.colbert_width);
    }
    ref.ranked.push_back(hit);
  }

  if (options.fusion == Fusion::kWeighted) {
    for (RefHit& hit : ref.ranked) {
      if (hit.dense) hit.fused += static_cast<double>(options.weights.dense) * *hit.dense;
      if (hit.sparse) hit.fused += static_cast<double>(options.weights.sparse) * *hit.sparse;
      if (hit.colbert) hit.fused += static_cast<double>(options.weights.colbert) * *hit.colbert;
    }
  } else {
    // Per mode, rank the candidates that have the mode's score (rank starts at 1).
    for (auto mode : {&RefHit::dense, &RefHit::sparse, &RefHit::colbert}) {
      std::vector<std::pair<double, size_t>> scored;  // (score, position in ref.ranked)
      for (size_t i = 0; i < ref.ranked.size(); ++i) {
        if (ref.ranked[i].*mode) scored.emplace_back(*(ref.ranked[i].*mode), i);
      }
      // ref.ranked is in insertion order here, so position order is insertion order.
      RankBest(&scored);
      if (AnyNearTie(scored)) ref.ambiguous = true;
      for (size_t rank = 1; rank <= scored.size(); ++rank) {
        ref.ranked[scored[rank - 1].second].fused += 1.0 / (kRrfK + static_cast<double>(rank));
      }
    }
  }
  std::stable_sort(ref.ranked.begin(), ref.ranked.end(),
                   [](const RefHit& a, const RefHit& b) { return a.fused > b.fused; });
  return ref;
}

// ---- comparing ---------------------------------------------------------------------------------

double Tolerance(double expected) { return 1e-4 * std::abs(expected) + 1e-5; }

void ExpectModeScore(const char* mode, const std::optional<float>& got, const std::optional<double>& want) {
  SCOPED_TRACE(mode);
  ASSERT_EQ(got.has_value(), want.has_value());
  if (want) {
    EXPECT_NEAR(*got, *want, Tolerance(*want));
  }
}

// The engine's hits equal the reference's top-k: the same scores rank by rank, every hit a
// reference candidate with the same fused and per-mode scores, and the same id wherever the
// expected score is clear of its neighbours (tied scores may come in either order).
void ExpectMatchesReference(const Corpus& corpus, const Reference& ref, const std::vector<SearchHit>& hits,
                            const SearchOptions& options) {
  const std::vector<RefHit>& want = ref.ranked;
  ASSERT_EQ(hits.size(), std::min(static_cast<size_t>(options.top_k), want.size()));
  std::map<std::string, const RefHit*> by_id;
  for (const RefHit& hit : want) by_id[corpus.docs[hit.doc].id] = &hit;
  std::set<std::string> seen;
  for (size_t i = 0; i < hits.size(); ++i) {
    const SearchHit& hit = hits[i];
    SCOPED_TRACE("rank " + std::to_string(i) + ", id " + hit.id);
    EXPECT_TRUE(seen.insert(hit.id).second) << "id returned twice";
    EXPECT_NEAR(hit.score, want[i].fused, Tolerance(want[i].fused));
    if (i > 0) {
      EXPECT_GE(hits[i - 1].score, hit.score) << "not in descending score order";
    }
    const auto it = by_id.find(hit.id);
    ASSERT_NE(it, by_id.end()) << "not a candidate of the reference";
    const RefHit& expected = *it->second;
    EXPECT_NEAR(hit.score, expected.fused, Tolerance(expected.fused));
    ExpectModeScore("dense", hit.scores.dense, expected.dense);
    ExpectModeScore("sparse", hit.scores.sparse, expected.sparse);
    ExpectModeScore("colbert", hit.scores.colbert, expected.colbert);
    const Document& doc = corpus.docs[expected.doc];
    EXPECT_EQ(hit.metadata_json, options.include_metadata ? doc.metadata_json : "");
    EXPECT_EQ(hit.text, options.include_text ? doc.text : "");

    const double tol = 2 * Tolerance(want[i].fused);
    const bool clear_above = i == 0 || want[i - 1].fused - want[i].fused > tol;
    const bool clear_below = i + 1 >= want.size() || want[i].fused - want[i + 1].fused > tol;
    if (clear_above && clear_below) {
      EXPECT_EQ(hit.id, corpus.docs[want[i].doc].id);
    }
  }
}

// ---- the suite ---------------------------------------------------------------------------------

std::string MetricLabel(Metric metric) { return metric == Metric::kL2 ? "L2" : "Ip"; }

class ReferenceSearchTest : public ::testing::TestWithParam<std::tuple<uint64_t, Metric>> {
 protected:
  uint64_t seed() const { return std::get<0>(GetParam()); }
  Metric metric() const { return std::get<1>(GetParam()); }

  void SetUp() override {
    corpus_ = MakeCorpus(seed(), metric());
    auto db = Database::Open(Options{}, dir_.Sub("db"));
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(db).value();
    auto collection = db_->CreateCollection("reference", corpus_.schema);
    ASSERT_TRUE(collection.ok()) << collection.status().ToString();
    collection_ = collection.value();
    // Several batches, in corpus order, so insertion order is corpus order.
    for (size_t begin = 0; begin < kDocs; begin += kBatch) {
      std::span<const Document> batch(corpus_.docs.data() + begin, std::min(kBatch, kDocs - begin));
      const Status status = collection_->Upsert(batch);
      ASSERT_TRUE(status.ok()) << status.ToString();
    }
    ASSERT_EQ(collection_->Count(), kDocs);
  }

  // Draws a query with `modes` whose expected answer does not hinge on a near tie.
  std::pair<Query, Reference> DrawQuery(SeededRandom& rng, QueryModes modes, const SearchOptions& options) {
    for (int attempt = 0; attempt < 100; ++attempt) {
      Query query = RandomQuery(rng, corpus_, modes);
      Reference ref = BruteForce(corpus_, query, options);
      if (!ref.ambiguous) return {std::move(query), std::move(ref)};
    }
    ADD_FAILURE() << "could not draw a query free of near ties";
    return {};
  }

  // Runs `count` random queries with `modes`, checks each against the reference and returns
  // the references.
  std::vector<Reference> CheckQueries(QueryModes modes, const SearchOptions& options, int count = 8) {
    SeededRandom rng(seed() * 1000003 + static_cast<uint64_t>(options.top_k) * 131 +
                     static_cast<uint64_t>(options.rerank_k));
    std::vector<Reference> refs;
    for (int i = 0; i < count; ++i) {
      SCOPED_TRACE("query " + std::to_string(i));
      auto [query, ref] = DrawQuery(rng, modes, options);
      auto hits = collection_->Search(query, options);
      EXPECT_TRUE(hits.ok()) << hits.status().ToString();
      if (!hits.ok()) continue;
      ExpectMatchesReference(corpus_, ref, hits.value(), options);
      refs.push_back(std::move(ref));
    }
    return refs;
  }

  static SearchOptions Opts(int top_k, int rerank_k, Fusion fusion = Fusion::kWeighted) {
    SearchOptions options;
    options.top_k = top_k;
    options.rerank_k = rerank_k;
    options.fusion = fusion;
    return options;
  }

  TempDir dir_;  // declared first: outlives the database
  Corpus corpus_;
  std::unique_ptr<Database> db_;
  std::shared_ptr<Collection> collection_;
};

TEST_P(ReferenceSearchTest, DenseOnlySmallRerank) {
  CheckQueries({.dense = true}, Opts(10, 10));
  CheckQueries({.dense = true}, Opts(25, 5));  // rerank_k is raised to top_k
}

TEST_P(ReferenceSearchTest, DenseOnlyFullScanEqualsBruteForce) {
  for (const Reference& ref : CheckQueries({.dense = true}, Opts(40, 1000))) {
    EXPECT_EQ(ref.ranked.size(), kDocs);
  }
}

TEST_P(ReferenceSearchTest, SparseOnly) {
  CheckQueries({.sparse = true}, Opts(10, 10));
  CheckQueries({.sparse = true}, Opts(7, 3));
  // R beyond the corpus: every document sharing a token with the query, and no other.
  for (const Reference& ref : CheckQueries({.sparse = true}, Opts(1000, 1000))) {
    EXPECT_LT(ref.ranked.size(), kDocs);
    for (const RefHit& hit : ref.ranked) EXPECT_GT(*hit.sparse, 0);
  }
}

TEST_P(ReferenceSearchTest, SparseQuerySharingNoTokenFindsNothing) {
  Query query;
  query.sparse.indices = {static_cast<int32_t>(kVocab) + 5, static_cast<int32_t>(kVocab) + 9};
  query.sparse.values = {0.5f, 0.25f};
  auto hits = collection_->Search(query, Opts(10, 100));
  ASSERT_TRUE(hits.ok()) << hits.status().ToString();
  EXPECT_TRUE(hits->empty());
}

TEST_P(ReferenceSearchTest, ColbertOnlyScansEveryColbertDocument) {
  CheckQueries({.colbert = true}, Opts(10, 1));
  const size_t with_colbert = static_cast<size_t>(
      std::count_if(corpus_.docs.begin(), corpus_.docs.end(), [](const Document& d) { return !d.colbert.empty(); }));
  for (const Reference& ref : CheckQueries({.colbert = true}, Opts(1000, 10))) {
    EXPECT_EQ(ref.ranked.size(), with_colbert);
  }
  CheckQueries({.colbert = true}, Opts(15, 10, Fusion::kRrf));
}

TEST_P(ReferenceSearchTest, DenseAndSparseWeighted) {
  CheckQueries({.dense = true, .sparse = true}, Opts(10, 10));
  SearchOptions custom = Opts(12, 1000);
  custom.weights = {.dense = 0.5f, .sparse = 2.0f, .colbert = 0.7f};
  for (const Reference& ref : CheckQueries({.dense = true, .sparse = true}, custom)) {
    EXPECT_EQ(ref.ranked.size(), kDocs);
  }
}

TEST_P(ReferenceSearchTest, UnionBringsInSparseOnlyCandidates) {
  SearchOptions options = Opts(10, 10);
  options.weights = {.dense = 0.1f, .sparse = 3.0f, .colbert = 1.0f};
  size_t outside_dense_top = 0;
  SeededRandom rng(seed() + 17);
  for (int i = 0; i < 8; ++i) {
    auto [query, ref] = DrawQuery(rng, {.dense = true, .sparse = true}, options);
    auto hits = collection_->Search(query, options);
    ASSERT_TRUE(hits.ok()) << hits.status().ToString();
    ExpectMatchesReference(corpus_, ref, hits.value(), options);
    for (const SearchHit& hit : hits.value()) {
      const size_t doc = static_cast<size_t>(std::stoul(hit.id.substr(4)));
      if (!ref.in_dense_top[doc]) ++outside_dense_top;
    }
  }
  EXPECT_GT(outside_dense_top, 0u) << "no hit came from the sparse side of the union";
}

TEST_P(ReferenceSearchTest, AllModesWeighted) {
  CheckQueries({.dense = true, .sparse = true, .colbert = true}, Opts(10, 10));
  CheckQueries({.dense = true, .sparse = true, .colbert = true}, Opts(10, 30));
  SearchOptions custom = Opts(20, 1000);
  custom.weights = {.dense = 0.4f, .sparse = 1.5f, .colbert = 2.0f};
  CheckQueries({.dense = true, .sparse = true, .colbert = true}, custom);
}

TEST_P(ReferenceSearchTest, AllModesRrf) {
  CheckQueries({.dense = true, .sparse = true, .colbert = true}, Opts(10, 10, Fusion::kRrf));
  CheckQueries({.dense = true, .sparse = true, .colbert = true}, Opts(10, 1000, Fusion::kRrf));
}

TEST_P(ReferenceSearchTest, TwoModeMixes) {
  CheckQueries({.dense = true, .colbert = true}, Opts(10, 20));
  CheckQueries({.dense = true, .colbert = true}, Opts(10, 20, Fusion::kRrf));
  CheckQueries({.sparse = true, .colbert = true}, Opts(10, 20));
  CheckQueries({.sparse = true, .colbert = true}, Opts(10, 20, Fusion::kRrf));
  CheckQueries({.dense = true, .sparse = true}, Opts(10, 20, Fusion::kRrf));
}

TEST_P(ReferenceSearchTest, SearchBatchEqualsSearch) {
  const std::vector<QueryModes> mixes = {
      {.dense = true},
      {.sparse = true},
      {.colbert = true},
      {.dense = true, .sparse = true},
      {.dense = true, .sparse = true, .colbert = true},
      {.dense = true},
      {.dense = true, .colbert = true},
      {.dense = true, .sparse = true, .colbert = true},
  };
  SearchOptions with_text = Opts(10, 15);
  with_text.include_metadata = false;
  with_text.include_text = true;
  for (const SearchOptions& options : {Opts(10, 15), with_text, Opts(8, 20, Fusion::kRrf)}) {
    SeededRandom rng(seed() * 31 + static_cast<uint64_t>(options.fusion));
    std::vector<Query> queries;
    std::vector<Reference> refs;
    for (const QueryModes& modes : mixes) {
      auto [query, ref] = DrawQuery(rng, modes, options);
      queries.push_back(std::move(query));
      refs.push_back(std::move(ref));
    }
    auto batch = collection_->SearchBatch(queries, options);
    ASSERT_TRUE(batch.ok()) << batch.status().ToString();
    ASSERT_EQ(batch->size(), queries.size());
    for (size_t q = 0; q < queries.size(); ++q) {
      SCOPED_TRACE("query " + std::to_string(q));
      auto single = collection_->Search(queries[q], options);
      ASSERT_TRUE(single.ok()) << single.status().ToString();
      ExpectMatchesReference(corpus_, refs[q], (*batch)[q], options);
      ExpectMatchesReference(corpus_, refs[q], single.value(), options);
      ASSERT_EQ((*batch)[q].size(), single->size());
      for (size_t i = 0; i < single->size(); ++i) {
        const SearchHit& a = (*batch)[q][i];
        const SearchHit& b = (*single)[i];
        EXPECT_NEAR(a.score, b.score, Tolerance(b.score));
        if (a.id == b.id) {
          EXPECT_EQ(a.metadata_json, b.metadata_json);
          EXPECT_EQ(a.text, b.text);
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(SeedsAndMetrics, ReferenceSearchTest,
                         ::testing::Combine(::testing::Values<uint64_t>(1, 2, 3),
                                            ::testing::Values(Metric::kInnerProduct, Metric::kL2)),
                         [](const ::testing::TestParamInfo<ReferenceSearchTest::ParamType>& info) {
                           return MetricLabel(std::get<1>(info.param)) + "Seed" +
                                  std::to_string(std::get<0>(info.param));
                         });

}  // namespace
}  // namespace m3vdb
