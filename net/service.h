// net: the HTTP API of m3vdb, without sockets.
//
// `Service` is the whole JSON API as a function from a request that has been read in full to
// the response to send: it checks the API key, routes by method and path, decodes the JSON
// body, calls the engine and encodes the answer or the error. The socket side (`Server`,
// server.h) only reads requests, hands them to `Handle` and writes what it returns, so every
// route and every error case can be exercised here without a network.
//
// Errors are JSON `{"error":{"code":"invalid_argument","message":"..."}}`; the engine's status
// codes map to HTTP codes through one table (detail/http_status.cc). `Handle` never throws.
//
// The `Database` is borrowed and must outlive the service; destroying the service cancels
// running training jobs and waits for their threads. Thread safety: every method may be
// called from any number of threads at once.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "m3vdb/m3vdb.h"

namespace m3vdb::net {

namespace detail {
class Metrics;
struct EngineMetrics;
class SearchBatcher;
class TrainJobs;
}

// One HTTP request as the API sees it, independent of any socket.
struct Request {
  std::string method;         // "GET", "PUT", "POST", "DELETE", ...
  std::string target;         // path and optional query string as sent: "/collections/a%20b?x=1"
  std::string content_type;   // the Content-Type header, "" when absent
  std::string authorization;  // the Authorization header, "" when absent
  std::string body;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers (Allow, WWW-Authenticate)
};

struct ServiceOptions {
  // Accepted API keys. Empty: no authentication. Otherwise every route except GET /healthz
  // needs `Authorization: Bearer <key>`; keys are compared in constant time.
  std::vector<std::string> api_keys;
  // Searches of one collection (with equal options) that run at once; more concurrent ones
  // wait and are answered together by one batched engine call. One batch at a time suits an
  // exact dense index: the batch's GEMM is bound by one pass over the stored vectors.
  size_t search_runners = 1;
  // Most searches answered by one batched call; 1 turns coalescing off.
  size_t max_search_batch = 64;
  // Training jobs (POST /collections/{name}/train): finished jobs stay visible at
  // GET /jobs/{id} for `job_retention`, and at most `max_finished_jobs` of them are kept.
  size_t max_finished_jobs = 100;
  std::chrono::milliseconds job_retention{3'600'000};
  // POST /embed: most texts per request and most bytes per text (413 beyond).
  size_t max_embed_texts = 256;
  size_t max_embed_text_bytes = 1 << 20;
  // POST /snapshots writes checkpoints into subdirectories of this directory (created when
  // missing). Empty: snapshots are disabled and the route answers 422 failed_precondition.
  std::string snapshot_dir = {};
};

// The JSON error response for an engine status (its code picks the HTTP code).
Response ErrorResponse(const Status& status);
// The JSON error response for a protocol-level error the engine has no code for
// (e.g. 401 "unauthenticated", 415 "unsupported_media_type").
Response ErrorResponse(int http_status, std::string_view code, std::string_view message);

class Service {
 public:
  Service(Database& db, ServiceOptions options);
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // The answer to `request`. Blocking: it runs the engine call (a search, a batch upsert);
  // training is the exception: it runs on a job thread of its own and the answer is 202.
  // POST /snapshots blocks for the checkpoint (a flush and hard links: usually well under a
  // second, longer with a large unflushed write buffer).
  Response Handle(const Request& request) const;

  // True when `request` is answered in microseconds without the engine's heavy paths
  // (/healthz, /metrics, GET /jobs/{id}): the server answers these on its I/O threads even when the compute
  // pool is full.
  bool IsLightweight(const Request& request) const;

  // Records one finished exchange: request counters and latency histogram for /metrics, and
  // one log line at info level (method, path, status, milliseconds). The server calls it for
  // every response it writes, including those it makes itself (413, 503). Metrics label
  // requests by route pattern ("/collections/{name}/search"), never by raw path.
  void RecordExchange(const Request& request, int status, double seconds) const;

 private:
  detail::EngineMetrics CollectMetrics() const;

  Database& db_;
  ServiceOptions options_;
  std::unique_ptr<detail::Metrics> metrics_;
  std::unique_ptr<detail::SearchBatcher> searches_;
  mutable std::mutex snapshot_mu_;  // POST /snapshots: one checkpoint at a time
  // Declared last, destroyed first: running training jobs are cancelled and joined when the
  // service goes away, before its owner closes the database.
  std::unique_ptr<detail::TrainJobs> jobs_;
};

}  // namespace m3vdb::net
