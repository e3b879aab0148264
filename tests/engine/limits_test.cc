// Every size a client controls has a limit (m3vdb::Limits): at the limit the call succeeds, one
// past it fails with ResourceExhausted and a message naming the field and the limit. Small
// limits keep the test fast; the defaults are the same code path.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "m3vdb/m3vdb.h"
#include "tests/engine/temp_dir.h"

namespace m3vdb {
namespace {

Limits Small() {
  Limits l;
  l.max_id_bytes = 16;
  l.max_text_bytes = 100;
  l.max_metadata_bytes = 40;
  l.max_dense_dim = 32;
  l.max_sparse_terms = 5;
  l.max_colbert_rows = 3;
  l.max_batch_documents = 4;
  l.max_top_k = 7;
  l.max_rerank_k = 9;
  return l;
}

class LimitsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Options options;
    options.sync = false;
    options.limits = Small();
    auto db = Database::Open(options, dir_.path().string());
    ASSERT_TRUE(db.ok());
    db_ = std::move(*db);
    CollectionSchema schema;
    schema.dense_dim = 2;
    schema.sparse = true;
    schema.colbert = true;
    auto c = db_->CreateCollection("c", schema);
    ASSERT_TRUE(c.ok());
    c_ = *c;
  }

  static Document Doc(std::string id) {
    Document d;
    d.id = std::move(id);
    d.dense = {0.5f, -0.5f};
    return d;
  }
  static SearchOptions Within() {  // top_k and rerank_k inside the small limits
    SearchOptions o;
    o.top_k = 5;
    o.rerank_k = 5;
    return o;
  }
  static Query DenseQuery() {
    Query q;
    q.dense = {1.0f, 0.0f};
    return q;
  }
  // ResourceExhausted whose message names `field` and the limit value.
  static void ExpectOver(const Status& s, const std::string& field, size_t limit) {
    EXPECT_EQ(s.code(), StatusCode::kResourceExhausted) << s.ToString();
    EXPECT_NE(s.message().find(field), std::string::npos) << s.ToString();
    EXPECT_NE(s.message().find("limit"), std::string::npos) << s.ToString();
    EXPECT_NE(s.message().find(std::to_string(limit)), std::string::npos) << s.ToString();
  }
  Status UpsertOne(const Document& d) { return c_->Upsert({&d, 1}); }

  test::TempDir dir_;
  std::unique_ptr<Database> db_;
  std::shared_ptr<Collection> c_;
};

TEST_F(LimitsTest, IdBytes) {
  EXPECT_TRUE(UpsertOne(Doc(std::string(16, 'i'))).ok());
  ExpectOver(UpsertOne(Doc(std::string(17, 'i'))), "id", 16);
  std::vector<std::string> ids = {std::string(17, 'i')};
  ExpectOver(c_->Delete(ids).status(), "id", 16);
}

TEST_F(LimitsTest, TextBytes) {
  Document d = Doc("t");
  d.text = std::string(100, 'x');
  EXPECT_TRUE(UpsertOne(d).ok());
  d.text.push_back('x');
  ExpectOver(UpsertOne(d), "text", 100);
}

TEST_F(LimitsTest, MetadataBytes) {
  Document d = Doc("m");
  d.metadata_json = "{\"k\":\"" + std::string(40 - 8, 'v') + "\"}";
  ASSERT_EQ(d.metadata_json.size(), 40u);
  EXPECT_TRUE(UpsertOne(d).ok());
  d.metadata_json = "{\"k\":\"" + std::string(40 - 7, 'v') + "\"}";
  ExpectOver(UpsertOne(d), "metadata", 40);
}

TEST_F(LimitsTest, DenseAndColbertDimension) {
  CollectionSchema schema;
  schema.dense_dim = 32;
  EXPECT_TRUE(db_->CreateCollection("at", schema).ok());
  schema.dense_dim = 33;
  ExpectOver(db_->CreateCollection("over", schema).status(), "dense_dim", 32);
  schema.dense_dim = 4;
  schema.colbert = true;
  schema.colbert_dim = 33;
  ExpectOver(db_->CreateCollection("over2", schema).status(), "colbert_dim", 32);
}

TEST_F(LimitsTest, SparseTermsInDocumentsAndQueries) {
  Document d = Doc("s");
  for (int32_t t = 0; t < 5; ++t) {
    d.sparse.indices.push_back(t);
    d.sparse.values.push_back(1.0f);
  }
  EXPECT_TRUE(UpsertOne(d).ok());
  d.sparse.indices.push_back(5);
  d.sparse.values.push_back(1.0f);
  ExpectOver(UpsertOne(d), "sparse", 5);
  Query q;
  q.sparse = d.sparse;
  ExpectOver(c_->Search(q, Within()).status(), "sparse", 5);
}

TEST_F(LimitsTest, ColbertRowsInDocumentsAndQueries) {
  Document d = Doc("c");
  d.colbert.rows = 3;
  d.colbert.data.assign(3 * 2, 0.25f);
  EXPECT_TRUE(UpsertOne(d).ok());
  d.colbert.rows = 4;
  d.colbert.data.assign(4 * 2, 0.25f);
  ExpectOver(UpsertOne(d), "colbert", 3);
  Query q;
  q.colbert = d.colbert;
  ExpectOver(c_->Search(q, Within()).status(), "colbert", 3);
}

TEST_F(LimitsTest, BatchDocumentsAndDeleteIds) {
  std::vector<Document> batch = {Doc("a"), Doc("b"), Doc("c"), Doc("d")};
  EXPECT_TRUE(c_->Upsert(batch).ok());
  batch.push_back(Doc("e"));
  ExpectOver(c_->Upsert(batch), "batch", 4);
  EXPECT_EQ(c_->Count(), 4u);
  std::vector<std::string> ids = {"a", "b", "c", "d", "e"};
  ExpectOver(c_->Delete(ids).status(), "delete", 4);
  EXPECT_EQ(c_->Count(), 4u);
  ids.pop_back();
  auto deleted = c_->Delete(ids);
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(*deleted, 4u);
}

TEST_F(LimitsTest, TopKAndRerankK) {
  ASSERT_TRUE(UpsertOne(Doc("x")).ok());
  SearchOptions o;
  o.top_k = 7;
  o.rerank_k = 9;
  EXPECT_TRUE(c_->Search(DenseQuery(), o).ok());
  o.top_k = 8;
  ExpectOver(c_->Search(DenseQuery(), o).status(), "top_k", 7);
  o.top_k = 7;
  o.rerank_k = 10;
  ExpectOver(c_->Search(DenseQuery(), o).status(), "rerank_k", 9);
  std::vector<Query> queries = {DenseQuery()};
  o.rerank_k = 9;
  o.top_k = 8;
  ExpectOver(c_->SearchBatch(queries, o).status(), "top_k", 7);
}

}  // namespace
}  // namespace m3vdb
