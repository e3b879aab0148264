// net: the HTTP/1.1 server of m3vdb (Boost.Asio + Beast; neither is visible outside net/).
//
// A `Server` accepts connections on I/O threads, reads each request with a header timeout, a
// body timeout and a body limit (413 beyond it), and hands complete requests to `Service`
// (service.h), which holds the whole API. Requests that reach the engine run on a
// `ComputePool` (compute_pool.h); when its bounded queue is full the server answers 503 at
// once instead of queueing without bound. Concurrent searches of a collection are coalesced
// into batched engine calls, so there are more compute threads than cores by default: threads
// waiting to join a batch sleep. /healthz and /metrics are answered on the I/O
// threads, so they respond even under overload. Connections are kept alive between requests
// up to an idle timeout. Every response is logged (one line at info) and counted in /metrics.
//
// Shutdown (`Shutdown`, or SIGTERM/SIGINT with `handle_signals`): the listener closes, idle
// connections are closed, and requests already read are answered (with `Connection: close`)
// before `Wait` returns. A request still running after `shutdown_timeout` has its connection
// closed; its engine call still finishes before `Wait` returns. Training jobs run on threads
// of their own; destroying the server cancels them (they stop at the trainer's next check and
// leave the previous index serving) and joins them. After the destructor the caller can close
// the database: no acknowledged write is lost, and none is acknowledged after it closed.
//
// Ownership: the `Database` (and a `ComputePool` passed in) are borrowed and must outlive the
// server. Thread safety: `Shutdown` may be called from any thread, any number of times; `Wait`
// from any thread but the server's own.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "m3vdb/m3vdb.h"
#include "net/compute_pool.h"

namespace m3vdb::net {

struct ServerOptions {
  std::string host = "127.0.0.1";  // address or host name to listen on ("0.0.0.0": every interface)
  uint16_t port = 8080;            // 0: the system picks a free port (see Server::port())
  std::vector<std::string> api_keys;  // empty: no authentication (see ServiceOptions)
  size_t io_threads = 2;              // threads reading and writing sockets
  size_t compute_threads = 0;         // threads running engine calls; 0: max(32, 4 per hardware thread)
  size_t queue_capacity = 64;         // requests that may wait for a compute thread; more get 503
  size_t search_runners = 1;          // see ServiceOptions
  size_t max_search_batch = 64;       // see ServiceOptions; 1: no coalescing
  size_t max_finished_jobs = 100;     // finished training jobs kept (see ServiceOptions)
  std::chrono::milliseconds job_retention{3'600'000};  // how long a finished training job stays visible
  size_t max_embed_texts = 256;       // see ServiceOptions (POST /embed)
  size_t max_embed_text_bytes = 1u << 20;
  std::string snapshot_dir = {};      // POST /snapshots writes here; empty: disabled (see ServiceOptions)
  size_t max_body_bytes = 64u << 20;  // larger request bodies get 413
  std::chrono::milliseconds header_timeout{10'000};    // to read a request's header
  std::chrono::milliseconds body_timeout{60'000};      // to read its body, and to write a response
  std::chrono::milliseconds idle_timeout{60'000};      // a kept-alive connection waiting for a request
  std::chrono::milliseconds shutdown_timeout{30'000};  // for in-flight requests after Shutdown()
  bool handle_signals = false;  // shut down on SIGTERM or SIGINT (the `m3vdb serve` command)
};

class Server {
 public:
  // Listens on `options.host:options.port` and serves on background threads until shut down.
  // Without `pool`, the server makes its own from `compute_threads` and `queue_capacity`.
  // IOError when the address cannot be bound; InvalidArgument for unusable options.
  static Result<std::unique_ptr<Server>> Start(Database& db, const ServerOptions& options,
                                               ComputePool* pool = nullptr);
  // Shuts down and waits.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The address actually bound (with `port` 0, the port the system picked).
  const std::string& host() const;
  uint16_t port() const;

  // Begins the graceful shutdown described above; returns at once.
  void Shutdown();
  // Blocks until the server has shut down (after `Shutdown` or a signal) and every request it
  // accepted is finished.
  void Wait();

  class Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace m3vdb::net
