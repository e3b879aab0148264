// What a Database stores survives closing and reopening it: documents (every mode, text,
// metadata) read back by Get and found by Search, replacements and deletes, collection schemas
// and counts, dropped collections.

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "m3vdb/m3vdb.h"
#include "tests/engine/seeded_random.h"
#include "tests/engine/temp_dir.h"

namespace m3vdb {
namespace {

using test::SeededRandom;
using test::TempDir;

constexpr uint32_t kDim = 8;
constexpr uint32_t kColbertDim = 4;

CollectionSchema FullSchema() {
  CollectionSchema schema;
  schema.dense_dim = kDim;
  schema.metric = Metric::kL2;
  schema.sparse = true;
  schema.colbert = true;
  schema.colbert_dim = kColbertDim;
  return schema;
}

CollectionSchema PlainSchema() {
  CollectionSchema schema;
  schema.dense_dim = 3;
  schema.metric = Metric::kInnerProduct;
  return schema;
}

// Document `i`: every third has no sparse weights, every fourth no ColBERT vectors, every
// fifth no text or metadata. ColBERT values are fp16-exact so they read back unchanged.
Document MakeDocument(int i, uint32_t dim = kDim) {
  SeededRandom rng(static_cast<uint64_t>(i) + 1000);
  Document doc;
  doc.id = "doc/" + std::to_string(i) + " é";
  for (uint32_t j = 0; j < dim; ++j) doc.dense.push_back(static_cast<float>(rng.Uniform(-1, 1)));
  if (i % 5 != 0) {
    doc.text = "line one of " + std::to_string(i) + "\nline \"two\" ünïcödé\t\\";
    doc.metadata_json = "{\"i\":" + std::to_string(i) + ",\"tag\":\"t" + std::to_string(i % 3) + "\"}";
  }
  if (i % 3 != 0) {
    for (int32_t token = i % 7; token < 60; token += 5 + i % 4) {
      doc.sparse.indices.push_back(token);
      doc.sparse.values.push_back(static_cast<float>(rng.Uniform(0.1, 2.0)));
    }
  }
  if (i % 4 != 0) {
    doc.colbert.rows = 1 + static_cast<uint32_t>(i % 3);
    for (uint32_t k = 0; k < doc.colbert.rows * kColbertDim; ++k) doc.colbert.data.push_back(rng.Half());
  }
  return doc;
}

void ExpectSameDocument(const Document& got, const Document& want) {
  SCOPED_TRACE("document " + want.id);
  EXPECT_EQ(got.id, want.id);
  EXPECT_EQ(got.text, want.text);
  EXPECT_EQ(got.metadata_json, want.metadata_json);
  EXPECT_EQ(got.dense, want.dense);
  EXPECT_EQ(got.sparse.indices, want.sparse.indices);
  EXPECT_EQ(got.sparse.values, want.sparse.values);
  EXPECT_EQ(got.colbert.rows, want.colbert.rows);
  EXPECT_EQ(got.colbert.data, want.colbert.data);
}

void ExpectSameHits(const std::vector<SearchHit>& got, const std::vector<SearchHit>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    SCOPED_TRACE("rank " + std::to_string(i));
    EXPECT_EQ(got[i].id, want[i].id);
    EXPECT_NEAR(got[i].score, want[i].score, 1e-4 * std::abs(want[i].score) + 1e-5);
    EXPECT_EQ(got[i].metadata_json, want[i].metadata_json);
    EXPECT_EQ(got[i].text, want[i].text);
    EXPECT_EQ(got[i].scores.dense.has_value(), want[i].scores.dense.has_value());
    EXPECT_EQ(got[i].scores.sparse.has_value(), want[i].scores.sparse.has_value());
    EXPECT_EQ(got[i].scores.colbert.has_value(), want[i].scores.colbert.has_value());
  }
}

uint32_t EffectiveColbertDim(const CollectionSchema& schema) {
  return schema.colbert_dim == 0 ? schema.dense_dim : schema.colbert_dim;
}

class PersistenceTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  // Closes the database (if open) and opens it again from the same directory.
  void Reopen() {
    db_.reset();
    auto db = Database::Open(Options{}, path_);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(db).value();
  }

  std::shared_ptr<Collection> Get(const std::string& name) {
    auto collection = db_->GetCollection(name);
    EXPECT_TRUE(collection.ok()) << collection.status().ToString();
    return collection.ok() ? collection.value() : nullptr;
  }

  std::shared_ptr<Collection> Create(const std::string& name, const CollectionSchema& schema) {
    auto collection = db_->CreateCollection(name, schema);
    EXPECT_TRUE(collection.ok()) << collection.status().ToString();
    return collection.ok() ? collection.value() : nullptr;
  }

  static void Upsert(Collection& collection, const std::vector<Document>& docs) {
    const Status status = collection.Upsert(docs);
    ASSERT_TRUE(status.ok()) << status.ToString();
  }

  static void ExpectStored(const Collection& collection, const Document& want) {
    auto got = collection.Get(want.id);
    ASSERT_TRUE(got.ok()) << want.id << ": " << got.status().ToString();
    ExpectSameDocument(got.value(), want);
  }

  static void ExpectAbsent(const Collection& collection, const std::string& id) {
    auto got = collection.Get(id);
    ASSERT_FALSE(got.ok()) << id << " still stored";
    EXPECT_EQ(got.status().code(), StatusCode::kNotFound) << got.status().ToString();
  }

  TempDir dir_;  // declared first: outlives the database
  std::string path_ = dir_.Sub("db");
  std::unique_ptr<Database> db_;
};

// Queries that touch every mode, every fusion and both include flags.
std::vector<std::pair<Query, SearchOptions>> ProbeQueries() {
  std::vector<std::pair<Query, SearchOptions>> probes;
  for (int i = 0; i < 6; ++i) {
    const Document source = MakeDocument(i * 7 + 1);
    Query query;
    if (i % 3 != 2) query.dense = source.dense;
    if (i % 2 == 0) query.sparse = {{3, 8, 13, 21, 40}, {0.5f, 1.0f, 0.25f, 2.0f, 0.75f}};
    if (i >= 3) query.colbert = MakeDocument(i * 7 + 2).colbert;
    SearchOptions options;
    options.top_k = 5 + i;
    options.rerank_k = 3 + 4 * i;
    options.fusion = i % 2 == 0 ? Fusion::kWeighted : Fusion::kRrf;
    options.include_text = i % 2 == 1;
    options.include_metadata = i != 4;
    probes.emplace_back(std::move(query), options);
  }
  return probes;
}

TEST_F(PersistenceTest, DocumentsAndSearchSurviveReopen) {
  std::vector<Document> docs;
  for (int i = 0; i < 120; ++i) docs.push_back(MakeDocument(i));
  {
    auto collection = Create("full", FullSchema());
    ASSERT_NE(collection, nullptr);
    Upsert(*collection, {docs.begin(), docs.begin() + 70});
    Upsert(*collection, {docs.begin() + 70, docs.end()});
  }
  std::vector<std::vector<SearchHit>> before;
  for (const auto& [query, options] : ProbeQueries()) {
    auto hits = Get("full")->Search(query, options);
    ASSERT_TRUE(hits.ok()) << hits.status().ToString();
    ASSERT_FALSE(hits->empty());
    before.push_back(std::move(hits).value());
  }

  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE("reopen " + std::to_string(round + 1));
    Reopen();
    auto collection = Get("full");
    ASSERT_NE(collection, nullptr);
    EXPECT_EQ(collection->Count(), docs.size());
    for (const Document& doc : docs) ExpectStored(*collection, doc);
    const auto probes = ProbeQueries();
    for (size_t p = 0; p < probes.size(); ++p) {
      SCOPED_TRACE("probe " + std::to_string(p));
      auto hits = collection->Search(probes[p].first, probes[p].second);
      ASSERT_TRUE(hits.ok()) << hits.status().ToString();
      ExpectSameHits(hits.value(), before[p]);
    }
    // A document's own dense vector finds it first, at distance 0.
    SearchOptions options;
    options.top_k = 1;
    Query query;
    query.dense = docs[42].dense;
    auto hits = collection->Search(query, options);
    ASSERT_TRUE(hits.ok()) << hits.status().ToString();
    ASSERT_EQ(hits->size(), 1u);
    EXPECT_EQ((*hits)[0].id, docs[42].id);
    EXPECT_NEAR((*hits)[0].score, 0.0f, 1e-5);
  }
}

TEST_F(PersistenceTest, ReplaceRemovesAbsentModesAndSurvivesReopen) {
  Document original = MakeDocument(1);  // has text, metadata, sparse and ColBERT
  ASSERT_FALSE(original.sparse.empty());
  ASSERT_FALSE(original.colbert.empty());
  original.sparse = {{500}, {1.5f}};  // token 500: only this document has it
  Document other = MakeDocument(2);
  auto collection = Create("full", FullSchema());
  ASSERT_NE(collection, nullptr);
  Upsert(*collection, {original, other});

  Document replacement;
  replacement.id = original.id;
  replacement.dense = MakeDocument(3).dense;  // dense only: no text, metadata, sparse, ColBERT
  Upsert(*collection, {replacement});
  EXPECT_EQ(collection->Count(), 2u);

  auto check = [&](const Collection& c) {
    ExpectStored(c, replacement);
    ExpectStored(c, other);
    EXPECT_EQ(c.Count(), 2u);
    // The old sparse weights are gone from the index, the old dense vector too.
    Query sparse_query;
    sparse_query.sparse = {{500}, {1.0f}};
    auto sparse_hits = c.Search(sparse_query, SearchOptions{});
    ASSERT_TRUE(sparse_hits.ok()) << sparse_hits.status().ToString();
    EXPECT_TRUE(sparse_hits->empty());
    Query dense_query;
    dense_query.dense = replacement.dense;
    dense_query.colbert = original.colbert;
    auto hits = c.Search(dense_query, SearchOptions{});
    ASSERT_TRUE(hits.ok()) << hits.status().ToString();
    ASSERT_EQ(hits->size(), 2u);
    const auto replaced =
        std::find_if(hits->begin(), hits->end(), [&](const SearchHit& h) { return h.id == replacement.id; });
    ASSERT_NE(replaced, hits->end());
    ASSERT_TRUE(replaced->scores.dense.has_value());
    EXPECT_NEAR(*replaced->scores.dense, 0.0f, 1e-5);
    EXPECT_FALSE(replaced->scores.colbert.has_value()) << "ColBERT vectors of the old document";
    EXPECT_EQ(replaced->metadata_json, "");
  };
  check(*collection);
  collection.reset();
  Reopen();
  collection = Get("full");
  ASSERT_NE(collection, nullptr);
  check(*collection);
}

TEST_F(PersistenceTest, DeleteSurvivesReopen) {
  std::vector<Document> docs;
  for (int i = 0; i < 30; ++i) docs.push_back(MakeDocument(i));
  auto collection = Create("full", FullSchema());
  ASSERT_NE(collection, nullptr);
  Upsert(*collection, docs);

  const std::vector<std::string> ids = {docs[3].id, "never-written", docs[17].id, docs[29].id};
  auto deleted = collection->Delete(ids);
  ASSERT_TRUE(deleted.ok()) << deleted.status().ToString();
  EXPECT_EQ(deleted.value(), 3u);
  auto again = collection->Delete(ids);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again.value(), 0u);
  EXPECT_EQ(collection->Count(), 27u);

  collection.reset();
  Reopen();
  collection = Get("full");
  ASSERT_NE(collection, nullptr);
  EXPECT_EQ(collection->Count(), 27u);
  for (int i : {3, 17, 29}) ExpectAbsent(*collection, docs[i].id);
  for (int i = 0; i < 30; ++i) {
    if (i != 3 && i != 17 && i != 29) ExpectStored(*collection, docs[i]);
  }
  // Deleted documents are not found by any mode.
  Query query;
  query.dense = docs[17].dense;
  query.sparse = docs[17].sparse;
  SearchOptions options;
  options.top_k = 30;
  options.rerank_k = 30;
  auto hits = collection->Search(query, options);
  ASSERT_TRUE(hits.ok()) << hits.status().ToString();
  EXPECT_EQ(hits->size(), 27u);
  for (const SearchHit& hit : hits.value()) {
    EXPECT_NE(hit.id, docs[3].id);
    EXPECT_NE(hit.id, docs[17].id);
    EXPECT_NE(hit.id, docs[29].id);
  }
  // A deleted id can be written again.
  Upsert(*collection, {docs[17]});
  collection.reset();
  Reopen();
  ExpectStored(*Get("full"), docs[17]);
  EXPECT_EQ(Get("full")->Count(), 28u);
}

TEST_F(PersistenceTest, ListCollectionsRestoresSchemasAndCounts) {
  CollectionSchema same_width = FullSchema();
  same_width.colbert_dim = 0;
  same_width.metric = Metric::kInnerProduct;
  {
    auto full = Create("full", FullSchema());
    auto plain = Create("plain", PlainSchema());
    auto wide = Create("same-width", same_width);
    ASSERT_NE(full, nullptr);
    ASSERT_NE(plain, nullptr);
    ASSERT_NE(wide, nullptr);
    std::vector<Document> docs;
    for (int i = 0; i < 11; ++i) docs.push_back(MakeDocument(i));
    Upsert(*full, docs);
    std::vector<Document> small;
    for (int i = 0; i < 4; ++i) {
      Document doc;
      doc.id = "p" + std::to_string(i);
      doc.dense = {1.0f * i, 2.0f, -3.0f};
      small.push_back(doc);
    }
    Upsert(*plain, small);
  }
  Reopen();
  std::vector<CollectionInfo> infos = db_->ListCollections();
  std::sort(infos.begin(), infos.end(),
            [](const CollectionInfo& a, const CollectionInfo& b) { return a.name < b.name; });
  ASSERT_EQ(infos.size(), 3u);
  struct Expected {
    std::string name;
    CollectionSchema schema;
    uint64_t count;
  };
  const std::vector<Expected> expected = {
      {"full", FullSchema(), 11}, {"plain", PlainSchema(), 4}, {"same-width", same_width, 0}};
  for (size_t i = 0; i < expected.size(); ++i) {
    SCOPED_TRACE(expected[i].name);
    EXPECT_EQ(infos[i].name, expected[i].name);
    EXPECT_EQ(infos[i].count, expected[i].count);
    const CollectionSchema& got = infos[i].schema;
    const CollectionSchema& want = expected[i].schema;
    EXPECT_EQ(got.dense_dim, want.dense_dim);
    EXPECT_EQ(got.metric, want.metric);
    EXPECT_EQ(got.sparse, want.sparse);
    EXPECT_EQ(got.colbert, want.colbert);
    if (want.colbert) {
      EXPECT_EQ(EffectiveColbertDim(got), EffectiveColbertDim(want));
    }
    auto collection = Get(expected[i].name);
    ASSERT_NE(collection, nullptr);
    EXPECT_EQ(collection->name(), expected[i].name);
    EXPECT_EQ(collection->schema().dense_dim, want.dense_dim);
    EXPECT_EQ(collection->schema().metric, want.metric);
    EXPECT_EQ(collection->Count(), expected[i].count);
  }
  // The restored ColBERT width is enforced: width 8 (as dense) is right for "same-width".
  Document doc = MakeDocument(5);
  doc.colbert.rows = 1;
  doc.colbert.data.assign(kDim, 0.5f);
  EXPECT_TRUE(Get("same-width")->Upsert({&doc, 1}).ok());
}

TEST_F(PersistenceTest, DropCollectionSurvivesReopen) {
  std::vector<Document> docs;
  for (int i = 0; i < 10; ++i) docs.push_back(MakeDocument(i));
  {
    auto keep = Create("keep", FullSchema());
    auto drop = Create("drop", FullSchema());
    ASSERT_NE(keep, nullptr);
    ASSERT_NE(drop, nullptr);
    Upsert(*keep, docs);
    Upsert(*drop, docs);
  }
  const Status dropped = db_->DropCollection("drop");
  ASSERT_TRUE(dropped.ok()) << dropped.ToString();
  EXPECT_EQ(db_->GetCollection("drop").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(db_->DropCollection("drop").code(), StatusCode::kNotFound);

  Reopen();
  EXPECT_EQ(db_->GetCollection("drop").status().code(), StatusCode::kNotFound);
  const std::vector<CollectionInfo> infos = db_->ListCollections();
  ASSERT_EQ(infos.size(), 1u);
  EXPECT_EQ(infos[0].name, "keep");
  EXPECT_EQ(infos[0].count, docs.size());
  for (const Document& doc : docs) ExpectStored(*Get("keep"), doc);

  // The name can be reused, with another schema, and nothing of the old collection comes back.
  auto reborn = Create("drop", PlainSchema());
  ASSERT_NE(reborn, nullptr);
  EXPECT_EQ(reborn->Count(), 0u);
  EXPECT_EQ(reborn->Get(docs[0].id).status().code(), StatusCode::kNotFound);
  reborn.reset();
  Reopen();
  reborn = Get("drop");
  ASSERT_NE(reborn, nullptr);
  EXPECT_EQ(reborn->Count(), 0u);
  EXPECT_EQ(reborn->schema().dense_dim, PlainSchema().dense_dim);
  EXPECT_EQ(reborn->Get(docs[0].id).status().code(), StatusCode::kNotFound);
  Query query;
  query.dense = {1.0f, 0.0f, 0.0f};
  auto hits = reborn->Search(query, SearchOptions{});
  ASSERT_TRUE(hits.ok()) << hits.status().ToString();
  EXPECT_TRUE(hits->empty());
}

TEST_F(PersistenceTest, CountTracksUpsertsReplacesAndDeletes) {
  auto collection = Create("full", FullSchema());
  ASSERT_NE(collection, nullptr);
  EXPECT_EQ(collection->Count(), 0u);
  std::vector<Document> docs;
  for (int i = 0; i < 20; ++i) docs.push_back(MakeDocument(i));
  Upsert(*collection, {docs.begin(), docs.begin() + 15});
  EXPECT_EQ(collection->Count(), 15u);
  Upsert(*collection, {docs.begin() + 10, docs.end()});  // 5 replaced, 5 new
  EXPECT_EQ(collection->Count(), 20u);
  const std::vector<std::string> ids = {docs[0].id, docs[1].id};
  ASSERT_TRUE(collection->Delete(ids).ok());
  EXPECT_EQ(collection->Count(), 18u);
  collection.reset();
  Reopen();
  EXPECT_EQ(Get("full")->Count(), 18u);
  EXPECT_EQ(db_->ListCollections().at(0).count, 18u);
}

TEST_F(PersistenceTest, OpenWithoutCreateIfMissingFailsOnMissingDirectory) {
  Options options;
  options.create_if_missing = false;
  auto db = Database::Open(options, dir_.Sub("missing"));
  EXPECT_FALSE(db.ok());
}

}  // namespace
}  // namespace m3vdb
