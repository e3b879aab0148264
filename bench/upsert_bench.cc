// upsert_bench: ingest throughput of a real Database (RocksDB on disk) through the public API.
//
// Each benchmark run opens a fresh database in a new directory under the system temporary
// directory (or $M3VDB_BENCH_DIR), creates one dense collection, and upserts batches of 1,000
// new documents (random dense vectors, no text or metadata) until Google Benchmark has enough
// time; the directory is removed afterwards. Cases: dimension 1024 (BGE-M3) and 784
// (Fashion-MNIST), with Options::sync = true (WAL fsynced per batch, the default) and false.
// Counters: vectors/s, and bytes_per_second of raw float32 vector payload.
#include <benchmark/benchmark.h>
#include <m3vdb/m3vdb.h>
#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

namespace m3vdb::bench {
namespace {

constexpr size_t kBatch = 1000;
constexpr size_t kDistinctBatches = 4;  // vector payloads cycled through, so batches differ

namespace fs = std::filesystem;

// A new empty directory, removed with everything in it when this object goes away.
class TempDir {
 public:
  TempDir() {
    const char* env = std::getenv("M3VDB_BENCH_DIR");
    const fs::path parent = env && *env ? fs::path(env) : fs::temp_directory_path();
    std::string tmpl = (parent / "m3vdb-upsert-bench-XXXXXX").string();
    if (mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::vector<std::vector<Document>> MakeBatches(uint32_t dim) {
  std::mt19937_64 rng(7);
  std::normal_distribution<float> normal;
  std::vector<std::vector<Document>> batches(kDistinctBatches, std::vector<Document>(kBatch));
  for (auto& batch : batches)
    for (auto& doc : batch) {
      doc.dense.resize(dim);
      for (float& x : doc.dense) x = normal(rng);
    }
  return batches;
}

void BM_Upsert(benchmark::State& state) {
  const auto dim = static_cast<uint32_t>(state.range(0));
  const bool sync = state.range(1) != 0;
  auto batches = MakeBatches(dim);
  {
    TempDir dir;
    if (dir.path().empty()) {
      state.SkipWithError("cannot create a temporary directory");
      return;
    }
    Options options;
    options.sync = sync;
    auto db = Database::Open(options, dir.path() + "/db");
    if (!db.ok()) {
      state.SkipWithError(db.status().ToString().c_str());
      return;
    }
    CollectionSchema schema;
    schema.dense_dim = dim;
    schema.metric = Metric::kInnerProduct;
    auto coll = (*db)->CreateCollection("bench", schema);
    if (!coll.ok()) {
      state.SkipWithError(coll.status().ToString().c_str());
      return;
    }
    size_t next_id = 0, done = 0;
    for (auto _ : state) {
      state.PauseTiming();
      auto& batch = batches[(done / kBatch) % kDistinctBatches];
      for (auto& doc : batch) doc.id = "doc-" + std::to_string(next_id++);
      state.ResumeTiming();
      Status s = (*coll)->Upsert(batch);
      if (!s.ok()) {
        state.SkipWithError(s.ToString().c_str());
        break;
      }
      done += kBatch;
    }
    state.counters["vectors/s"] = benchmark::Counter(static_cast<double>(done), benchmark::Counter::kIsRate);
    state.SetBytesProcessed(static_cast<int64_t>(done * dim * sizeof(float)));
    coll->reset();
    db->reset();  // close RocksDB before its directory is removed
  }
}

BENCHMARK(BM_Upsert)
    ->ArgNames({"dim", "sync"})
    ->Args({1024, 1})
    ->Args({1024, 0})
    ->Args({784, 1})
    ->Args({784, 0})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace m3vdb::bench

BENCHMARK_MAIN();
