// Bad input is refused with the right StatusCode and a message that names the problem, and it
// changes nothing: a rejected batch writes none of its documents (not even the valid ones), the
// count and the stored documents stay as they were.

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <initializer_list>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "m3vdb/m3vdb.h"
#include "tests/engine/temp_dir.h"

namespace m3vdb {
namespace {

using test::TempDir;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr size_t kMaxIdBytes = 24;

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// The status has `code` and its message mentions at least one of `words` (case-insensitive).
::testing::AssertionResult IsError(const Status& status, StatusCode code, std::initializer_list<const char*> words) {
  if (status.code() != code) {
    return ::testing::AssertionFailure() << "expected code " << StatusCodeName(code) << ", got " << status.ToString();
  }
  const std::string message = Lower(status.message());
  for (const char* word : words) {
    if (message.find(Lower(word)) != std::string::npos) return ::testing::AssertionSuccess();
  }
  std::string list;
  for (const char* word : words) list += std::string(list.empty() ? "" : ", ") + word;
  return ::testing::AssertionFailure() << "message \"" << status.message() << "\" names none of: " << list;
}

Document ValidDoc(const std::string& id) {
  Document doc;
  doc.id = id;
  doc.text = "text of " + id;
  doc.metadata_json = "{\"id\":\"" + id + "\"}";
  doc.dense = {0.25f, -0.5f, 1.0f, 2.0f};
  doc.sparse = {{1, 5, 9}, {0.5f, 0.25f, 1.0f}};
  doc.colbert.rows = 2;
  doc.colbert.data = {0.5f, -0.25f, 1.0f, 0.0f, 0.75f, -1.0f};
  return doc;
}

class BadInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Options options;
    options.limits.max_id_bytes = kMaxIdBytes;
    auto db = Database::Open(options, dir_.Sub("db"));
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(db).value();
    CollectionSchema schema;
    schema.dense_dim = 4;
    schema.sparse = true;
    schema.colbert = true;
    schema.colbert_dim = 3;
    auto full = db_->CreateCollection("full", schema);
    ASSERT_TRUE(full.ok()) << full.status().ToString();
    full_ = full.value();
    CollectionSchema dense_only;
    dense_only.dense_dim = 4;
    auto plain = db_->CreateCollection("plain", dense_only);
    ASSERT_TRUE(plain.ok()) << plain.status().ToString();
    plain_ = plain.value();

    existing_ = ValidDoc("existing");
    ASSERT_TRUE(full_->Upsert({&existing_, 1}).ok());
    Document plain_doc = existing_;
    plain_doc.sparse = {};
    plain_doc.colbert = {};
    ASSERT_TRUE(plain_->Upsert({&plain_doc, 1}).ok());
  }

  // Upserts [a valid new document, `bad`] and expects the batch to be refused with `code` and a
  // message naming one of `words`, leaving the collection as it was.
  void ExpectRejected(Collection& collection, const Document& bad, StatusCode code,
                      std::initializer_list<const char*> words) {
    const uint64_t count = collection.Count();
    auto before = collection.Get("existing");
    ASSERT_TRUE(before.ok()) << before.status().ToString();
    std::vector<Document> batch = {ValidDoc("fresh"), bad};
    if (&collection == plain_.get()) {
      batch[0].sparse = {};
      batch[0].colbert = {};
    }
    EXPECT_TRUE(IsError(collection.Upsert(batch), code, words));
    // The order inside the batch does not matter.
    std::swap(batch[0], batch[1]);
    EXPECT_TRUE(IsError(collection.Upsert(batch), code, words));

    EXPECT_EQ(collection.Count(), count);
    EXPECT_EQ(collection.Get("fresh").status().code(), StatusCode::kNotFound)
        << "a valid document of a rejected batch was written";
    auto after = collection.Get("existing");
    ASSERT_TRUE(after.ok()) << after.status().ToString();
    EXPECT_EQ(after->dense, before->dense);
    EXPECT_EQ(after->text, before->text);
    EXPECT_EQ(after->metadata_json, before->metadata_json);
    EXPECT_EQ(after->sparse.indices, before->sparse.indices);
    EXPECT_EQ(after->colbert.data, before->colbert.data);
  }

  void ExpectRejected(const Document& bad, StatusCode code, std::initializer_list<const char*> words) {
    ExpectRejected(*full_, bad, code, words);
  }

  static Document Bad(const std::string& id = "bad-doc") { return ValidDoc(id); }

  TempDir dir_;  // declared first: outlives the database
  std::unique_ptr<Database> db_;
  std::shared_ptr<Collection> full_;
  std::shared_ptr<Collection> plain_;
  Document existing_;
};

// ---- documents -----------------------------------------------------------------------------

TEST_F(BadInputTest, WrongDenseDimension) {
  Document doc = Bad();
  doc.dense.push_back(1.0f);
  ExpectRejected(doc, StatusCode::kInvalidArgument, {"dim", "dense"});
  doc.dense.resize(3);
  ExpectRejected(doc, StatusCode::kInvalidArgument, {"dim", "dense"});
  doc.dense.clear();
  ExpectRejected(doc, StatusCode::kInvalidArgument, {"dim", "dense"});
}

TEST_F(BadInputTest, NonFiniteDense) {
  for (float value : {kNaN, kInf, -kInf}) {
    Document doc = Bad();
    doc.dense[2] = value;
    ExpectRejected(doc, StatusCode::kInvalidArgument, {"finite", "nan", "inf"});
  }
}

TEST_F(BadInputTest, NonFiniteSparseValues) {
  for (float value : {kNaN, kInf, -kInf}) {
    Document doc = Bad();
    doc.sparse.values[1] = value;
    ExpectRejected(doc, StatusCode::kInvalidArgument, {"finite", "nan", "inf"});
  }
}

TEST_F(BadInputTest, NonFiniteColbert) {
  for (float value : {kNaN, kInf, -kInf}) {
    Document doc = Bad();
    doc.colbert.data[4] = value;
    ExpectRejected(doc, StatusCode::kInvalidArgument, {"finite", "nan", "inf"});
  }
}

TEST_F(BadInputTest, EmptyId) { ExpectRejected(Bad(""), StatusCode::kInvalidArgument, {"id"}); }

TEST_F(BadInputTest, OverlongId) {
  // Exactly the limit is fine; one byte more exceeds it.
  Document at_limit = Bad(std::string(kMaxIdBytes, 'x'));
  EXPECT_TRUE(full_->Upsert({&at_limit, 1}).ok());
  ASSERT_TRUE(full_->Get(at_limit.id).ok());
  ASSERT_TRUE(full_->Delete(std::vector<std::string>{at_limit.id}).ok());
  ExpectRejected(Bad(std::string(kMaxIdBytes + 1, 'x')), StatusCode::kResourceExhausted, {"id"});
}

TEST_F(BadInputTest, DuplicateIdsInOneBatch) {
  std::vector<Document> batch = {ValidDoc("fresh"), ValidDoc("twice"), ValidDoc("twice")};
  EXPECT_TRUE(IsError(full_->Upsert(batch), StatusCode::kInvalidArgument, {"duplicate", "twice"}));
  EXPECT_EQ(full_->Count(), 1u);
  EXPECT_EQ(full_->Get("fresh").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(full_->Get("twice").status().code(), StatusCode::kNotFound);
  // Also when the duplicate is an id that already exists.
  batch = {ValidDoc("existing"), ValidDoc("fresh"), ValidDoc("existing")};
  batch[0].text = "changed";
  EXPECT_TRUE(IsError(full_->Upsert(batch), StatusCode::kInvalidArgument, {"duplicate", "existing"}));
  EXPECT_EQ(full_->Get("existing")->text, existing_.text);
}

TEST_F(BadInputTest, SparseIndicesUnsorted) {
  Document doc = Bad();
  doc.sparse.indices = {5, 1, 9};
  ExpectRejected(doc, StatusCode::kInvalidArgument, {"sparse", "indices", "increasing", "sorted"});
}

TEST_F(BadInputTest, SparseIndicesDuplicated) {
  Document doc = Bad();
  doc.sparse.indices = {1, 5, 5};
  ExpectRejected(doc, StatusCode::kInvalidArgument, {"sparse", "indices", "increasing", "duplicate"});
}

TEST_F(BadInputTest, SparseIndicesNegative) {
  Document doc = Bad();
  doc.sparse.indices = {-3, 5, 9};
  ExpectRejected(doc, StatusCode::kInvalidArgument, {"sparse", "indices", "negative"});
}

TEST_F(BadInputTest, SparseLengthMismatch) {
  Document doc = Bad();
  doc.sparse.values.pop_back();
  ExpectRejected(doc, StatusCode::kInvalidArgument, {"sparse", "length", "size", "values"});
  doc = Bad();
  doc.sparse.values.push_back(1.0f);
  ExpectRejected(doc, StatusCode::kInvalidArgument, {"sparse", "length", "size", "values"});
}

TEST_F(BadInputTest, SparseForCollectionWithoutSparse) {
  Document doc = Bad();
  doc.colbert = {};
  ExpectRejected(*plain_, doc, StatusCode::kInvalidArgument, {"sparse"});
}

TEST_F(BadInputTest, ColbertForCollectionWithoutColbert) {
  Document doc = Bad();
  doc.sparse = {};
  ExpectRejected(*plain_, doc, StatusCode::kInvalidArgument, {"colbert"});
}

TEST_F(BadInputTest, ColbertSizeNotRowsTimesWidth) {
  Document doc = Bad();
  doc.colbert.data.pop_back();  // 5 values for 2 rows of width 3
  ExpectRejected(doc, StatusCode::kInvalidArgument, {"colbert"});
  doc = Bad();
  doc.colbert.rows = 3;  // 6 values for 3 rows of width 3
  ExpectRejected(doc, StatusCode::kInvalidArgument, {"colbert"});
  doc = Bad();
  doc.colbert.data = {1, 2, 3, 4, 5, 6, 7, 8};  // 2 rows of the dense width (4)
  ExpectRejected(doc, StatusCode::kInvalidArgument, {"colbert"});
  doc = Bad();
  doc.colbert.rows = 0;  // data without rows
  ExpectRejected(doc, StatusCode::kInvalidArgument, {"colbert"});
}

TEST_F(BadInputTest, MetadataNotAJsonObject) {
  for (const char* json : {"[1, 2]", "42", "\"text\"", "null", "true"}) {
    SCOPED_TRACE(json);
    Document doc = Bad();
    doc.metadata_json = json;
    ExpectRejected(doc, StatusCode::kInvalidArgument, {"metadata", "json", "object"});
  }
}

TEST_F(BadInputTest, MetadataInvalidJson) {
  for (const char* json : {"{bad", "{\"a\":}", "{\"a\":1} trailing", "{'a':1}"}) {
    SCOPED_TRACE(json);
    Document doc = Bad();
    doc.metadata_json = json;
    ExpectRejected(doc, StatusCode::kInvalidArgument, {"metadata", "json"});
  }
}

// ---- collections ---------------------------------------------------------------------------

TEST_F(BadInputTest, UnknownCollectionIsNotFound) {
  EXPECT_TRUE(IsError(db_->GetCollection("nope").status(), StatusCode::kNotFound, {"nope"}));
  EXPECT_TRUE(IsError(db_->DropCollection("nope"), StatusCode::kNotFound, {"nope"}));
}

TEST_F(BadInputTest, CreateExistingCollectionIsAlreadyExists) {
  CollectionSchema schema;
  schema.dense_dim = 4;
  EXPECT_TRUE(IsError(db_->CreateCollection("full", schema).status(), StatusCode::kAlreadyExists, {"full"}));
  schema.dense_dim = 99;  // a different schema does not matter
  EXPECT_TRUE(IsError(db_->CreateCollection("plain", schema).status(), StatusCode::kAlreadyExists, {"plain"}));
  EXPECT_EQ(full_->Count(), 1u);
  EXPECT_EQ(db_->ListCollections().size(), 2u);
}

TEST_F(BadInputTest, InvalidCollectionNames) {
  CollectionSchema schema;
  schema.dense_dim = 4;
  for (const std::string name : {"", "a/b"}) {
    SCOPED_TRACE("name '" + name + "'");
    EXPECT_TRUE(IsError(db_->CreateCollection(name, schema).status(), StatusCode::kInvalidArgument, {"name"}));
  }
  EXPECT_EQ(db_->ListCollections().size(), 2u);
}

TEST_F(BadInputTest, InvalidSchema) {
  CollectionSchema schema;
  schema.dense_dim = 0;
  EXPECT_TRUE(IsError(db_->CreateCollection("zero", schema).status(), StatusCode::kInvalidArgument, {"dim"}));
  EXPECT_EQ(db_->GetCollection("zero").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(db_->ListCollections().size(), 2u);
}

// ---- queries -------------------------------------------------------------------------------

Query ValidQuery() {
  Query query;
  query.dense = {1.0f, 0.0f, 0.5f, -0.5f};
  return query;
}

TEST_F(BadInputTest, NonPositiveTopKOrRerankK) {
  for (int value : {0, -1}) {
    SearchOptions options;
    options.top_k = value;
    EXPECT_TRUE(IsError(full_->Search(ValidQuery(), options).status(), StatusCode::kInvalidArgument,
                        {"top_k", "top-k", "topk"}));
    options = SearchOptions{};
    options.rerank_k = value;
    EXPECT_TRUE(IsError(full_->Search(ValidQuery(), options).status(), StatusCode::kInvalidArgument,
                        {"rerank_k", "rerank-k", "rerankk", "rerank"}));
  }
}

TEST_F(BadInputTest, TopKAboveLimitIsResourceExhausted) {
  SearchOptions options;
  options.top_k = Limits{}.max_top_k + 1;
  EXPECT_TRUE(IsError(full_->Search(ValidQuery(), options).status(), StatusCode::kResourceExhausted,
                      {"top_k", "top-k", "topk"}));
}

TEST_F(BadInputTest, QueryWithWrongDimension) {
  Query query = ValidQuery();
  query.dense.push_back(1.0f);
  EXPECT_TRUE(IsError(full_->Search(query, SearchOptions{}).status(), StatusCode::kInvalidArgument, {"dim", "dense"}));
  query = Query{};
  query.colbert.rows = 1;
  query.colbert.data = {1.0f, 0.0f, 0.5f, 0.25f};  // width 4, collection's ColBERT width is 3
  EXPECT_TRUE(IsError(full_->Search(query, SearchOptions{}).status(), StatusCode::kInvalidArgument, {"colbert"}));
}

TEST_F(BadInputTest, QueryWithNonFiniteValues) {
  Query query = ValidQuery();
  query.dense[1] = kNaN;
  EXPECT_TRUE(
      IsError(full_->Search(query, SearchOptions{}).status(), StatusCode::kInvalidArgument, {"finite", "nan", "inf"}));
}

TEST_F(BadInputTest, EmptyQuery) {
  EXPECT_TRUE(IsError(full_->Search(Query{}, SearchOptions{}).status(), StatusCode::kInvalidArgument,
                      {"query", "mode", "empty"}));
}

TEST_F(BadInputTest, SearchBatchWithOneBadQuery) {
  std::vector<Query> queries = {ValidQuery(), ValidQuery()};
  queries[1].dense.pop_back();
  EXPECT_EQ(full_->SearchBatch(queries, SearchOptions{}).status().code(), StatusCode::kInvalidArgument);
  queries[1] = Query{};
  EXPECT_EQ(full_->SearchBatch(queries, SearchOptions{}).status().code(), StatusCode::kInvalidArgument);
}

// ---- dropped collections -------------------------------------------------------------------

TEST_F(BadInputTest, DroppedCollectionHandleFailsWithFailedPrecondition) {
  std::shared_ptr<Collection> handle = full_;
  ASSERT_TRUE(db_->DropCollection("full").ok());
  const Document doc = ValidDoc("after-drop");
  EXPECT_EQ(handle->Upsert({&doc, 1}).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(handle->Get("existing").status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(handle->Delete(std::vector<std::string>{"existing"}).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(handle->Search(ValidQuery(), SearchOptions{}).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(handle->SearchBatch(std::vector<Query>{ValidQuery()}, SearchOptions{}).status().code(),
            StatusCode::kFailedPrecondition);

  // A new collection under the same name is a different collection: the old handle stays dead.
  CollectionSchema schema;
  schema.dense_dim = 4;
  auto reborn = db_->CreateCollection("full", schema);
  ASSERT_TRUE(reborn.ok()) << reborn.status().ToString();
  EXPECT_EQ((*reborn)->Count(), 0u);
  EXPECT_EQ(handle->Get("existing").status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(handle->Upsert({&doc, 1}).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ((*reborn)->Count(), 0u);
  Document plain_doc = doc;
  plain_doc.sparse = {};
  plain_doc.colbert = {};
  EXPECT_TRUE((*reborn)->Upsert({&plain_doc, 1}).ok());
  EXPECT_EQ((*reborn)->Count(), 1u);
}

}  // namespace
}  // namespace m3vdb
