// distill_step_bench: time of one Distill-VQ training step (forward + backward, CPU backend) at
// the shape of a Fashion-MNIST training batch: 64 queries, `c` candidate documents (the union of
// the queries' teacher top-100: about 6,000), d = 784, nlist 256, M = 16/28/56, 256 codewords.
// The data are random; a step's cost does not depend on the values. A training run is
// steps = epochs x training queries / 64 (4 x 20,000 / 64 = 1,250 by default), so the step time
// times 1,250 is the run's training time without its set-up.
//
//   build/bench/distill_step_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "quant/detail/distill_step.h"

namespace m3vdb::quant {
namespace {

void BM_DistillStep(benchmark::State& state) {
  const size_t m = static_cast<size_t>(state.range(0)), c = static_cast<size_t>(state.range(1));
  const size_t d = 784, b = 64, nlist = 256;
  Codebooks books;
  books.params.dim = d;
  books.params.metric = Metric::kL2;
  books.params.nlist = nlist;
  books.params.m = m;
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<float> u(0, 1);
  books.centroids.resize(nlist * d);
  books.pq.resize(m * 256 * (d / m));
  for (float& v : books.centroids) v = u(rng);
  for (float& v : books.pq) v = 0.1f * (u(rng) - 0.5f);
  std::vector<float> queries(b * d), docs(c * d);
  for (float& v : queries) v = u(rng);
  for (float& v : docs) v = u(rng);
  std::vector<uint32_t> lists(c);
  for (size_t j = 0; j < c; ++j) lists[j] = static_cast<uint32_t>(rng() % nlist);
  detail::StepInput in{queries.data(), b, docs.data(), lists.data(), c, 1.0f, 1.0f};
  // Kept across the benchmark's calls, as the trainer keeps it across steps: a fresh workspace's
  // first step spends most of its time in page faults.
  static detail::StepOutput out;
  static detail::StepWorkspace workspace;
  for (auto _ : state) {
    detail::DistillStep(books, in, &out, &workspace);
    benchmark::DoNotOptimize(out.grad_pq.data());
  }
  state.counters["steps/s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

BENCHMARK(BM_DistillStep)->ArgNames({"M", "c"})->Args({28, 6000})->Args({16, 6000})->Args({56, 6000})
    ->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace m3vdb::quant

BENCHMARK_MAIN();
