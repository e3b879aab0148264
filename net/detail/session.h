// One HTTP connection (Beast): reads requests one after another with the server's timeouts and
// body limit, hands each to the Service (inline for lightweight routes, otherwise on the
// compute pool), writes the response, and keeps the connection alive when the client asks.
// Every asynchronous step runs on the connection's strand.
#pragma once

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>

#include "net/compute_pool.h"
#include "net/server.h"
#include "net/service.h"

namespace m3vdb::net::detail {

class Session;

// The live sessions, so that shutdown can reach each of them.
class SessionRegistry {
 public:
  void Add(const std::shared_ptr<Session>& session);
  void Remove(Session* session);
  std::vector<std::shared_ptr<Session>> Snapshot() const;
  // `on_empty` runs (on the thread removing the last session, or at once) whenever the
  // registry is or becomes empty after this call.
  void NotifyWhenEmpty(std::function<void()> on_empty);

 private:
  mutable std::mutex mu_;
  std::map<Session*, std::weak_ptr<Session>> sessions_;
  std::function<void()> on_empty_;
};

// What the listener and every session share; owned by the server.
struct ServerContext {
  ServerContext(Database& db, const ServerOptions& options, ComputePool& pool)
      : options(options),
        service(db, ServiceOptions{options.api_keys, options.search_runners, options.max_search_batch,
                                  options.max_finished_jobs, options.job_retention, options.max_embed_texts,
                                  options.max_embed_text_bytes, options.snapshot_dir}),
        pool(pool) {}
  const ServerOptions options;
  const Service service;
  ComputePool& pool;
  std::atomic<bool> stopping{false};
  SessionRegistry sessions;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(boost::asio::ip::tcp::socket socket, ServerContext& context);
  ~Session();

  void Start();
  // Shutdown: an idle connection closes now; one with a request in progress closes after
  // answering it. Thread-safe.
  void StopGracefully();
  // Closes the connection now. Thread-safe.
  void StopNow();

 private:
  enum class Phase { kIdle, kReading, kHandling, kWriting, kClosed };
  using Clock = std::chrono::steady_clock;

  void WaitForRequest();
  void OnFirstBytes(boost::beast::error_code ec, size_t bytes);
  void ReadHeader();
  void OnHeader(boost::beast::error_code ec);
  void ReadBody();
  void OnBody(boost::beast::error_code ec);
  void OnReadError(boost::beast::error_code ec);
  void Dispatch();
  void Write(Response response);
  void OnWrite(boost::beast::error_code ec);
  // Answers a request that cannot be read to its end (too large, malformed) and closes.
  void Reject(Response response);
  void FillRequest();
  void Close();
  // Closes after the peer stops sending (bounded), so that a client still sending a body we
  // refused reads our answer instead of a connection reset.
  void LingerAndClose();
  void Discard();

  ServerContext& context_;
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  boost::beast::http::response<boost::beast::http::empty_body> continue_;
  boost::beast::http::response<boost::beast::http::string_body> response_;
  std::array<char, 4096> discard_;
  Request request_;
  bool keep_alive_ = false;
  unsigned version_ = 11;
  Phase phase_ = Phase::kIdle;
  Clock::time_point started_;
};

}  // namespace m3vdb::net::detail
