// `m3vdb bench fashion-mnist`: the end-to-end job of the README. Ingests Debian's Fashion-MNIST
// training set (60,000 x 784) as dense vectors into a fresh database, reopens it, answers the
// 10,000 test queries (batched, and one at a time) and prints recall@10 against an independent
// brute-force ground truth and queries/s.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <m3vdb/m3vdb.h>

#include "tools/bench_built.h"
#include "tools/commands.h"
#include "tools/fashion_mnist.h"
#include "tools/ground_truth.h"
#include "tools/progress.h"
#include "tools/vector_io.h"

namespace m3vdb::tools {
namespace {

struct BenchFlags {
  std::string data_dir = kFashionMnistDir;
  std::string db_dir;  // empty: a temporary directory, removed afterwards
  std::string metric = "l2";
  size_t batch = 1000;
  size_t k = 10;
  size_t single = 1000;
  bool sync = true;
  std::string export_dir;   // write train.npy / test.npy there and stop
  std::string built_dir;    // a database made by `m3vdb build` from train.npy: benchmark it
  std::string collection = "fashion_mnist";
  int http_clients = 4;
};

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::vector<std::vector<uint32_t>> HitsToRows(const std::vector<std::vector<SearchHit>>& hits) {
  std::vector<std::vector<uint32_t>> rows(hits.size());
  for (size_t i = 0; i < hits.size(); ++i)
    for (const auto& h : hits[i]) rows[i].push_back(static_cast<uint32_t>(std::stoul(h.id)));
  return rows;
}

int Fail(const Status& s) {
  spdlog::error("{}", s.ToString());
  return 1;
}

int RunBench(const BenchFlags& f) {
  auto metric = ParseMetric(f.metric);
  if (!metric.ok()) return Fail(metric.status());
  auto base = ReadIdxImages(f.data_dir + "/train-images-idx3-ubyte.gz");
  if (!base.ok()) return Fail(base.status());
  auto queries = ReadIdxImages(f.data_dir + "/t10k-images-idx3-ubyte.gz");
  if (!queries.ok()) return Fail(queries.status());
  if (*metric == Metric::kInnerProduct) {  // cosine: inner product of normalized vectors
    NormalizeRows(&*base);
    NormalizeRows(&*queries);
  }
  spdlog::info("fashion-mnist: {} base and {} query vectors of dimension {}, metric {}", base->rows, queries->rows,
               base->cols, f.metric);
  if (!f.export_dir.empty()) {
    std::filesystem::create_directories(f.export_dir);
    for (const auto& [name, m] : {std::pair{"/train.npy", &*base}, std::pair{"/test.npy", &*queries}})
      if (Status s = WriteVectors(f.export_dir + name, *m); !s.ok()) return Fail(s);
    std::printf("wrote %s/train.npy (%zu x %zu) and %s/test.npy (%zu x %zu)\n", f.export_dir.c_str(), base->rows,
                base->cols, f.export_dir.c_str(), queries->rows, queries->cols);
    return 0;
  }
  if (!f.built_dir.empty()) {
    BuiltBenchOptions o;
    o.db_dir = f.built_dir;
    o.collection = f.collection;
    o.metric = *metric;
    o.k = f.k;
    o.http_clients = f.http_clients;
    return RunBuiltBench(o, *base, *queries);
  }

  namespace fs = std::filesystem;
  const bool temporary = f.db_dir.empty();
  const fs::path dir = temporary ? fs::temp_directory_path() / ("m3vdb-bench-" + std::to_string(::getpid())) : fs::path(f.db_dir);
  if (temporary) fs::remove_all(dir);
  struct Cleanup {
    fs::path dir;
    bool on;
    ~Cleanup() {
      std::error_code ec;
      if (on) fs::remove_all(dir, ec);
    }
  } cleanup{dir, temporary};

  Options options;
  options.sync = f.sync;
  CollectionSchema schema;
  schema.dense_dim = static_cast<uint32_t>(base->cols);
  schema.metric = *metric;
  double ingest_secs = 0;
  {
    auto db = Database::Open(options, dir.string());
    if (!db.ok()) return Fail(db.status());
    auto coll = (*db)->CreateCollection("fashion_mnist", schema);
    if (!coll.ok()) return Fail(coll.status());
    Progress progress("ingest", base->rows, "vectors");
    std::vector<Document> batch;
    for (size_t start = 0; start < base->rows; start += f.batch) {
      const size_t end = std::min(base->rows, start + f.batch);
      batch.clear();
      for (size_t i = start; i < end; ++i) {
        Document d;
        d.id = std::to_string(i);
        d.dense.assign(base->row(i), base->row(i) + base->cols);
        batch.push_back(std::move(d));
      }
      Status s = (*coll)->Upsert(batch);
      if (!s.ok()) return Fail(s);
      progress.Advance(end - start);
    }
    progress.Finish();
    ingest_secs = progress.seconds();
  }

  // Reopen: everything below runs on the state rebuilt from RocksDB.
  auto t_open = Clock::now();
  auto db = Database::Open(options, dir.string());
  if (!db.ok()) return Fail(db.status());
  auto coll = (*db)->GetCollection("fashion_mnist");
  if (!coll.ok()) return Fail(coll.status());
  const double reopen_secs = Since(t_open);
  spdlog::info("reopened {} with {} documents in {:.2f} s", dir.string(), (*coll)->Count(), reopen_secs);

  SearchOptions so;
  so.top_k = static_cast<int>(f.k);
  so.rerank_k = static_cast<int>(f.k);
  so.include_metadata = false;
  std::vector<Query> qs(queries->rows);
  for (size_t i = 0; i < queries->rows; ++i) qs[i].dense.assign(queries->row(i), queries->row(i) + queries->cols);

  auto t_batch = Clock::now();
  auto batched = (*coll)->SearchBatch(qs, so);
  if (!batched.ok()) return Fail(batched.status());
  const double batch_secs = Since(t_batch);

  const size_t single_n = std::min(f.single, qs.size());
  std::vector<std::vector<SearchHit>> singles(single_n);
  std::vector<double> latencies(single_n);
  Progress single_progress("single", single_n, "queries");
  auto t_single = Clock::now();
  for (size_t i = 0; i < single_n; ++i) {
    auto t = Clock::now();
    auto r = (*coll)->Search(qs[i], so);
    if (!r.ok()) return Fail(r.status());
    latencies[i] = Since(t);
    singles[i] = std::move(*r);
    single_progress.Advance(1);
  }
  const double single_secs = Since(t_single);
  single_progress.Finish();
  std::sort(latencies.begin(), latencies.end());

  spdlog::info("computing brute-force ground truth ({} x {})", queries->rows, base->rows);
  auto truth = ExactNeighbors(*base, *queries, f.k, *metric);
  const double recall_batch = RecallAtK(HitsToRows(*batched), truth, f.k);
  std::vector<std::vector<uint32_t>> truth_single(truth.begin(), truth.begin() + static_cast<std::ptrdiff_t>(single_n));
  const double recall_single = RecallAtK(HitsToRows(singles), truth_single, f.k);

  std::printf("\n== m3vdb fashion-mnist (exact dense search, metric %s) ==\n", f.metric.c_str());
  std::printf("documents            %zu x %zu\n", base->rows, base->cols);
  std::printf("ingest               %.1f s, %.0f vectors/s (batches of %zu, sync=%s)\n", ingest_secs,
              base->rows / ingest_secs, f.batch, f.sync ? "on" : "off");
  std::printf("reopen + rebuild     %.2f s\n", reopen_secs);
  std::printf("recall@%zu batched    %.4f  (%zu queries)\n", f.k, recall_batch, queries->rows);
  std::printf("recall@%zu single     %.4f  (%zu queries)\n", f.k, recall_single, single_n);
  std::printf("QPS batched          %.0f queries/s\n", queries->rows / batch_secs);
  std::printf("QPS single           %.0f queries/s, median latency %.2f ms\n", single_n / single_secs,
              1000 * latencies[single_n / 2]);
  return recall_batch > 0.99 && recall_single > 0.99 ? 0 : 3;
}

}  // namespace

Runner AddBenchCommand(CLI::App& app) {
  auto* bench = app.add_subcommand("bench", "End-to-end benchmarks on standard data sets");
  bench->require_subcommand(1);
  auto* fm = bench->add_subcommand("fashion-mnist", "Ingest Fashion-MNIST, answer its 10,000 test queries, report recall@10 and QPS");
  auto flags = std::make_shared<BenchFlags>();
  fm->add_option("--data", flags->data_dir, "directory with the *-idx3-ubyte.gz files")->capture_default_str();
  fm->add_option("--db", flags->db_dir, "database directory (default: a temporary one, removed afterwards)");
  fm->add_option("--metric", flags->metric, "ip (cosine on normalized vectors) or l2")->capture_default_str();
  fm->add_option("--batch", flags->batch, "documents per upsert batch")->capture_default_str()->check(CLI::PositiveNumber);
  fm->add_option("--k", flags->k, "neighbours per query")->capture_default_str()->check(CLI::Range(1, 1000));
  fm->add_option("--single", flags->single, "queries also answered one at a time")->capture_default_str();
  fm->add_flag("!--no-sync", flags->sync, "do not fsync each batch");
  fm->add_option("--export-npy", flags->export_dir, "write train.npy and test.npy (as searched, float32) to DIR and stop");
  fm->add_option("--built", flags->built_dir,
                 "benchmark DIR, a database `m3vdb build` made from train.npy: library and HTTP recall@10 and "
                 "queries/s, and the FAISS k-means IVF-PQ of the same size");
  fm->add_option("--collection", flags->collection, "collection in --built")->capture_default_str();
  fm->add_option("--http-clients", flags->http_clients, "concurrent HTTP clients with --built")->capture_default_str();
  return [flags] { return RunBench(*flags); };
}

}  // namespace m3vdb::tools
