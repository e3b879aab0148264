// Token ids, dense, sparse and ColBERT outputs against the PyTorch reference, for both weight
// formats; batching and weight format must not change the results.
#include <gtest/gtest.h>

#include "tests/embedder/fixture.h"

namespace m3vdb::embedder {
namespace {

using testing::ExpectNear;
using testing::MaxAbsDiff;
using testing::OpenFixture;
using testing::Reference;

constexpr float kTolerance = 1e-4f;

Embedding FromReference(const nlohmann::json& c) {
  Embedding e;
  e.tokens = c["tokens"].get<std::vector<int32_t>>();
  e.dense = c["dense"].get<std::vector<float>>();
  for (const auto& [id, w] : c["sparse"].items()) {
    e.sparse.ids.push_back(std::stoi(id));
    e.sparse.weights.push_back(w.get<float>());
  }
  std::vector<std::pair<int32_t, float>> pairs;
  for (size_t i = 0; i < e.sparse.ids.size(); ++i) pairs.emplace_back(e.sparse.ids[i], e.sparse.weights[i]);
  std::sort(pairs.begin(), pairs.end());
  e.sparse = {};
  for (auto [id, w] : pairs) {
    e.sparse.ids.push_back(id);
    e.sparse.weights.push_back(w);
  }
  for (const auto& row : c["colbert"]) {
    auto r = row.get<std::vector<float>>();
    e.colbert.insert(e.colbert.end(), r.begin(), r.end());
    ++e.colbert_rows;
  }
  return e;
}

class ReferenceTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ReferenceTest, MatchesPyTorchForEveryText) {
  for (const auto& c : Reference()["cases"]) {
    std::string name = c["name"];
    Options options;
    options.weights_file = GetParam();
    options.max_length = c["max_length"].get<size_t>();
    auto embedder = OpenFixture(options);
    ASSERT_NE(embedder, nullptr);
    std::string text = c["text"];
    EXPECT_EQ(embedder->Tokenize(text), c["tokens"].get<std::vector<int32_t>>()) << name;
    auto got = embedder->Encode(std::vector<std::string>{text});
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    Embedding want = FromReference(c);
    ExpectNear((*got)[0], want, kTolerance, name);
    EXPECT_EQ((*got)[0].colbert_rows, want.tokens.size() - 1) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(WeightFormats, ReferenceTest,
                         ::testing::Values("pytorch_model.bin", "model.safetensors"));

std::vector<std::string> DefaultLengthTexts() {
  std::vector<std::string> texts;
  for (const auto& c : Reference()["cases"])
    if (c["max_length"] == Reference()["max_length_default"]) texts.push_back(c["text"]);
  return texts;
}

TEST(EmbedderTest, DefaultMaxLengthIsCappedByPositions) {
  auto embedder = OpenFixture();
  ASSERT_NE(embedder, nullptr);
  EXPECT_EQ(embedder->max_length(), Reference()["max_length_default"].get<size_t>());
  EXPECT_EQ(embedder->dim(), 64u);
  EXPECT_EQ(embedder->colbert_dim(), 64u);
  EXPECT_EQ(embedder->backend(), "cpu");
}

TEST(EmbedderTest, BatchedEqualsOneAtATime) {
  std::vector<std::string> texts = DefaultLengthTexts();
  Options batched;
  batched.batch_size = 4;
  batched.batch_tokens = 200;
  auto a = OpenFixture(batched);
  Options single;
  single.batch_size = 1;
  single.threads = 1;
  auto b = OpenFixture(single);
  ASSERT_TRUE(a && b);
  auto all = a->Encode(texts);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    auto one = b->Encode(std::vector<std::string>{texts[i]});
    ASSERT_TRUE(one.ok());
    ExpectNear((*all)[i], (*one)[0], 1e-5f, texts[i]);
  }
}

TEST(EmbedderTest, BothWeightFormatsGiveIdenticalOutputs) {
  std::vector<std::string> texts = DefaultLengthTexts();
  Options bin, st;
  bin.weights_file = "pytorch_model.bin";
  st.weights_file = "model.safetensors";
  auto a = OpenFixture(bin), b = OpenFixture(st);
  ASSERT_TRUE(a && b);
  auto x = a->Encode(texts), y = b->Encode(texts);
  ASSERT_TRUE(x.ok() && y.ok());
  for (size_t i = 0; i < texts.size(); ++i) {
    EXPECT_EQ((*x)[i].dense, (*y)[i].dense);
    EXPECT_EQ((*x)[i].sparse.weights, (*y)[i].sparse.weights);
    EXPECT_EQ((*x)[i].colbert, (*y)[i].colbert);
  }
}

TEST(EmbedderTest, EncodeTokensMatchesEncode) {
  auto embedder = OpenFixture();
  ASSERT_NE(embedder, nullptr);
  std::vector<std::string> texts = DefaultLengthTexts();
  std::vector<std::vector<int32_t>> ids;
  for (const auto& t : texts) ids.push_back(embedder->Tokenize(t));
  auto a = embedder->Encode(texts);
  auto b = embedder->EncodeTokens(ids);
  ASSERT_TRUE(a.ok() && b.ok());
  for (size_t i = 0; i < texts.size(); ++i) ExpectNear((*a)[i], (*b)[i], 0, texts[i]);
}

TEST(EmbedderTest, EncodeTokensRejectsBadIds) {
  auto embedder = OpenFixture();
  ASSERT_NE(embedder, nullptr);
  for (std::vector<int32_t> bad : {std::vector<int32_t>{}, {0}, {5, 2}, {0, 5}, {0, 1, 2}, {0, -4, 2},
                                   {0, 1 << 20, 2}, std::vector<int32_t>(500, 7)}) {
    auto r = embedder->EncodeTokens(std::vector<std::vector<int32_t>>{bad});
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  }
  auto empty = embedder->Encode(std::vector<std::string>{});
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(EmbedderTest, OutputsAreNormalizedAndSorted) {
  auto embedder = OpenFixture();
  ASSERT_NE(embedder, nullptr);
  auto r = embedder->Encode(DefaultLengthTexts());
  ASSERT_TRUE(r.ok());
  for (const Embedding& e : *r) {
    double n = 0;
    for (float v : e.dense) n += v * v;
    EXPECT_NEAR(n, 1.0, 1e-5);
    for (size_t i = 1; i < e.sparse.ids.size(); ++i) EXPECT_LT(e.sparse.ids[i - 1], e.sparse.ids[i]);
    for (size_t i = 0; i < e.sparse.ids.size(); ++i) {
      EXPECT_GT(e.sparse.ids[i], 3);
      EXPECT_GT(e.sparse.weights[i], 0.0f);
    }
    for (size_t r2 = 0; r2 < e.colbert_rows; ++r2) {
      double m = 0;
      for (size_t k = 0; k < embedder->colbert_dim(); ++k) m += e.colbert[r2 * embedder->colbert_dim() + k] * e.colbert[r2 * embedder->colbert_dim() + k];
      EXPECT_NEAR(m, 1.0, 1e-5);
    }
  }
  (void)MaxAbsDiff;
}

}  // namespace
}  // namespace m3vdb::embedder
