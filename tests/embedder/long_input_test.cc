// Inputs longer than the checkpoint's positions (the fixture has 128): truncation (default),
// chunk-and-average and position interpolation.
#include <gtest/gtest.h>

#include "tests/embedder/fixture.h"

namespace m3vdb::embedder {
namespace {

std::string LongText() {
  std::string s;
  for (int i = 0; i < 60; ++i) s += "The quick brown fox " + std::to_string(i) + " jumps over the lazy dog. ";
  return s;
}

TEST(LongInputTest, TruncatesToMaxLength) {
  Options o;
  o.max_length = 100000;  // capped to the positions
  auto e = testing::OpenFixture(o);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->max_length(), 128u);
  auto r = e->Encode(std::vector<std::string>{LongText()});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0].tokens.size(), 128u);
  EXPECT_EQ((*r)[0].tokens.back(), 2);
  EXPECT_EQ((*r)[0].colbert_rows, 127u);
}

TEST(LongInputTest, ShortInputsAreUnchangedByEveryMode) {
  auto base = testing::OpenFixture();
  ASSERT_NE(base, nullptr);
  std::vector<std::string> texts{"a short text", "Crème brûlée 北京 🍕"};
  auto want = base->Encode(texts);
  ASSERT_TRUE(want.ok());
  for (LongInputMode mode : {LongInputMode::kChunkAverage, LongInputMode::kInterpolatePositions}) {
    Options o;
    o.long_input = mode;
    auto e = testing::OpenFixture(o);
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->max_length(), 8192u);
    auto got = e->Encode(texts);
    ASSERT_TRUE(got.ok());
    for (size_t i = 0; i < texts.size(); ++i) testing::ExpectNear((*got)[i], (*want)[i], 0, texts[i]);
  }
}

TEST(LongInputTest, ChunkAverageCombinesPositionSizedChunks) {
  Options o;
  o.long_input = LongInputMode::kChunkAverage;
  auto e = testing::OpenFixture(o);
  ASSERT_NE(e, nullptr);
  std::vector<int32_t> ids = e->Tokenize(LongText());
  ASSERT_GT(ids.size(), 300u);
  auto r = e->Encode(std::vector<std::string>{LongText()});
  ASSERT_TRUE(r.ok());
  const Embedding& got = (*r)[0];
  EXPECT_EQ(got.tokens, ids);
  EXPECT_EQ(got.colbert_rows, ids.size() - 1);

  // The same chunks encoded one by one: content chunks of 126 tokens, the last right-aligned.
  const size_t content = ids.size() - 2, chunk = 126;
  std::vector<std::vector<int32_t>> chunks;
  std::vector<size_t> starts;
  for (size_t start = 0;; start += chunk) {
    size_t s = std::min(start, content - chunk);
    std::vector<int32_t> c{0};
    c.insert(c.end(), ids.begin() + 1 + s, ids.begin() + 1 + s + chunk);
    c.push_back(2);
    chunks.push_back(c);
    starts.push_back(s);
    if (s + chunk >= content) break;
  }
  auto parts = e->EncodeTokens(chunks);
  ASSERT_TRUE(parts.ok());
  // Sparse: max per id over the chunks.
  std::map<int32_t, float> best;
  for (const auto& p : *parts)
    for (size_t i = 0; i < p.sparse.ids.size(); ++i) best[p.sparse.ids[i]] = std::max(best[p.sparse.ids[i]], p.sparse.weights[i]);
  ASSERT_EQ(got.sparse.ids.size(), best.size());
  size_t k = 0;
  for (auto [id, w] : best) {
    EXPECT_EQ(got.sparse.ids[k], id);
    EXPECT_NEAR(got.sparse.weights[k], w, 1e-6);
    ++k;
  }
  // ColBERT: row of content token p comes from the first chunk covering p.
  const size_t dim = e->colbert_dim();
  for (size_t pos = 0; pos < content; ++pos) {
    size_t c = 0;
    while (starts[c] + chunk <= pos) ++c;
    const auto& row = (*parts)[c].colbert;
    for (size_t j = 0; j < dim; ++j)
      ASSERT_NEAR(got.colbert[pos * dim + j], row[(pos - starts[c]) * dim + j], 1e-6) << pos;
  }
  double norm = 0;
  for (float v : got.dense) norm += v * v;
  EXPECT_NEAR(norm, 1.0, 1e-5);
}

TEST(LongInputTest, PositionInterpolationEncodesTheWholeInput) {
  Options o;
  o.long_input = LongInputMode::kInterpolatePositions;
  o.max_length = 400;
  auto e = testing::OpenFixture(o);
  ASSERT_NE(e, nullptr);
  auto r = e->Encode(std::vector<std::string>{LongText()});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0].tokens.size(), 400u);
  EXPECT_EQ((*r)[0].colbert_rows, 399u);
  for (float v : (*r)[0].colbert) ASSERT_TRUE(std::isfinite(v));
  double norm = 0;
  for (float v : (*r)[0].dense) norm += v * v;
  EXPECT_NEAR(norm, 1.0, 1e-5);
}

}  // namespace
}  // namespace m3vdb::embedder
