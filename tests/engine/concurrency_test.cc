// Searches and reads running concurrently with a writer. Every document carries metadata
// {"gen":g,"id":"..."} from which its vectors are derived, so a reader can check that what it
// got is consistent: each hit's scores match the vectors its metadata names, each hit was
// written at some point, and a search never sees part of a batch (every batch rewrites a whole
// group of ids with one generation, so hits from one group share one generation). Get checks
// read-your-acknowledged-writes. Runs for a few seconds; also meant for ASan+UBSan builds.

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "m3vdb/m3vdb.h"
#include "tests/engine/seeded_random.h"
#include "tests/engine/temp_dir.h"

namespace m3vdb {
namespace {

using test::SeededRandom;
using test::TempDir;

constexpr uint32_t kDim = 16;
constexpr int kGroups = 10;  // "a" ids: group g holds a<g*10> .. a<g*10+9>
constexpr int kGroupSize = 10;
constexpr int kLoose = 60;  // "b" ids: upserted and deleted one by one
constexpr auto kRunFor = std::chrono::seconds(4);

// The vectors of id `id` at generation `gen`.
std::vector<float> DenseOf(const std::string& id, int64_t gen) {
  SeededRandom rng(std::hash<std::string>{}(id)*31 + static_cast<uint64_t>(gen));
  std::vector<float> dense;
  for (uint32_t j = 0; j < kDim; ++j) dense.push_back(static_cast<float>(rng.Uniform(-1, 1)));
  return dense;
}

SparseVector SparseOf(const std::string& id, int64_t gen) {
  SeededRandom rng(std::hash<std::string>{}(id)*17 + static_cast<uint64_t>(gen));
  SparseVector sparse;
  for (int32_t token = static_cast<int32_t>(rng.Below(4)); token < 40;
       token += 1 + static_cast<int32_t>(rng.Below(6))) {
    sparse.indices.push_back(token);
    sparse.values.push_back(static_cast<float>(rng.Uniform(0.1, 1.0)));
  }
  return sparse;
}

Document MakeDoc(const std::string& id, int64_t gen) {
  Document doc;
  doc.id = id;
  doc.metadata_json = "{\"gen\":" + std::to_string(gen) + ",\"id\":\"" + id + "\"}";
  doc.dense = DenseOf(id, gen);
  doc.sparse = SparseOf(id, gen);
  return doc;
}

// Reads back {"gen":g,"id":"..."}; false when the text has another shape.
bool ParseMetadata(const std::string& json, int64_t* gen, std::string* id) {
  long long g = 0;
  char buf[64] = {};
  if (std::sscanf(json.c_str(), "{\"gen\":%lld,\"id\":\"%63[^\"]\"}", &g, buf) != 2) return false;
  *gen = g;
  *id = buf;
  return true;
}

std::string GroupId(int group, int k) { return "a" + std::to_string(group * kGroupSize + k); }
std::string LooseId(int k) { return "b" + std::to_string(k); }

double Dot(const std::vector<float>& a, const std::vector<float>& b) {
  double sum = 0;
  for (size_t j = 0; j < a.size(); ++j) sum += static_cast<double>(a[j]) * b[j];
  return sum;
}

double SparseDot(const SparseVector& q, const SparseVector& d) {
  double sum = 0;
  for (size_t i = 0; i < q.indices.size(); ++i) {
    for (size_t j = 0; j < d.indices.size(); ++j) {
      if (q.indices[i] == d.indices[j]) sum += static_cast<double>(q.values[i]) * d.values[j];
    }
  }
  return sum;
}

bool Near(double got, double want) { return std::abs(got - want) <= 1e-4 * std::abs(want) + 1e-4; }

class ConcurrencyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Options options;
    options.sync = false;  // durability is not under test here; more batches per second
    auto db = Database::Open(options, dir_.Sub("db"));
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(db).value();
    CollectionSchema schema;
    schema.dense_dim = kDim;
    schema.sparse = true;
    auto collection = db_->CreateCollection("live", schema);
    ASSERT_TRUE(collection.ok()) << collection.status().ToString();
    collection_ = collection.value();
    for (int group = 0; group < kGroups; ++group) ASSERT_TRUE(WriteGroup(group).ok());
  }

  // Rewrites every id of `group` with a fresh generation, in one batch.
  Status WriteGroup(int group) {
    const int64_t gen = next_gen_++;
    std::vector<Document> batch;
    for (int k = 0; k < kGroupSize; ++k) batch.push_back(MakeDoc(GroupId(group, k), gen));
    Status status = collection_->Upsert(batch);
    if (status.ok()) {
      for (int k = 0; k < kGroupSize; ++k) acked_gen_[group * kGroupSize + k].store(gen);
    }
    return status;
  }

  // Checks one search result against the vectors its hits' metadata name.
  void CheckHits(const Query& query, const std::vector<SearchHit>& hits, const SearchOptions& options) {
    ASSERT_LE(hits.size(), static_cast<size_t>(options.top_k));
    std::map<int, int64_t> group_gen;
    std::map<std::string, int> seen;
    for (size_t i = 0; i < hits.size(); ++i) {
      const SearchHit& hit = hits[i];
      ASSERT_EQ(++seen[hit.id], 1) << "id returned twice: " << hit.id;
      if (i > 0) {
        ASSERT_GE(hits[i - 1].score, hit.score);
      }
      int64_t gen = 0;
      std::string id;
      ASSERT_TRUE(ParseMetadata(hit.metadata_json, &gen, &id)) << hit.id << ": " << hit.metadata_json;
      ASSERT_EQ(id, hit.id) << "metadata of another document";
      ASSERT_TRUE(id[0] == 'a' || id[0] == 'b') << id;
      ASSERT_LT(gen, next_gen_.load()) << "a generation never written";
      ASSERT_TRUE(hit.scores.dense.has_value());
      ASSERT_TRUE(hit.scores.sparse.has_value());
      const double dense = Dot(query.dense, DenseOf(id, gen));
      const double sparse = SparseDot(query.sparse, SparseOf(id, gen));
      ASSERT_TRUE(Near(*hit.scores.dense, dense))
          << id << " gen " << gen << ": dense " << *hit.scores.dense << " vs " << dense;
      ASSERT_TRUE(Near(*hit.scores.sparse, sparse))
          << id << " gen " << gen << ": sparse " << *hit.scores.sparse << " vs " << sparse;
      ASSERT_TRUE(Near(hit.score, dense + 0.3 * sparse)) << id << ": fused " << hit.score;
      if (id[0] == 'a') {
        const int group = std::stoi(id.substr(1)) / kGroupSize;
        auto [it, inserted] = group_gen.emplace(group, gen);
        ASSERT_EQ(it->second, gen) << "group " << group << " seen at two generations in one "
                                   << "search: part of a batch was visible";
      }
    }
  }

  void SearchLoop(int seed, const std::atomic<bool>& stop, std::atomic<int64_t>* searches) {
    SeededRandom rng(static_cast<uint64_t>(seed));
    SearchOptions options;
    options.top_k = 40;
    options.rerank_k = 40;
    while (!stop.load() && !::testing::Test::HasFatalFailure()) {
      std::vector<Query> queries(1 + rng.Below(4));
      for (Query& query : queries) {
        query.dense = DenseOf("query", static_cast<int64_t>(rng.Next() % 100000));
        query.sparse = SparseOf("query", static_cast<int64_t>(rng.Next() % 100000));
      }
      if (queries.size() == 1) {
        auto hits = collection_->Search(queries[0], options);
        ASSERT_TRUE(hits.ok()) << hits.status().ToString();
        CheckHits(queries[0], hits.value(), options);
      } else {
        auto results = collection_->SearchBatch(queries, options);
        ASSERT_TRUE(results.ok()) << results.status().ToString();
        ASSERT_EQ(results->size(), queries.size());
        for (size_t q = 0; q < queries.size(); ++q) CheckHits(queries[q], (*results)[q], options);
      }
      ++*searches;
    }
  }

  TempDir dir_;  // declared first: outlives the database
  std::unique_ptr<Database> db_;
  std::shared_ptr<Collection> collection_;
  std::atomic<int64_t> next_gen_{1};
  std::array<std::atomic<int64_t>, kGroups * kGroupSize> acked_gen_{};
};

TEST_F(ConcurrencyTest, SearchesAndReadsStayConsistentDuringWrites) {
  std::atomic<bool> stop{false};
  std::atomic<int64_t> searches{0}, reads{0}, batches{0};

  std::thread writer([&] {
    SeededRandom rng(7);
    while (!stop.load()) {
      if (rng.Below(2) == 0) {
        const Status status = WriteGroup(static_cast<int>(rng.Below(kGroups)));
        ASSERT_TRUE(status.ok()) << status.ToString();
      } else {
        // Loose ids: upsert a few, delete a few, each its own batch.
        std::vector<Document> batch;
        const size_t n = 1 + rng.Below(8);
        std::map<std::string, bool> used;
        for (size_t i = 0; i < n; ++i) {
          const std::string id = LooseId(static_cast<int>(rng.Below(kLoose)));
          if (used.emplace(id, true).second) batch.push_back(MakeDoc(id, next_gen_++));
        }
        const Status status = collection_->Upsert(batch);
        ASSERT_TRUE(status.ok()) << status.ToString();
        std::vector<std::string> ids;
        for (size_t i = 0; i < 1 + rng.Below(4); ++i) ids.push_back(LooseId(static_cast<int>(rng.Below(kLoose))));
        auto deleted = collection_->Delete(ids);
        ASSERT_TRUE(deleted.ok()) << deleted.status().ToString();
      }
      ++batches;
    }
  });

  std::vector<std::thread> searchers;
  for (int t = 0; t < 3; ++t) {
    searchers.emplace_back([&, t] { SearchLoop(100 + t, stop, &searches); });
  }

  std::thread reader([&] {
    SeededRandom rng(11);
    while (!stop.load()) {
      const uint64_t count = collection_->Count();
      ASSERT_GE(count, static_cast<uint64_t>(kGroups * kGroupSize));
      ASSERT_LE(count, static_cast<uint64_t>(kGroups * kGroupSize + kLoose));
      // Group ids are never deleted: Get sees at least the generation acknowledged before it.
      const int slot = static_cast<int>(rng.Below(kGroups * kGroupSize));
      const int64_t acked = acked_gen_[slot].load();
      const std::string id = GroupId(slot / kGroupSize, slot % kGroupSize);
      auto doc = collection_->Get(id);
      ASSERT_TRUE(doc.ok()) << id << ": " << doc.status().ToString();
      int64_t gen = 0;
      std::string meta_id;
      ASSERT_TRUE(ParseMetadata(doc->metadata_json, &gen, &meta_id)) << doc->metadata_json;
      ASSERT_EQ(meta_id, id);
      ASSERT_GE(gen, acked) << id << ": an acknowledged write is not visible";
      ASSERT_EQ(doc->dense, DenseOf(id, gen)) << id << " gen " << gen;
      ASSERT_EQ(doc->sparse.indices, SparseOf(id, gen).indices) << id << " gen " << gen;
      // Loose ids come and go; when present they are intact.
      const std::string loose = LooseId(static_cast<int>(rng.Below(kLoose)));
      auto maybe = collection_->Get(loose);
      if (maybe.ok()) {
        ASSERT_TRUE(ParseMetadata(maybe->metadata_json, &gen, &meta_id)) << maybe->metadata_json;
        ASSERT_EQ(meta_id, loose);
        ASSERT_EQ(maybe->dense, DenseOf(loose, gen)) << loose << " gen " << gen;
      } else {
        ASSERT_EQ(maybe.status().code(), StatusCode::kNotFound) << maybe.status().ToString();
      }
      ++reads;
    }
  });

  const auto deadline = std::chrono::steady_clock::now() + kRunFor;
  while (std::chrono::steady_clock::now() < deadline && !HasFatalFailure()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  stop = true;
  writer.join();
  for (std::thread& t : searchers) t.join();
  reader.join();

  EXPECT_GT(batches.load(), 10) << "the writer barely ran";
  EXPECT_GT(searches.load(), 10) << "the searchers barely ran";
  EXPECT_GT(reads.load(), 10) << "the reader barely ran";
  std::printf("[ threads  ] %lld batches, %lld searches, %lld read rounds\n", static_cast<long long>(batches.load()),
              static_cast<long long>(searches.load()), static_cast<long long>(reads.load()));

  // Quiescent: every group at its last acknowledged generation.
  for (int slot = 0; slot < kGroups * kGroupSize; ++slot) {
    const std::string id = GroupId(slot / kGroupSize, slot % kGroupSize);
    auto doc = collection_->Get(id);
    ASSERT_TRUE(doc.ok()) << doc.status().ToString();
    EXPECT_EQ(doc->metadata_json, MakeDoc(id, acked_gen_[slot].load()).metadata_json);
  }
}

}  // namespace
}  // namespace m3vdb
