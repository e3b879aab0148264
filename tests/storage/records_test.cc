#include "storage/records.h"

#include <gtest/gtest.h>

#include <random>

namespace m3vdb::storage {
namespace {

TEST(RecordsTest, RoundTrips) {
  CatalogRecord cat{42, 1024, 1, true, true, 128}, cat2;
  ASSERT_TRUE(DecodeCatalog(EncodeCatalog(cat), &cat2).ok());
  EXPECT_EQ(cat2.collection_id, 42u);
  EXPECT_EQ(cat2.dense_dim, 1024u);
  EXPECT_EQ(cat2.metric, 1);
  EXPECT_TRUE(cat2.sparse && cat2.colbert);
  EXPECT_EQ(cat2.colbert_dim, 128u);

  DocRecord doc;
  ASSERT_TRUE(DecodeDoc(EncodeDoc("hello", R"({"a":1})"), &doc).ok());
  EXPECT_EQ(doc.text, "hello");
  EXPECT_EQ(doc.metadata_json, R"({"a":1})");

  std::vector<float> dense = {1.5f, -2.25f, 3e-8f}, dense2;
  ASSERT_TRUE(DecodeDense(EncodeDense(dense), &dense2).ok());
  EXPECT_EQ(dense, dense2);

  std::vector<int32_t> idx = {3, 17, 250001}, idx2;
  std::vector<float> val = {0.5f, 0.25f, 0.125f}, val2;
  ASSERT_TRUE(DecodeSparse(EncodeSparse(idx, val), &idx2, &val2).ok());
  EXPECT_EQ(idx, idx2);
  EXPECT_EQ(val, val2);

  std::vector<float> colbert = {0.5f, -0.25f, 1.0f, 0.0f, 0.75f, -1.0f}, colbert2;  // exact in fp16
  uint32_t rows, width;
  ASSERT_TRUE(DecodeColbert(EncodeColbert(colbert, 2, 3), &colbert2, &rows, &width).ok());
  EXPECT_EQ(rows, 2u);
  EXPECT_EQ(width, 3u);
  EXPECT_EQ(colbert, colbert2);

  uint64_t u;
  ASSERT_TRUE(DecodeU64(EncodeU64(0xdeadbeefcafeull), &u).ok());
  EXPECT_EQ(u, 0xdeadbeefcafeull);
}

TEST(RecordsTest, CatalogModelFlagAndOlderVersions) {
  CatalogRecord model;
  model.dense_dim = 64;
  model.model = true;
  CatalogRecord back;
  ASSERT_TRUE(DecodeCatalog(EncodeCatalog(model), &back).ok());
  EXPECT_TRUE(back.model);
  model.model = false;
  ASSERT_TRUE(DecodeCatalog(EncodeCatalog(model), &back).ok());
  EXPECT_FALSE(back.model);

  // A version-2 record is the version-3 layout with bits 0-1 of the flags only.
  CatalogRecord plain{7, 32, 0, true, false, 0};
  std::string v2 = EncodeCatalog(plain);
  ASSERT_EQ(v2[0], 3);
  v2[0] = 2;
  back.model = true;
  ASSERT_TRUE(DecodeCatalog(v2, &back).ok());
  EXPECT_FALSE(back.model);
  EXPECT_TRUE(back.sparse);
  EXPECT_EQ(back.dense_dim, 32u);
  // The model bit did not exist in version 2: such a record is corrupt.
  const size_t flags_at = 1 + 8 + 4 + 1;
  v2[flags_at] = static_cast<char>(v2[flags_at] | 4);
  EXPECT_EQ(DecodeCatalog(v2, &back).code(), StatusCode::kCorruption);
  // Unknown flag bits of version 3 are corrupt too.
  std::string v3 = EncodeCatalog(plain);
  v3[flags_at] = static_cast<char>(v3[flags_at] | 8);
  EXPECT_EQ(DecodeCatalog(v3, &back).code(), StatusCode::kCorruption);
}

TEST(RecordsTest, CorruptValuesAreCorruptionNotCrashes) {
  std::vector<float> f;
  std::vector<int32_t> i;
  std::vector<uint16_t> h;
  uint32_t rows, width;
  DocRecord doc;
  CatalogRecord cat;
  uint64_t u;
  // Truncated, empty, wrong version, trailing bytes.
  std::string dense = EncodeDense(std::vector<float>{1, 2, 3});
  EXPECT_EQ(DecodeDense(dense.substr(0, dense.size() - 1), &f).code(), StatusCode::kCorruption);
  EXPECT_EQ(DecodeDense("", &f).code(), StatusCode::kCorruption);
  std::string bad_version = dense;
  bad_version[0] = 9;
  EXPECT_EQ(DecodeDense(bad_version, &f).code(), StatusCode::kCorruption);
  EXPECT_EQ(DecodeDense(dense + "x", &f).code(), StatusCode::kCorruption);
  EXPECT_EQ(DecodeDoc(EncodeDoc("abc", "{}") + "z", &doc).code(), StatusCode::kCorruption);
  EXPECT_EQ(DecodeCatalog(EncodeCatalog({}).substr(0, 5), &cat).code(), StatusCode::kCorruption);
  EXPECT_EQ(DecodeU64("1234567", &u).code(), StatusCode::kCorruption);
  // A length field that promises more than the value holds.
  std::string doc_value = EncodeDoc("abc", "{}");
  doc_value[1] = static_cast<char>(0xff);
  EXPECT_EQ(DecodeDoc(doc_value, &doc).code(), StatusCode::kCorruption);

  // Random bytes: every decoder either succeeds or says Corruption.
  std::mt19937 rng(7);
  for (int t = 0; t < 5000; ++t) {
    std::string v(rng() % 40, '\0');
    for (char& c : v) c = static_cast<char>(rng());
    if (!v.empty() && t % 2) v[0] = 1;  // valid version half of the time
    for (Status s : {DecodeDense(v, &f), DecodeSparse(v, &i, &f), DecodeColbertHalves(v, &h, &rows, &width),
                     DecodeDoc(v, &doc), DecodeCatalog(v, &cat), DecodeU64(v, &u)})
      EXPECT_TRUE(s.ok() || s.code() == StatusCode::kCorruption) << s.ToString();
  }
}

}  // namespace
}  // namespace m3vdb::storage
