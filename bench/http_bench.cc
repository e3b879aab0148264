// http_bench: the C++ side of bench/http_load.sh (which drives the HTTP search load with wrk).
//
//   http_bench ingest  --port P --collection C --format json|b64 [--clients N]   Fashion-MNIST's
//                      60,000 training vectors through POST /documents in batches; prints
//                      vectors/s (request bodies are encoded beforehand, not timed)
//   http_bench queries --out FILE                                  search bodies for wrk, one per line
//   http_bench library --db DIR --collection C --threads N         the same searches through the
//                      embedded library from N threads (the server must be stopped: one process
//                      owns the database), plus library ingest for comparison
//
// Every mode prints one "RESULT key=value ..." line that http_load.sh collects.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <thread>

#include "m3vdb/m3vdb.h"
#include "net/client.h"
#include "tools/fashion_mnist.h"

namespace m3vdb::bench {
namespace {

using Clock = std::chrono::steady_clock;
double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Shortest form that reads back as the same float32 ("0.003921569", "0").
void AppendFloats(const float* values, size_t n, std::string* out) {
  char buffer[32];
  *out += '[';
  for (size_t i = 0; i < n; ++i) {
    if (i) *out += ',';
    auto result = std::to_chars(buffer, buffer + sizeof(buffer), values[i]);
    out->append(buffer, result.ptr);
  }
  *out += ']';
}

std::string DocumentsBody(const tools::Matrix& m, size_t begin, size_t end, bool base64) {
  std::string body = "{\"documents\":[";
  for (size_t i = begin; i < end; ++i) {
    if (i > begin) body += ',';
    body += "{\"id\":\"" + std::to_string(i) + "\",";
    if (base64) {
      body += "\"dense_b64\":\"" + net::EncodeDenseBase64({m.row(i), m.cols}) + "\"}";
    } else {
      body += "\"dense\":";
      AppendFloats(m.row(i), m.cols, &body);
      body += '}';
    }
  }
  return body + "]}";
}

int Fail(const Status& s) {
  std::fprintf(stderr, "http_bench: %s\n", s.ToString().c_str());
  return 1;
}

struct Flags {
  std::string data = tools::kFashionMnistDir;
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::string collection = "fashion_mnist";
  std::string format = "b64";
  size_t batch = 1000;
  std::string out;
  size_t queries = 1000;
  std::string db;
  size_t threads = 1;
  size_t clients = 1;
  double seconds = 10;
  std::string api_key;
};

// Every request body is encoded before the clock starts; `clients` connections send batches
// concurrently (batch i goes to client i % clients).
int Ingest(const Flags& f) {
  auto base = tools::ReadIdxImages(f.data + "/train-images-idx3-ubyte.gz");
  if (!base.ok()) return Fail(base.status());
  const bool base64 = f.format == "b64";
  std::vector<std::string> bodies;
  size_t bytes = 0;
  for (size_t start = 0; start < base->rows; start += f.batch) {
    bodies.push_back(DocumentsBody(*base, start, std::min(base->rows, start + f.batch), base64));
    bytes += bodies.back().size();
  }
  const std::string target = "/collections/" + f.collection + "/documents";
  std::vector<Status> failures(f.clients);
  std::vector<std::thread> clients;
  const auto start = Clock::now();
  for (size_t c = 0; c < f.clients; ++c) {
    clients.emplace_back([&, c] {
      auto client = net::HttpClient::Connect(f.host, f.port, std::chrono::seconds(300));
      if (!client.ok()) return void(failures[c] = client.status());
      if (!f.api_key.empty()) (*client)->SetHeader("Authorization", "Bearer " + f.api_key);
      for (size_t i = c; i < bodies.size(); i += f.clients) {
        auto reply = (*client)->Send("POST", target, bodies[i]);
        if (!reply.ok()) return void(failures[c] = reply.status());
        if (reply->status != 200)
          return void(failures[c] = Status::Internal("HTTP " + std::to_string(reply->status) + ": " + reply->body));
      }
    });
  }
  for (auto& t : clients) t.join();
  const double seconds = Seconds(Clock::now() - start);
  for (const Status& s : failures)
    if (!s.ok()) return Fail(s);
  std::printf("RESULT mode=ingest format=%s clients=%zu vectors=%zu batch=%zu seconds=%.3f vectors_per_s=%.0f "
              "mib_per_batch=%.2f\n",
              f.format.c_str(), f.clients, base->rows, f.batch, seconds, base->rows / seconds,
              bytes / double(1 << 20) / double(bodies.size()));
  return 0;
}

// The first `n` test images as dense queries.
Result<tools::Matrix> Queries(const Flags& f) {
  auto queries = tools::ReadIdxImages(f.data + "/t10k-images-idx3-ubyte.gz");
  if (!queries.ok()) return queries.status();
  queries->rows = std::min(queries->rows, f.queries);
  queries->data.resize(queries->rows * queries->cols);
  return queries;
}

int WriteQueries(const Flags& f) {
  auto queries = Queries(f);
  if (!queries.ok()) return Fail(queries.status());
  std::FILE* out = std::fopen(f.out.c_str(), "w");
  if (!out) return Fail(Status::IOError("cannot write " + f.out));
  for (size_t i = 0; i < queries->rows; ++i) {
    std::string body = "{\"dense\":";
    AppendFloats(queries->row(i), queries->cols, &body);
    body += ",\"top_k\":10}\n";
    std::fputs(body.c_str(), out);
  }
  std::fclose(out);
  return 0;
}

int Library(const Flags& f) {
  auto queries = Queries(f);
  if (!queries.ok()) return Fail(queries.status());
  auto db = Database::Open(Options{}, f.db);
  if (!db.ok()) return Fail(db.status());

  // Ingest through the library: the same batches into a fresh collection (sync on, like the server).
  auto base = tools::ReadIdxImages(f.data + "/train-images-idx3-ubyte.gz");
  if (!base.ok()) return Fail(base.status());
  const std::string scratch = f.collection + "_library_ingest";
  (void)(*db)->DropCollection(scratch);
  CollectionSchema schema;
  schema.dense_dim = static_cast<uint32_t>(base->cols);
  schema.metric = Metric::kL2;
  auto ingest = (*db)->CreateCollection(scratch, schema);
  if (!ingest.ok()) return Fail(ingest.status());
  const auto t_ingest = Clock::now();
  std::vector<Document> batch;
  for (size_t start = 0; start < base->rows; start += f.batch) {
    batch.clear();
    for (size_t i = start; i < std::min(base->rows, start + f.batch); ++i) {
      Document& doc = batch.emplace_back();
      doc.id = std::to_string(i);
      doc.dense.assign(base->row(i), base->row(i) + base->cols);
    }
    Status s = (*ingest)->Upsert(batch);
    if (!s.ok()) return Fail(s);
  }
  const double ingest_s = Seconds(Clock::now() - t_ingest);
  Status dropped = (*db)->DropCollection(scratch);
  if (!dropped.ok()) return Fail(dropped);

  auto collection = (*db)->GetCollection(f.collection);
  if (!collection.ok()) return Fail(collection.status());
  std::vector<Query> qs(queries->rows);
  for (size_t i = 0; i < qs.size(); ++i) qs[i].dense.assign(queries->row(i), queries->row(i) + queries->cols);
  std::atomic<size_t> next{0}, errors{0};
  std::vector<std::vector<double>> latencies(f.threads);
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(f.seconds));
  std::vector<std::thread> threads;
  for (size_t t = 0; t < f.threads; ++t) {
    threads.emplace_back([&, t] {
      while (Clock::now() < deadline) {
        const Query& q = qs[next++ % qs.size()];
        const auto begin = Clock::now();
        auto hits = (*collection)->Search(q, SearchOptions{});
        latencies[t].push_back(Seconds(Clock::now() - begin) * 1000);
        if (!hits.ok() || hits->size() != 10) ++errors;
      }
    });
  }
  for (auto& t : threads) t.join();
  const double elapsed = Seconds(Clock::now() - start);
  std::vector<double> all;
  for (const auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  auto percentile = [&](double p) { return all.empty() ? 0.0 : all[std::min(all.size() - 1, size_t(p / 100 * all.size()))]; };
  std::printf("RESULT mode=library threads=%zu requests=%zu seconds=%.3f rps=%.1f p50_ms=%.2f p99_ms=%.2f errors=%zu "
              "ingest_vectors_per_s=%.0f\n",
              f.threads, all.size(), elapsed, all.size() / elapsed, percentile(50), percentile(99), errors.load(),
              base->rows / ingest_s);
  return 0;
}

}  // namespace
}  // namespace m3vdb::bench

int main(int argc, char** argv) {
  using m3vdb::bench::Flags;
  CLI::App app{"HTTP API load harness (see bench/http_load.sh)"};
  app.require_subcommand(1);
  Flags f;
  auto* ingest = app.add_subcommand("ingest", "Fashion-MNIST training vectors through POST /documents");
  ingest->add_option("--port", f.port)->required();
  ingest->add_option("--host", f.host);
  ingest->add_option("--collection", f.collection);
  ingest->add_option("--format", f.format)->check(CLI::IsMember({"json", "b64"}));
  ingest->add_option("--batch", f.batch);
  ingest->add_option("--api-key", f.api_key);
  ingest->add_option("--clients", f.clients, "concurrent connections")->check(CLI::PositiveNumber);
  auto* queries = app.add_subcommand("queries", "Write search bodies (one JSON per line) for wrk");
  queries->add_option("--out", f.out)->required();
  queries->add_option("--count", f.queries);
  auto* library = app.add_subcommand("library", "Library ingest, then the same searches from N threads");
  library->add_option("--db", f.db)->required();
  library->add_option("--collection", f.collection);
  library->add_option("--threads", f.threads);
  library->add_option("--seconds", f.seconds);
  library->add_option("--batch", f.batch);
  library->add_option("--count", f.queries);
  for (auto* sub : {ingest, queries, library}) sub->add_option("--data", f.data, "Fashion-MNIST directory");
  CLI11_PARSE(app, argc, argv);
  if (ingest->parsed()) return m3vdb::bench::Ingest(f);
  if (queries->parsed()) return m3vdb::bench::WriteQueries(f);
  return m3vdb::bench::Library(f);
}
