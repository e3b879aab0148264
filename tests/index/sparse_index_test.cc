// SparseIndex against a brute-force twin: forward lists scored pairwise.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "index/sparse_index.h"

namespace m3vdb::index {
namespace {

struct Sparse {
  std::vector<int32_t> idx;
  std::vector<float> val;
};

Sparse RandomSparse(std::mt19937& rng, int vocab, int terms) {
  std::set<int32_t> ids;
  while (static_cast<int>(ids.size()) < terms) ids.insert(static_cast<int32_t>(rng() % vocab));
  Sparse s;
  std::uniform_real_distribution<float> w(0.01f, 0.5f);
  for (int32_t id : ids) {
    s.idx.push_back(id);
    s.val.push_back(w(rng));
  }
  return s;
}

double RefScore(const Sparse& q, const Sparse& d) {
  double s = 0;
  for (size_t i = 0; i < q.idx.size(); ++i)
    for (size_t j = 0; j < d.idx.size(); ++j)
      if (q.idx[i] == d.idx[j]) s += double{q.val[i]} * d.val[j];
  return s;
}

class SparseIndexTest : public ::testing::TestWithParam<int> {};

TEST_P(SparseIndexTest, MatchesBruteForceThroughRemovesAndCompaction) {
  std::mt19937 rng(GetParam());
  SparseIndex index;
  std::map<uint64_t, Sparse> ref;
  for (uint64_t id = 0; id < 3000; ++id) {
    ref[id] = RandomSparse(rng, 800, 1 + static_cast<int>(rng() % 30));
    index.Add(id, ref[id].idx, ref[id].val);
  }
  // Remove enough to trigger compaction (> 1/4 of the postings), and replace some.
  for (uint64_t id = 0; id < 3000; id += 2) {
    EXPECT_TRUE(index.Remove(id));
    ref.erase(id);
  }
  for (uint64_t id = 1; id < 3000; id += 9) {
    ref[id] = RandomSparse(rng, 800, 5);
    index.Add(id, ref[id].idx, ref[id].val);
  }
  ASSERT_EQ(index.size(), ref.size());
  for (int t = 0; t < 50; ++t) {
    Sparse q = RandomSparse(rng, 800, 1 + t % 15);
    const size_t k = 1 + t % 40;
    std::vector<std::pair<double, uint64_t>> all;
    for (const auto& [id, d] : ref) {
      bool overlap = false;
      for (int32_t x : q.idx) overlap |= std::find(d.idx.begin(), d.idx.end(), x) != d.idx.end();
      if (overlap) all.push_back({RefScore(q, d), id});
    }
    std::sort(all.begin(), all.end(), [](auto& a, auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
    auto got = index.Search(q.idx, q.val, k);
    ASSERT_EQ(got.size(), std::min(k, all.size()));
    for (size_t r = 0; r < got.size(); ++r) {
      EXPECT_NEAR(got[r].score, all[r].first, 1e-5);
      const bool tie = (r + 1 < all.size() && all[r].first - all[r + 1].first <= 1e-5) ||
                       (r > 0 && all[r - 1].first - all[r].first <= 1e-5);
      if (!tie) {
        EXPECT_EQ(got[r].id, all[r].second);
      }
      EXPECT_NEAR(index.Score(q.idx, q.val, got[r].id), all[r].first, 1e-5);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, SparseIndexTest, ::testing::Values(1, 2, 3));

TEST(SparseIndexEdgeTest, NoOverlapAndAbsent) {
  SparseIndex index;
  std::vector<int32_t> idx = {1, 5};
  std::vector<float> val = {0.5f, 0.25f};
  index.Add(7, idx, val);
  index.Add(8, {}, {});  // an empty vector matches nothing
  std::vector<int32_t> q = {2, 3};
  std::vector<float> qv = {1, 1};
  EXPECT_TRUE(index.Search(q, qv, 10).empty());
  EXPECT_EQ(index.Score(idx, val, 99), 0.0f);
  EXPECT_FLOAT_EQ(index.Score(idx, val, 7), 0.25f + 0.0625f);
  EXPECT_FALSE(index.Remove(99));
  EXPECT_EQ(index.size(), 2u);
}

}  // namespace
}  // namespace m3vdb::index
