#include <gtest/gtest.h>

#include "embedder/embedder.h"

namespace m3vdb::embedder {
namespace {

TEST(ScoresTest, SparseScoreSumsSharedIds) {
  SparseWeights q{{4, 9, 20}, {0.5f, 1.0f, 2.0f}};
  SparseWeights d{{1, 9, 20, 30}, {3.0f, 0.25f, 0.5f, 7.0f}};
  EXPECT_FLOAT_EQ(SparseScore(q, d), 1.0f * 0.25f + 2.0f * 0.5f);
  EXPECT_FLOAT_EQ(SparseScore(q, SparseWeights{}), 0.0f);
}

TEST(ScoresTest, ColbertScoreIsMeanOfMaxSim) {
  // q: 2 rows, d: 3 rows, dim 2.
  std::vector<float> q{1, 0, 0, 1};
  std::vector<float> d{0.5f, 0.5f, 0.9f, -0.1f, -1, 0.2f};
  float want = (0.9f + 0.5f) / 2;
  EXPECT_FLOAT_EQ(ColbertScore(q, 2, d, 3, 2), want);
  EXPECT_EQ(ColbertScore(q, 0, d, 3, 2), 0.0f);
  EXPECT_EQ(ColbertScore(q, 2, d, 0, 2), 0.0f);
  EXPECT_EQ(ColbertScore(q, 2, d, 4, 2), 0.0f);  // sizes that do not match are rejected
}

}  // namespace
}  // namespace m3vdb::embedder
