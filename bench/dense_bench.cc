// dense_bench: exact dense search throughput of m3vdb's FlatDenseIndex against FAISS's
// IndexFlatL2 / IndexFlatIP, on the same data in the same run, with the same BLAS (OpenBLAS).
//
// Data: Fashion-MNIST from Debian's dataset-fashion-mnist, 60,000 base vectors and 10,000 query
// vectors of dimension 784 (pixels / 255). For inner product every row is L2-normalized.
// Cases: batches of 1000, of 8 and 4 queries (a few coalesced searches) and single queries,
// k = 10, both metrics, 1 and 2 threads; batches of 1, 4 and 8 also with k = 100 ("k:100" in the
// name: what Collection::Search asks the index for with the default rerank_k)
// (OpenBLAS threads for both libraries, OpenMP threads for FAISS's own loops).
// Engines: "m3vdb" is FlatDenseIndex as configured by default (batches of up to 8 queries scan an
// int8 copy first and rescore in float32 the documents the error bound cannot exclude);
// "m3vdb_f32" (batches of up to 8 only) forces the float32 pass for those batches; "faiss".
// Both m3vdb engines return the same ids and scores. Counter `rescored`: documents rescored in
// float32 per query by the int8-first path (0 when it fell back to the float32 pass).
// Counters: queries/s, and `agree`: the mean fraction of FAISS's top-10 ids that m3vdb also
// returns, over the first 1000 queries (1.0 unless the two disagree on near-ties).
//
// Benchmarks are named "dense/<metric>/batch:<n>/threads:<t>/<engine>"; after the runs the
// program prints the median queries/s of each case and the ratio m3vdb / FAISS. Repetitions
// come from the command line (--benchmark_repetitions=5 --benchmark_report_aggregates_only=true).
// --data_dir=DIR reads the idx files from DIR instead of the Debian location.
//
// Run it with OMP_WAIT_POLICY=PASSIVE for FAISS's best multi-threaded numbers: by default
// libgomp's idle threads spin after each parallel region and take cores from OpenBLAS's
// threads, which makes FAISS slower with 2 threads than with 1 on a 2-core machine.
#include <benchmark/benchmark.h>
#include <cblas.h>
#include <faiss/IndexFlat.h>
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "bench/ratio_reporter.h"
#include "index/dense_index.h"
#include "tools/fashion_mnist.h"

namespace m3vdb::bench {
namespace {

constexpr size_t kK = 10;
constexpr size_t kAgreeQueries = 1000;

std::string g_data_dir = tools::kFashionMnistDir;

enum class Engine { kM3vdb, kM3vdbF32, kFaiss };

// Both indexes over the same base vectors, and the queries, for one metric.
struct Fixture {
  tools::Matrix queries;
  std::unique_ptr<index::FlatDenseIndex> ours;  // its small-batch path is set by each benchmark
  std::unique_ptr<faiss::IndexFlat> faiss;
  double agree = 0;
};

void SetThreads(int n) {
  openblas_set_num_threads(n);
  omp_set_num_threads(n);
}

// Mean over queries of |top-k(ours) ∩ top-k(faiss)| / k.
double Agreement(const Fixture& f) {
  const size_t nq = std::min(kAgreeQueries, f.queries.rows);
  const auto ours = f.ours->Search({f.queries.row(0), nq * f.queries.cols}, nq, kK);
  std::vector<float> dist(nq * kK);
  std::vector<faiss::Index::idx_t> labels(nq * kK);
  f.faiss->search(static_cast<faiss::Index::idx_t>(nq), f.queries.row(0), kK, dist.data(), labels.data());
  size_t same = 0;
  for (size_t q = 0; q < nq; ++q) {
    const auto* l = labels.data() + q * kK;
    for (const auto& hit : ours[q]) same += std::count(l, l + kK, static_cast<faiss::Index::idx_t>(hit.id));
  }
  return static_cast<double>(same) / static_cast<double>(nq * kK);
}

// Loads the data and builds both indexes on first use; nullptr (and `error`) on failure.
const Fixture* GetFixture(Metric metric, std::string* error) {
  static std::unique_ptr<Fixture> fixtures[2];
  static std::string load_error;
  const int m = metric == Metric::kL2 ? 0 : 1;
  if (fixtures[m]) return fixtures[m].get();
  if (!load_error.empty()) {
    *error = load_error;
    return nullptr;
  }
  auto base = tools::ReadIdxImages(g_data_dir + "/train-images-idx3-ubyte.gz");
  auto queries = tools::ReadIdxImages(g_data_dir + "/t10k-images-idx3-ubyte.gz");
  if (!base.ok() || !queries.ok()) {
    load_error = (!base.ok() ? base.status() : queries.status()).ToString();
    *error = load_error;
    return nullptr;
  }
  if (metric == Metric::kInnerProduct) {
    tools::NormalizeRows(&*base);
    tools::NormalizeRows(&*queries);
  }
  auto f = std::make_unique<Fixture>();
  const auto dim = static_cast<uint32_t>(base->cols);
  f->ours = std::make_unique<index::FlatDenseIndex>(dim, metric);
  for (size_t i = 0; i < base->rows; ++i) f->ours->Add(i, {base->row(i), dim});
  if (metric == Metric::kL2)
    f->faiss = std::make_unique<faiss::IndexFlatL2>(dim);
  else
    f->faiss = std::make_unique<faiss::IndexFlatIP>(dim);
  f->faiss->add(static_cast<faiss::Index::idx_t>(base->rows), base->data.data());
  f->queries = std::move(*queries);
  SetThreads(2);
  f->agree = Agreement(*f);
  fixtures[m] = std::move(f);
  return fixtures[m].get();
}

void BM_DenseSearch(benchmark::State& state, Metric metric, Engine engine, size_t batch, int threads, size_t k) {
  std::string error;
  const Fixture* f = GetFixture(metric, &error);
  if (!f) {
    state.SkipWithError(error.c_str());
    return;
  }
  SetThreads(threads);
  const size_t dim = f->queries.cols;
  const size_t usable = f->queries.rows - f->queries.rows % batch;  // whole batches only
  std::vector<float> dist(batch * k);
  std::vector<faiss::Index::idx_t> labels(batch * k);
  size_t next = 0, done = 0;
  double rescored = 0;
  using Path = index::FlatDenseIndex::SmallBatchPath;
  f->ours->set_small_batch_path(engine == Engine::kM3vdbF32 ? Path::kFloat32 : Path::kAuto);
  for (auto _ : state) {
    const float* q = f->queries.row(next);
    if (engine != Engine::kFaiss) {
      auto hits = f->ours->Search({q, batch * dim}, batch, k);
      benchmark::DoNotOptimize(hits.data());
      rescored += static_cast<double>(index::FlatDenseIndex::last_rescored());
    } else {
      f->faiss->search(static_cast<faiss::Index::idx_t>(batch), q, static_cast<faiss::Index::idx_t>(k), dist.data(),
                       labels.data());
      benchmark::DoNotOptimize(labels.data());
    }
    next = (next + batch) % usable;
    done += batch;
  }
  state.counters["queries/s"] = benchmark::Counter(static_cast<double>(done), benchmark::Counter::kIsRate);
  state.counters["agree"] = f->agree;
  state.counters["rescored"] = done > 0 ? rescored / static_cast<double>(done) : 0;
  f->ours->set_small_batch_path(Path::kAuto);
}

void RegisterAll() {
  for (auto metric : {Metric::kL2, Metric::kInnerProduct}) {
    for (size_t batch : {size_t{1000}, size_t{8}, size_t{4}, size_t{1}}) {
      for (int threads : {1, 2}) {
        for (auto engine : {Engine::kM3vdb, Engine::kM3vdbF32, Engine::kFaiss}) {
          if (engine == Engine::kM3vdbF32 && batch > 8) continue;  // the float32 option is for small batches
          const char* engine_name = engine == Engine::kM3vdb ? "m3vdb" : engine == Engine::kM3vdbF32 ? "m3vdb_f32" : "faiss";
          const std::string name = std::string("dense/") + (metric == Metric::kL2 ? "l2" : "ip") +
                                   "/batch:" + std::to_string(batch) + "/threads:" + std::to_string(threads) + "/" +
                                   engine_name;
          benchmark::RegisterBenchmark(name.c_str(), BM_DenseSearch, metric, engine, batch, threads, kK)
              ->UseRealTime()
              ->Unit(benchmark::kMillisecond);
          // k = 100, what Collection::Search asks the index for by default (rerank_k 100).
          if (batch <= 8) {
            const std::string name100 = std::string("dense/") + (metric == Metric::kL2 ? "l2" : "ip") + "/batch:" +
                                        std::to_string(batch) + "/k:100/threads:" + std::to_string(threads) + "/" +
                                        engine_name;
            benchmark::RegisterBenchmark(name100.c_str(), BM_DenseSearch, metric, engine, batch, threads, size_t{100})
                ->UseRealTime()
                ->Unit(benchmark::kMillisecond);
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace m3vdb::bench

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--data_dir=", 11) == 0)
      m3vdb::bench::g_data_dir = argv[i] + 11;
    else
      argv[kept++] = argv[i];
  }
  argc = kept;
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  if (std::getenv("OMP_WAIT_POLICY") == nullptr)
    std::fprintf(stderr,
                 "note: OMP_WAIT_POLICY is not set; FAISS's spinning OpenMP threads compete with "
                 "OpenBLAS's (see docs/benchmarks.md)\n");
  m3vdb::bench::RegisterAll();
  m3vdb::bench::RatioReporter reporter("queries/s");
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.PrintRatios("m3vdb", "faiss");
  reporter.PrintRatios("m3vdb", "m3vdb_f32");  // int8-first vs float32 pass (batches of 1, 4 and 8)
  benchmark::Shutdown();
  return 0;
}
