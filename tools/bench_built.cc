#include "tools/bench_built.h"

#include <faiss/IVFlib.h>
#include <faiss/IndexIVF.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <m3vdb/m3vdb.h>
#include <nlohmann/json.hpp>
#include <mutex>
#include <thread>

#include "net/client.h"
#include "net/server.h"
#include "quant/faiss_bridge.h"
#include "tools/ground_truth.h"

namespace m3vdb::tools {
namespace {

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

int Fail(const Status& s) {
  spdlog::error("{}", s.ToString());
  return 1;
}

std::vector<std::vector<uint32_t>> Rows(const std::vector<std::vector<SearchHit>>& hits) {
  std::vector<std::vector<uint32_t>> rows(hits.size());
  for (size_t i = 0; i < hits.size(); ++i)
    for (const auto& h : hits[i]) rows[i].push_back(static_cast<uint32_t>(std::stoul(h.id)));
  return rows;
}

// Exact rerank of candidate rows (ids of `base`) by the metric; keeps the best k.
std::vector<uint32_t> Rerank(const Matrix& base, const float* q, const std::vector<uint32_t>& cands, size_t k,
                             Metric metric) {
  std::vector<std::pair<float, uint32_t>> scored;
  for (uint32_t id : cands) {
    float s = 0;
    const float* x = base.row(id);
    for (size_t j = 0; j < base.cols; ++j) s += metric == Metric::kL2 ? -(x[j] - q[j]) * (x[j] - q[j]) : x[j] * q[j];
    scored.emplace_back(-s, id);
  }
  std::sort(scored.begin(), scored.end());
  std::vector<uint32_t> out;
  for (size_t i = 0; i < std::min(k, scored.size()); ++i) out.push_back(scored[i].second);
  return out;
}

struct Row {
  std::string name;
  double codes_only = -1, reranked = -1, qps = 0;
};

}  // namespace

int RunBuiltBench(const BuiltBenchOptions& o, const Matrix& base, const Matrix& queries) {
  Options options;
  options.create_if_missing = false;
  auto db = Database::Open(options, o.db_dir);
  if (!db.ok()) return Fail(db.status());
  auto coll = (*db)->GetCollection(o.collection);
  if (!coll.ok()) return Fail(coll.status());
  const IndexInfo info = (*coll)->GetIndexInfo();
  const CollectionSchema& schema = (*coll)->schema();
  if ((*coll)->Count() != base.rows || schema.dense_dim != base.cols)
    return Fail(Status::FailedPrecondition("collection '" + o.collection + "' holds " + std::to_string((*coll)->Count()) +
                                           " vectors of dimension " + std::to_string(schema.dense_dim) +
                                           "; expected the Fashion-MNIST training set"));
  if (info.kind != "ivfpq") return Fail(Status::FailedPrecondition("collection '" + o.collection + "' is not trained"));

  spdlog::info("computing the brute-force ground truth ({} x {})", queries.rows, base.rows);
  const auto truth = ExactNeighbors(base, queries, o.k, o.metric);
  std::vector<Query> qs(queries.rows);
  for (size_t i = 0; i < queries.rows; ++i) qs[i].dense.assign(queries.row(i), queries.row(i) + queries.cols);
  std::vector<Row> rows;

  // 1. The library, batched: codes only (candidates = top k), and the default search (top-100
  //    candidates reranked with the exact vectors).
  {
    Row r{"m3vdb library (batched)"};
    SearchOptions codes;
    codes.top_k = static_cast<int>(o.k);
    codes.rerank_k = static_cast<int>(o.k);
    codes.include_metadata = false;
    auto a = (*coll)->SearchBatch(qs, codes);
    if (!a.ok()) return Fail(a.status());
    r.codes_only = RecallAtK(Rows(*a), truth, o.k);
    SearchOptions defaults;
    defaults.top_k = static_cast<int>(o.k);
    defaults.include_metadata = false;
    const auto t = Clock::now();
    auto b = (*coll)->SearchBatch(qs, defaults);
    if (!b.ok()) return Fail(b.status());
    r.qps = qs.size() / Since(t);
    r.reranked = RecallAtK(Rows(*b), truth, o.k);
    rows.push_back(r);
  }

  // 2. The HTTP API: the server of `m3vdb serve` on loopback, several keep-alive clients.
  {
    net::ServerOptions so;
    so.port = 0;
    const auto level = spdlog::get_level();
    spdlog::set_level(spdlog::level::warn);  // the server logs every request at info
    struct Restore {
      spdlog::level::level_enum level;
      ~Restore() { spdlog::set_level(level); }
    } restore{level};
    auto server = net::Server::Start(**db, so);
    if (!server.ok()) return Fail(server.status());
    const uint16_t port = (*server)->port();
    std::vector<std::vector<uint32_t>> found(qs.size());
    std::atomic<size_t> next{0};
    std::atomic<bool> failed{false};
    std::string error;
    std::mutex error_mu;
    const auto t = Clock::now();
    std::vector<std::thread> clients;
    for (int c = 0; c < o.http_clients; ++c) {
      clients.emplace_back([&] {
        auto client = net::HttpClient::Connect("127.0.0.1", port);
        if (!client.ok()) {
          failed = true;
          std::lock_guard lock(error_mu);
          error = client.status().ToString();
          return;
        }
        for (size_t i; (i = next++) < qs.size() && !failed;) {
          const std::string body = nlohmann::json{{"dense", qs[i].dense}, {"top_k", o.k}, {"include", nlohmann::json::array()}}.dump();
          auto reply = (*client)->Send("POST", "/collections/" + o.collection + "/search", body);
          if (!reply.ok() || reply->status != 200) {
            failed = true;
            std::lock_guard lock(error_mu);
            error = reply.ok() ? reply->body : reply.status().ToString();
            return;
          }
          const nlohmann::json answer = nlohmann::json::parse(reply->body, nullptr, false);
          if (!answer.is_object() || !answer.contains("results") || !answer["results"].is_array()) {
            failed = true;
            std::lock_guard lock(error_mu);
            error = "unexpected answer: " + reply->body.substr(0, 200);
            return;
          }
          for (const auto& h : answer["results"])
            found[i].push_back(static_cast<uint32_t>(std::stoul(h.value("id", std::string("0")))));
        }
      });
    }
    for (auto& c : clients) c.join();
    const double secs = Since(t);
    (*server)->Shutdown();
    (*server)->Wait();
    if (failed) return Fail(Status::Internal("HTTP search failed: " + error));
    rows.push_back({"m3vdb serve (HTTP, " + std::to_string(o.http_clients) + " clients)", -1,
                    RecallAtK(found, truth, o.k), qs.size() / secs});
  }

  // 3. FAISS IVF-PQ with k-means codebooks of the same size, same nprobe.
  {
    quant::IvfPqParams params;
    params.dim = schema.dense_dim;
    params.metric = o.metric;
    params.nlist = info.nlist;
    params.m = info.m;
    spdlog::info("training the FAISS k-means baseline (IVF{}, PQ{})", params.nlist, params.m);
    auto books = quant::TrainKMeans(base.data.data(), base.rows, params);
    if (!books.ok()) return Fail(books.status());
    auto index = quant::BuildFaissIndex(*books, base.data.data(), base.rows);
    if (!index.ok()) return Fail(index.status());
    faiss::IndexIVF* ivf = faiss::ivflib::extract_index_ivf(index->get());
    ivf->nprobe = static_cast<size_t>(schema.index.nprobe);
    const size_t rerank = 100;
    std::vector<float> dist(queries.rows * rerank);
    std::vector<faiss::Index::idx_t> labels(queries.rows * rerank);
    const auto t = Clock::now();
    (*index)->search(static_cast<faiss::Index::idx_t>(queries.rows), queries.data.data(), static_cast<faiss::Index::idx_t>(rerank),
                     dist.data(), labels.data());
    std::vector<std::vector<uint32_t>> codes(queries.rows), reranked(queries.rows);
    for (size_t i = 0; i < queries.rows; ++i) {
      std::vector<uint32_t> cands;
      for (size_t j = 0; j < rerank; ++j)
        if (labels[i * rerank + j] >= 0) cands.push_back(static_cast<uint32_t>(labels[i * rerank + j]));
      codes[i].assign(cands.begin(), cands.begin() + static_cast<std::ptrdiff_t>(std::min(o.k, cands.size())));
      reranked[i] = Rerank(base, queries.row(i), cands, o.k, o.metric);
    }
    const double secs = Since(t);
    rows.push_back({"FAISS IVF-PQ, k-means", RecallAtK(codes, truth, o.k), RecallAtK(reranked, truth, o.k),
                    queries.rows / secs});
  }

  std::printf("\n== m3vdb fashion-mnist: learned index built by `m3vdb build` ==\n");
  std::printf("index: IVF%u, PQ%u (%zu bytes per vector, vs %u exact), nprobe %d, metric %s, %zu queries, "
              "recall@%zu vs brute force\n",
              info.nlist, info.m, info.bytes_per_vector, 4 * schema.dense_dim, schema.index.nprobe,
              o.metric == Metric::kL2 ? "l2" : "ip", queries.rows, o.k);
  std::printf("%-32s %18s %24s %12s\n", "", "recall codes only", "recall top-100 reranked", "queries/s");
  for (const Row& r : rows) {
    char codes[32] = "-";
    if (r.codes_only >= 0) std::snprintf(codes, sizeof codes, "%.4f", r.codes_only);
    std::printf("%-32s %18s %24.4f %12.0f\n", r.name.c_str(), codes, r.reranked, r.qps);
  }
  std::printf("(codes only: the index's own ranking, candidates = top %zu; reranked: top-100 candidates rescored with\n"
              " the exact vectors, m3vdb's default search. FAISS queries/s: one batched search call + the rerank.)\n",
              o.k);
  return 0;
}

}  // namespace m3vdb::tools
