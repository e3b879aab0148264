// Coalesced searches answer exactly what Collection::Search answers, each caller its own
// result or its own error, also when many threads search at once through one runner.
#include "net/detail/search_batcher.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <random>
#include <thread>

#include "tests/engine/temp_dir.h"

namespace m3vdb::net::detail {
namespace {

constexpr uint32_t kDim = 16;

std::vector<float> RandomVector(std::mt19937& rng) {
  std::normal_distribution<float> normal;
  std::vector<float> v(kDim);
  for (float& x : v) x = normal(rng);
  return v;
}

TEST(SearchBatcher, ConcurrentSearchesMatchDirectSearch) {
  test::TempDir dir;
  Options options;
  options.sync = false;
  auto db = Database::Open(options, dir.Sub("db"));
  ASSERT_TRUE(db.ok());
  CollectionSchema schema;
  schema.dense_dim = kDim;
  auto collection = (*db)->CreateCollection("c", schema);
  ASSERT_TRUE(collection.ok());
  std::mt19937 rng(7);
  std::vector<Document> docs(2000);
  for (size_t i = 0; i < docs.size(); ++i) {
    docs[i].id = std::to_string(i);
    docs[i].dense = RandomVector(rng);
  }
  ASSERT_TRUE((*collection)->Upsert(docs).ok());

  constexpr int kThreads = 12, kQueriesPerThread = 40;
  std::vector<std::vector<Query>> queries(kThreads, std::vector<Query>(kQueriesPerThread));
  for (auto& per_thread : queries)
    for (size_t q = 0; q < per_thread.size(); ++q)
      per_thread[q].dense = q % 10 == 9 ? std::vector<float>(kDim - 1, 1.0f) : RandomVector(rng);  // some bad
  SearchOptions search_options;
  search_options.top_k = 5;

  SearchBatcher batcher(/*parallel=*/1, /*max_batch=*/8);
  std::atomic<int> mismatches{0}, wrong_errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (const Query& q : queries[t]) {
        auto got = batcher.Search(*collection, q, search_options);
        auto want = (*collection)->Search(q, search_options);
        if (got.ok() != want.ok()) {
          ++wrong_errors;
          continue;
        }
        if (!got.ok()) {
          if (got.status().code() != want.status().code()) ++wrong_errors;
          continue;
        }
        if (got->size() != want->size()) {
          ++mismatches;
          continue;
        }
        for (size_t i = 0; i < got->size(); ++i)
          if ((*got)[i].id != (*want)[i].id || std::abs((*got)[i].score - (*want)[i].score) > 1e-3f * (1 + std::abs((*want)[i].score)))
            ++mismatches;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches, 0);
  EXPECT_EQ(wrong_errors, 0);
  EXPECT_EQ(batcher.searches(), uint64_t{kThreads * kQueriesPerThread});
  EXPECT_LE(batcher.engine_calls(), batcher.searches());
  std::printf("%llu searches in %llu engine calls\n", static_cast<unsigned long long>(batcher.searches()),
              static_cast<unsigned long long>(batcher.engine_calls()));

  // A query without a dense part is answered directly.
  Query sparse_only;
  sparse_only.sparse.indices = {1};
  sparse_only.sparse.values = {1.0f};
  EXPECT_EQ(batcher.Search(*collection, sparse_only, search_options).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace m3vdb::net::detail
