// sparse_bench: throughput of SparseIndex::Search on a synthetic corpus shaped like BGE-M3's
// sparse (lexical) output.
//
// Corpus: 200,000 documents of 60 distinct token ids each, drawn from one Zipf distribution
// (exponent 1) over the 250,002 ids of the XLM-R vocabulary; rank r is mapped to a token id by
// a fixed random permutation. Weights are uniform in (0, 0.4]. Two sets of 1,000 queries of 12
// distinct token ids: `all` draws from the same distribution (so most queries contain some of
// the most frequent, stopword-like tokens, whose postings span nearly every document);
// `content` skips the 100 most frequent ranks, like a query without stopwords. Everything is
// seeded, so every run sees the same corpus.
// Cases: both query sets, k = 10 and k = 100, one searching thread and two concurrent ones
// (const Search calls may run concurrently).
// Counters: queries/s, and postings/query: the mean number of postings a query's lists hold
// (the work of term-at-a-time accumulation), taken from the corpus's document frequencies.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include "index/sparse_index.h"

namespace m3vdb::bench {
namespace {

constexpr size_t kDocs = 200000;
constexpr size_t kDocTokens = 60;
constexpr size_t kQueries = 1000;
constexpr size_t kQueryTokens = 12;
constexpr int32_t kVocab = 250002;
constexpr double kZipfExponent = 1.0;
constexpr float kMaxWeight = 0.4f;
constexpr int32_t kStopwordRanks = 100;  // ranks the `content` queries leave out

struct SparseDoc {
  std::vector<int32_t> indices;
  std::vector<float> values;
};

class ZipfTokens {
 public:
  explicit ZipfTokens(std::mt19937_64& rng) : token_of_rank_(kVocab) {
    std::vector<double> w(kVocab);
    for (int32_t r = 0; r < kVocab; ++r) w[r] = 1.0 / std::pow(r + 1.0, kZipfExponent);
    rank_ = std::discrete_distribution<int32_t>(w.begin(), w.end());
    std::iota(token_of_rank_.begin(), token_of_rank_.end(), 0);
    std::shuffle(token_of_rank_.begin(), token_of_rank_.end(), rng);
  }

  // `n` distinct token ids of rank >= min_rank, sorted, with weights in (0, kMaxWeight].
  SparseDoc Draw(size_t n, std::mt19937_64& rng, int32_t min_rank = 0) {
    std::uniform_real_distribution<float> weight(0.0f, kMaxWeight);
    SparseDoc d;
    while (d.indices.size() < n) {
      const int32_t r = rank_(rng);
      if (r < min_rank) continue;
      const int32_t t = token_of_rank_[r];
      if (std::find(d.indices.begin(), d.indices.end(), t) == d.indices.end()) d.indices.push_back(t);
    }
    std::sort(d.indices.begin(), d.indices.end());
    for (size_t i = 0; i < n; ++i) d.values.push_back(kMaxWeight - weight(rng));  // (0, 0.4]
    return d;
  }

 private:
  std::discrete_distribution<int32_t> rank_;
  std::vector<int32_t> token_of_rank_;
};

struct QuerySet {
  std::vector<SparseDoc> queries;
  double postings_per_query = 0;
};

struct Corpus {
  index::SparseIndex index;
  QuerySet sets[2];  // [0] all, [1] content
};

const Corpus& GetCorpus() {
  static const std::unique_ptr<Corpus> corpus = [] {
    auto c = std::make_unique<Corpus>();
    std::mt19937_64 rng(20240601);
    ZipfTokens zipf(rng);
    std::vector<uint32_t> df(kVocab, 0);
    for (size_t i = 0; i < kDocs; ++i) {
      const SparseDoc d = zipf.Draw(kDocTokens, rng);
      for (int32_t t : d.indices) ++df[t];
      c->index.Add(i, d.indices, d.values);
    }
    for (int set = 0; set < 2; ++set) {
      QuerySet& qs = c->sets[set];
      size_t postings = 0;
      for (size_t q = 0; q < kQueries; ++q) {
        qs.queries.push_back(zipf.Draw(kQueryTokens, rng, set == 0 ? 0 : kStopwordRanks));
        for (int32_t t : qs.queries.back().indices) postings += df[t];
      }
      qs.postings_per_query = static_cast<double>(postings) / kQueries;
    }
    return c;
  }();
  return *corpus;
}

void BM_SparseSearch(benchmark::State& state) {
  const QuerySet& qs = GetCorpus().sets[state.range(0)];
  const index::SparseIndex& index = GetCorpus().index;
  const auto k = static_cast<size_t>(state.range(1));
  size_t next = static_cast<size_t>(state.thread_index()) * 7919 % kQueries;  // threads start apart
  size_t done = 0;
  for (auto _ : state) {
    const SparseDoc& q = qs.queries[next];
    auto hits = index.Search(q.indices, q.values, k);
    benchmark::DoNotOptimize(hits.data());
    next = (next + 1) % kQueries;
    ++done;
  }
  state.counters["queries/s"] = benchmark::Counter(static_cast<double>(done), benchmark::Counter::kIsRate);
  // Averaged over threads, so that it stays a per-query figure when several threads run.
  state.counters["postings/query"] = benchmark::Counter(qs.postings_per_query, benchmark::Counter::kAvgThreads);
}

BENCHMARK(BM_SparseSearch)
    ->ArgNames({"content", "k"})  // content:0 = `all` queries, content:1 = `content` queries
    ->ArgsProduct({{0, 1}, {10, 100}})
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace m3vdb::bench

BENCHMARK_MAIN();
