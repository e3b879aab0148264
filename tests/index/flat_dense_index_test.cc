// FlatDenseIndex against a brute-force twin written here (double accumulation).
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <span>

#include "index/dense_index.h"

namespace m3vdb::index {
namespace {

struct Case {
  Metric metric;
  uint32_t dim;
  int seed;
};

class FlatDenseIndexTest : public ::testing::TestWithParam<Case> {};

double RefScore(const std::vector<float>& q, const std::vector<float>& d, Metric m) {
  double s = 0;
  for (size_t i = 0; i < q.size(); ++i) s += m == Metric::kL2 ? -(double{q[i]} - d[i]) * (double{q[i]} - d[i]) : double{q[i]} * d[i];
  return s;
}

TEST_P(FlatDenseIndexTest, MatchesBruteForceThroughAddsRemovesAndReplaces) {
  const Case c = GetParam();
  std::mt19937 rng(c.seed);
  std::normal_distribution<float> g;
  auto random_vec = [&] {
    std::vector<float> v(c.dim);
    for (float& x : v) x = g(rng);
    return v;
  };
  FlatDenseIndex index(c.dim, c.metric);
  std::map<uint64_t, std::vector<float>> ref;
  for (uint64_t id = 0; id < 5000; ++id) {  // > one 4096-document GEMM block
    ref[id * 3] = random_vec();
    index.Add(id * 3, ref[id * 3]);
  }
  for (uint64_t id = 0; id < 5000; id += 7) {  // removes
    EXPECT_TRUE(index.Remove(id * 3));
    ref.erase(id * 3);
  }
  EXPECT_FALSE(index.Remove(1));
  for (uint64_t id = 1; id < 5000; id += 11) {  // replaces
    if (!ref.count(id * 3)) continue;
    ref[id * 3] = random_vec();
    index.Add(id * 3, ref[id * 3]);
  }
  ASSERT_EQ(index.size(), ref.size());

  const size_t nq = 300, k = 17;  // > one 256-query block
  std::vector<float> queries;
  std::vector<std::vector<float>> qs;
  for (size_t i = 0; i < nq; ++i) {
    qs.push_back(random_vec());
    queries.insert(queries.end(), qs.back().begin(), qs.back().end());
  }
  // Checks results[j] (the answer to query `first + j`) against brute force.
  auto check = [&](const std::vector<std::vector<ScoredId>>& results, size_t first) {
    for (size_t j = 0; j < results.size(); ++j) {
      const size_t i = first + j;
      std::vector<std::pair<double, uint64_t>> all;
      for (const auto& [id, v] : ref) all.push_back({RefScore(qs[i], v, c.metric), id});
      std::sort(all.begin(), all.end(), [](auto& a, auto& b) { return a.first > b.first; });
      ASSERT_EQ(results[j].size(), k);
      for (size_t r = 0; r < k; ++r) {
        const double tol = 1e-3 * (1 + std::abs(all[r].first));
        EXPECT_NEAR(results[j][r].score, all[r].first, tol) << "query " << i << " rank " << r;
        // Same id unless the reference itself has a near-tie at this rank.
        const bool tie = (r > 0 && all[r - 1].first - all[r].first < tol) ||
                         (r + 1 < all.size() && all[r].first - all[r + 1].first < tol);
        if (!tie) {
          EXPECT_EQ(results[j][r].id, all[r].second) << "query " << i << " rank " << r;
        }
        float s;
        ASSERT_TRUE(index.Score(qs[i], results[j][r].id, &s));
        EXPECT_NEAR(s, results[j][r].score, tol);
      }
    }
  };
  auto results = index.Search(queries, nq, k);
  ASSERT_EQ(results.size(), nq);
  check(results, 0);
  // Small batches take the single-pass kernel (up to 8 queries), 9 the GEMM again.
  size_t first = 0;
  for (size_t batch : {1, 2, 3, 4, 5, 6, 7, 8, 9}) {
    auto small = index.Search(std::span<const float>(queries).subspan(first * c.dim, batch * c.dim), batch, k);
    ASSERT_EQ(small.size(), batch);
    check(small, first);
    first += batch;
  }
}

// Enough stored vectors for the small-batch scan to split over threads (where the machine and
// BLAS settings allow more than one), with a dimension that is no multiple of the SIMD width.
TEST(FlatDenseIndexEdgeTest, LargeSmallBatchScanMatchesBruteForce) {
  const uint32_t dim = 19;
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> u(-1, 1);
  FlatDenseIndex index(dim, Metric::kL2);
  std::vector<std::vector<float>> docs(40000, std::vector<float>(dim));
  for (size_t i = 0; i < docs.size(); ++i) {
    for (float& x : docs[i]) x = u(rng);
    index.Add(i + 100, docs[i]);
  }
  std::vector<float> queries(5 * dim);
  for (float& x : queries) x = u(rng);
  const size_t k = 10;
  auto results = index.Search(queries, 5, k);
  for (size_t q = 0; q < 5; ++q) {
    std::vector<std::pair<double, uint64_t>> all;
    for (size_t i = 0; i < docs.size(); ++i) {
      double s = 0;
      for (uint32_t j = 0; j < dim; ++j) s -= (double{queries[q * dim + j]} - docs[i][j]) * (double{queries[q * dim + j]} - docs[i][j]);
      all.push_back({s, i + 100});
    }
    std::partial_sort(all.begin(), all.begin() + k, all.end(), [](auto& a, auto& b) { return a.first > b.first; });
    ASSERT_EQ(results[q].size(), k);
    for (size_t r = 0; r < k; ++r) {
      EXPECT_NEAR(results[q][r].score, all[r].first, 1e-4) << "query " << q << " rank " << r;
      if (r + 1 < k && all[r].first - all[r + 1].first > 1e-4 && (r == 0 || all[r - 1].first - all[r].first > 1e-4)) {
        EXPECT_EQ(results[q][r].id, all[r].second) << "query " << q << " rank " << r;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Metrics, FlatDenseIndexTest,
                         ::testing::Values(Case{Metric::kInnerProduct, 32, 1}, Case{Metric::kL2, 32, 2},
                                           Case{Metric::kInnerProduct, 7, 3}, Case{Metric::kL2, 100, 4}));

TEST(FlatDenseIndexEdgeTest, EmptyAndSmall) {
  FlatDenseIndex index(4, Metric::kInnerProduct);
  std::vector<float> q = {1, 0, 0, 0};
  EXPECT_TRUE(index.Search(q, 1, 5)[0].empty());
  index.Add(10, std::vector<float>{1, 0, 0, 0});
  index.Add(11, std::vector<float>{2, 0, 0, 0});
  auto r = index.Search(q, 1, 5)[0];
  ASSERT_EQ(r.size(), 2u);  // fewer documents than k
  EXPECT_EQ(r[0].id, 11u);
  EXPECT_EQ(r[0].score, 2.0f);
  EXPECT_TRUE(index.Vector(12).empty());
  float s;
  EXPECT_FALSE(index.Score(q, 12, &s));
  // The many-id rescoring: present ids scored as one at a time, absent ones empty.
  std::vector<uint64_t> ids = {11, 12, 10};
  std::vector<std::optional<float>> many(ids.size());
  index.Score(q, ids, many.data());
  ASSERT_TRUE(many[0] && many[2]);
  EXPECT_EQ(*many[0], 2.0f);
  EXPECT_FALSE(many[1]);
  EXPECT_EQ(*many[2], 1.0f);
  // Reserving room later keeps what is stored.
  index.Reserve(1000);
  EXPECT_EQ(index.size(), 2u);
  EXPECT_EQ(index.Vector(11)[0], 2.0f);
  EXPECT_EQ(index.Search(q, 1, 5)[0].size(), 2u);
}

// L2 rescoring of many ids equals the one-id Score (the query norm is computed once for all).
TEST(FlatDenseIndexEdgeTest, ScoreManyEqualsScoreL2) {
  FlatDenseIndex index(3, Metric::kL2);
  index.Reserve(4);
  for (uint64_t i = 0; i < 4; ++i) index.Add(i, std::vector<float>{float(i), 1.0f - float(i), 0.5f});
  std::vector<float> q = {0.3f, -2.0f, 1.0f};
  std::vector<uint64_t> ids = {3, 0, 2, 1};
  std::vector<std::optional<float>> many(ids.size());
  index.Score(q, ids, many.data());
  for (size_t i = 0; i < ids.size(); ++i) {
    float one;
    ASSERT_TRUE(index.Score(q, ids[i], &one));
    ASSERT_TRUE(many[i]);
    EXPECT_EQ(*many[i], one) << ids[i];
  }
}

}  // namespace
}  // namespace m3vdb::index
