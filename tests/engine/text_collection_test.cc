// Model collections (schema.model): text is encoded by the database's model. The stored and
// searched vectors are compared with what embedder::Embedder gives for the same text directly
// (an independent instance opened on the same fixture checkpoint); bad paths: widths that do
// not match the model, no model configured, text on a collection without a model.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/half.h"
#include "embedder/embedder.h"
#include "m3vdb/m3vdb.h"
#include "tests/embedder/fixture.h"
#include "tests/engine/temp_dir.h"

namespace m3vdb {
namespace {

using embedder::testing::FixtureDir;
using embedder::testing::MaxAbsDiff;
using test::TempDir;

constexpr float kTol = 1e-5f;

const std::vector<std::string>& Texts() {
  static const std::vector<std::string> texts = [] {
    std::vector<std::string> t = {
        "What is BGE M3? It is an embedding model for dense, sparse and multi-vector retrieval.",
        "The quick brown fox jumps over the lazy dog.",
        "Vector databases store embeddings and answer nearest neighbour queries.",
        "Café crème brûlée, naïve résumé.",
        "RocksDB keeps the documents; the index lives in memory.",
        "short",
    };
    std::string long_text;  // far over the fixture's 128-token limit: truncated like the embedder does
    for (int i = 0; i < 60; ++i) long_text += "retrieval with several granularities and languages ";
    t.push_back(long_text);
    return t;
  }();
  return texts;
}

EncoderOptions Encoder() {
  EncoderOptions e;
  e.threads = 2;
  e.device = EncoderDevice::kCpu;
  return e;
}

std::unique_ptr<embedder::Embedder> Reference() {
  embedder::Options o;
  o.threads = 2;
  o.device = embedder::Device::kCpu;
  auto e = embedder::Embedder::Open(FixtureDir(), o);
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  return e.ok() ? std::move(e).value() : nullptr;
}

std::unique_ptr<Database> OpenDb(const TempDir& dir, bool with_model) {
  Options options;
  if (with_model) {
    options.model_dir = FixtureDir();
    options.encoder = Encoder();
  }
  auto db = Database::Open(options, dir.Sub("db"));
  EXPECT_TRUE(db.ok()) << db.status().ToString();
  return db.ok() ? std::move(db).value() : nullptr;
}

CollectionSchema ModelSchema() {
  CollectionSchema s;
  s.model = true;  // dense_dim / colbert_dim 0: taken from the model
  s.sparse = true;
  s.colbert = true;
  return s;
}

std::vector<float> RoundToHalf(const std::vector<float>& v) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = HalfToFloat(FloatToHalf(v[i]));
  return out;
}

std::vector<Document> TextDocs() {
  std::vector<Document> docs;
  for (size_t i = 0; i < Texts().size(); ++i) {
    Document d;
    d.id = "doc" + std::to_string(i);
    d.text = Texts()[i];
    docs.push_back(d);
  }
  return docs;
}

TEST(TextCollectionTest, TextUpsertStoresWhatTheEmbedderGives) {
  TempDir dir;
  auto db = OpenDb(dir, true);
  ASSERT_NE(db, nullptr);
  auto ref = Reference();
  ASSERT_NE(ref, nullptr);
  auto coll = db->CreateCollection("texts", ModelSchema());
  ASSERT_TRUE(coll.ok()) << coll.status().ToString();
  EXPECT_EQ((*coll)->schema().dense_dim, ref->dim());
  EXPECT_EQ((*coll)->schema().colbert_dim, ref->colbert_dim());

  ASSERT_TRUE((*coll)->Upsert(TextDocs()).ok());
  auto want = ref->Encode(Texts());
  ASSERT_TRUE(want.ok()) << want.status().ToString();
  EXPECT_EQ((*want).back().tokens.size(), ref->max_length()) << "the long text is truncated";
  for (size_t i = 0; i < Texts().size(); ++i) {
    auto got = (*coll)->Get("doc" + std::to_string(i));
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    const embedder::Embedding& w = (*want)[i];
    EXPECT_EQ(got->text, Texts()[i]);
    EXPECT_LE(MaxAbsDiff(got->dense, w.dense), kTol) << i;
    EXPECT_EQ(got->sparse.indices, w.sparse.ids) << i;
    EXPECT_LE(MaxAbsDiff(got->sparse.values, w.sparse.weights), kTol) << i;
    EXPECT_EQ(got->colbert.rows, w.colbert_rows) << i;
    EXPECT_LE(MaxAbsDiff(got->colbert.data, RoundToHalf(w.colbert)), kTol) << i << " (ColBERT is stored as fp16)";
  }

  // Database::Embed gives the same, with tokens; ModelInfo counts what was encoded.
  const ModelInfo before = *db->GetModelInfo();
  auto embedded = db->Embed(Texts());
  ASSERT_TRUE(embedded.ok()) << embedded.status().ToString();
  size_t tokens = 0;
  for (size_t i = 0; i < Texts().size(); ++i) {
    const auto& e = (*embedded)[i];
    const auto& w = (*want)[i];
    tokens += w.tokens.size();
    EXPECT_EQ(e.tokens, w.tokens);
    EXPECT_LE(MaxAbsDiff(e.dense, w.dense), kTol);
    EXPECT_EQ(e.sparse.indices, w.sparse.ids);
    EXPECT_LE(MaxAbsDiff(e.sparse.values, w.sparse.weights), kTol);
    EXPECT_EQ(e.colbert.rows, w.colbert_rows);
    EXPECT_LE(MaxAbsDiff(e.colbert.data, w.colbert), kTol);
  }
  const ModelInfo after = *db->GetModelInfo();
  EXPECT_EQ(after.tokens_total - before.tokens_total, tokens);
  EXPECT_EQ(after.texts_total - before.texts_total, Texts().size());
  EXPECT_GT(after.encode_seconds_total, before.encode_seconds_total);
  EXPECT_EQ(after.dim, ref->dim());
  EXPECT_EQ(after.backend, "cpu");
}

TEST(TextCollectionTest, SearchingWithTheSameTextRanksTheDocumentFirst) {
  TempDir dir;
  auto db = OpenDb(dir, true);
  ASSERT_NE(db, nullptr);
  auto coll = db->CreateCollection("texts", ModelSchema());
  ASSERT_TRUE(coll.ok());
  ASSERT_TRUE((*coll)->Upsert(TextDocs()).ok());
  // Dense and ColBERT self-scores are the maximum (1: both are L2-normalized), so the document
  // itself must rank first on them. The sparse score is unbounded (the fixture's random weights
  // give long texts large lexical scores), so it is computed but not weighted here.
  SearchOptions options;
  options.top_k = 3;
  options.weights = {1.0f, 0.0f, 1.0f};
  std::vector<Query> queries;
  for (size_t i = 0; i < Texts().size(); ++i) {
    Query q;
    q.text = Texts()[i];
    auto hits = (*coll)->Search(q, options);
    ASSERT_TRUE(hits.ok()) << hits.status().ToString();
    ASSERT_FALSE(hits->empty());
    EXPECT_EQ((*hits)[0].id, "doc" + std::to_string(i));
    ASSERT_TRUE((*hits)[0].scores.dense && (*hits)[0].scores.sparse && (*hits)[0].scores.colbert)
        << "text fills every mode the collection stores";
    EXPECT_NEAR(*(*hits)[0].scores.dense, 1.0f, 1e-5f);
    queries.push_back(q);
  }
  auto batch = (*coll)->SearchBatch(queries, options);
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  for (size_t i = 0; i < queries.size(); ++i) EXPECT_EQ((*batch)[i][0].id, "doc" + std::to_string(i));

  // A query with text and a caller's dense vector keeps the vector: with weight only on dense,
  // the ranking follows the given vector (doc 1's), not the text (doc 0's).
  auto doc1 = (*coll)->Get("doc1");
  ASSERT_TRUE(doc1.ok());
  Query mixed;
  mixed.text = Texts()[0];
  mixed.dense = doc1->dense;
  SearchOptions dense_only = options;
  dense_only.weights = {1, 0, 0};
  auto hits = (*coll)->Search(mixed, dense_only);
  ASSERT_TRUE(hits.ok()) << hits.status().ToString();
  EXPECT_EQ((*hits)[0].id, "doc1");
  EXPECT_TRUE((*hits)[0].scores.sparse.has_value()) << "sparse filled from the text";
}

TEST(TextCollectionTest, CallerVectorsAreKept) {
  TempDir dir;
  auto db = OpenDb(dir, true);
  ASSERT_NE(db, nullptr);
  auto ref = Reference();
  ASSERT_NE(ref, nullptr);
  auto coll = db->CreateCollection("texts", ModelSchema());
  ASSERT_TRUE(coll.ok());
  const size_t dim = ref->dim(), cdim = ref->colbert_dim();

  Document given_dense;  // text + dense: dense kept, sparse and ColBERT from the text
  given_dense.id = "a";
  given_dense.text = Texts()[1];
  given_dense.dense.assign(dim, 0.0f);
  given_dense.dense[3] = 1.0f;
  Document given_all;  // text + every mode: nothing encoded
  given_all.id = "b";
  given_all.text = Texts()[2];
  given_all.dense.assign(dim, 0.5f);
  given_all.sparse = {{7, 9}, {0.25f, 0.5f}};
  given_all.colbert.rows = 2;
  given_all.colbert.data.assign(2 * cdim, 0.25f);
  ASSERT_TRUE((*coll)->Upsert(std::vector<Document>{given_dense, given_all}).ok());

  auto want = ref->Encode(std::vector<std::string>{Texts()[1]});
  ASSERT_TRUE(want.ok());
  auto a = (*coll)->Get("a");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->dense, given_dense.dense);
  EXPECT_EQ(a->sparse.indices, (*want)[0].sparse.ids);
  EXPECT_LE(MaxAbsDiff(a->sparse.values, (*want)[0].sparse.weights), kTol);
  EXPECT_EQ(a->colbert.rows, (*want)[0].colbert_rows);
  auto b = (*coll)->Get("b");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->dense, given_all.dense);
  EXPECT_EQ(b->sparse.indices, given_all.sparse.indices);
  EXPECT_EQ(b->sparse.values, given_all.sparse.values);
  EXPECT_EQ(b->colbert.rows, 2u);
  EXPECT_EQ(b->colbert.data, given_all.colbert.data);

  // Neither text nor a dense vector: a clear error, nothing written.
  Document empty;
  empty.id = "c";
  Status s = (*coll)->Upsert(std::vector<Document>{empty});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("neither text nor a dense vector"), std::string::npos) << s.ToString();
  EXPECT_EQ((*coll)->Count(), 2u);
}

TEST(TextCollectionTest, WidthsMustMatchTheModel) {
  TempDir dir;
  auto db = OpenDb(dir, true);
  ASSERT_NE(db, nullptr);
  const ModelInfo info = *db->GetModelInfo();
  CollectionSchema s = ModelSchema();
  s.dense_dim = info.dim + 8;
  auto bad = db->CreateCollection("bad", s);
  ASSERT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find(std::to_string(info.dim + 8)), std::string::npos);
  EXPECT_NE(bad.status().message().find("hidden size " + std::to_string(info.dim)), std::string::npos)
      << bad.status().ToString();
  s = ModelSchema();
  s.colbert_dim = info.colbert_dim * 2;
  bad = db->CreateCollection("bad", s);
  ASSERT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find(std::to_string(info.colbert_dim * 2)), std::string::npos);
  EXPECT_NE(bad.status().message().find("ColBERT width " + std::to_string(info.colbert_dim)), std::string::npos)
      << bad.status().ToString();
  EXPECT_TRUE(db->ListCollections().empty());
}

TEST(TextCollectionTest, WithoutAModelTheDatabaseOpensAndTextFails) {
  TempDir dir;
  {
    auto db = OpenDb(dir, true);
    ASSERT_NE(db, nullptr);
    auto coll = db->CreateCollection("texts", ModelSchema());
    ASSERT_TRUE(coll.ok());
    ASSERT_TRUE((*coll)->Upsert(TextDocs()).ok());
  }
  auto db = OpenDb(dir, false);
  ASSERT_NE(db, nullptr);
  auto coll = db->GetCollection("texts");
  ASSERT_TRUE(coll.ok());
  EXPECT_TRUE((*coll)->schema().model) << "reopen keeps schema.model";
  EXPECT_EQ((*coll)->Count(), Texts().size());
  EXPECT_FALSE(db->GetModelInfo().has_value());

  Document text_only;
  text_only.id = "new";
  text_only.text = "a new text";
  Status s = (*coll)->Upsert(std::vector<Document>{text_only});
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("'texts'"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("model"), std::string::npos) << s.ToString();
  Query q;
  q.text = "a query";
  auto hits = (*coll)->Search(q, {});
  EXPECT_EQ(hits.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(hits.status().message().find("'texts'"), std::string::npos) << hits.status().ToString();

  // Vectors still work: a stored document's vectors find it.
  auto doc = (*coll)->Get("doc2");
  ASSERT_TRUE(doc.ok());
  Query by_vector;
  by_vector.dense = doc->dense;
  hits = (*coll)->Search(by_vector, {});
  ASSERT_TRUE(hits.ok()) << hits.status().ToString();
  EXPECT_EQ((*hits)[0].id, "doc2");

  auto created = db->CreateCollection("more", ModelSchema());
  EXPECT_EQ(created.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(created.status().message().find("'more'"), std::string::npos);
  auto embedded = db->Embed(std::vector<std::string>{"x"});
  EXPECT_EQ(embedded.status().code(), StatusCode::kFailedPrecondition);
}

TEST(TextCollectionTest, TextOnACollectionWithoutModelIsRejected) {
  TempDir dir;
  auto db = OpenDb(dir, true);
  ASSERT_NE(db, nullptr);
  CollectionSchema plain;
  plain.dense_dim = 4;
  auto coll = db->CreateCollection("plain", plain);
  ASSERT_TRUE(coll.ok());
  Document d;
  d.id = "x";
  d.text = "text is stored, not encoded";
  EXPECT_EQ((*coll)->Upsert(std::vector<Document>{d}).code(), StatusCode::kInvalidArgument);
  d.dense = {1, 0, 0, 0};
  ASSERT_TRUE((*coll)->Upsert(std::vector<Document>{d}).ok());
  Query q;
  q.text = "a query";
  auto hits = (*coll)->Search(q, {});
  EXPECT_EQ(hits.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(hits.status().message().find("does not embed text"), std::string::npos) << hits.status().ToString();
}

TEST(TextCollectionTest, TheModelIsSharedAndABadDirectoryIsAnError) {
  TempDir a, b;
  auto db1 = OpenDb(a, true);
  auto db2 = OpenDb(b, true);
  ASSERT_NE(db1, nullptr);
  ASSERT_NE(db2, nullptr);
  const uint64_t before = db2->GetModelInfo()->tokens_total;
  ASSERT_TRUE(db1->Embed(std::vector<std::string>{"shared model"}).ok());
  EXPECT_GT(db2->GetModelInfo()->tokens_total, before) << "both databases use one loaded model";

  TempDir c;
  Options options;
  options.model_dir = c.Sub("no-such-model");
  auto bad = Database::Open(options, c.Sub("db"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("no-such-model"), std::string::npos) << bad.status().ToString();
}

}  // namespace
}  // namespace m3vdb
