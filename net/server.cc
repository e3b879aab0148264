#include "net/server.h"

#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <csignal>
#include <mutex>
#include <optional>
#include <thread>

#include "net/detail/listener.h"
#include "net/detail/session.h"

namespace m3vdb::net {

namespace asio = boost::asio;

class Server::Impl {
 public:
  Impl(Database& db, const ServerOptions& options, ComputePool* pool)
      : own_pool_(pool ? nullptr
                       : std::make_unique<ComputePool>(
                             options.compute_threads
                                 ? options.compute_threads
                                 : std::max<size_t>(32, 4 * size_t{std::max(1u, std::thread::hardware_concurrency())}),
                             options.queue_capacity)),
        context_(db, options, pool ? *pool : *own_pool_),
        control_(asio::make_strand(io_)),
        drain_deadline_(control_) {}

  Status Listen() {
    auto listener = detail::Listener::Open(io_, context_.options.host, context_.options.port, context_);
    if (!listener.ok()) return listener.status();
    listener_ = std::move(*listener);
    host_ = listener_->local_endpoint().address().to_string();
    port_ = listener_->local_endpoint().port();
    return Status::OK();
  }

  void Run() {
    listener_->Start();
    if (context_.options.handle_signals) {
      signals_.emplace(io_, SIGINT, SIGTERM);
      signals_->async_wait([this](boost::beast::error_code ec, int signal) {
        if (ec) return;
        spdlog::info("received signal {}, shutting down", signal);
        BeginShutdown();
      });
    }
    const size_t n = std::max<size_t>(1, context_.options.io_threads);
    for (size_t i = 0; i < n; ++i) threads_.emplace_back([this] { io_.run(); });
    spdlog::info("listening on {}:{} ({} I/O threads, {} compute threads, queue {})", host_, port_, n,
                 context_.pool.threads(), context_.pool.queue_capacity());
  }

  // Thread-safe: the work happens on the control strand.
  void RequestShutdown() {
    asio::post(control_, [this] { BeginShutdown(); });
  }

  void Wait() {
    std::lock_guard lock(wait_mu_);
    for (std::thread& t : threads_)
      if (t.joinable()) t.join();
    // Every engine call the sessions started has finished: each held the I/O threads.
    if (own_pool_) own_pool_->Stop();
  }

  const std::string& host() const { return host_; }
  uint16_t port() const { return port_; }

 private:
  // Runs on the control strand (or the signal handler, then re-posted there).
  void BeginShutdown() {
    if (!control_.running_in_this_thread()) return RequestShutdown();
    if (context_.stopping.exchange(true)) return;
    listener_->Stop();
    if (signals_) signals_->cancel();
    drain_deadline_.expires_after(context_.options.shutdown_timeout);
    drain_deadline_.async_wait([this](boost::beast::error_code ec) {
      if (ec) return;  // every connection finished in time
      auto live = context_.sessions.Snapshot();
      spdlog::warn("shutdown timeout: closing {} connection(s) with requests still in progress", live.size());
      for (const auto& session : live) session->StopNow();
    });
    for (const auto& session : context_.sessions.Snapshot()) session->StopGracefully();
    context_.sessions.NotifyWhenEmpty([this] { asio::post(control_, [this] { drain_deadline_.cancel(); }); });
  }

  asio::io_context io_;
  std::unique_ptr<ComputePool> own_pool_;
  detail::ServerContext context_;
  asio::strand<asio::io_context::executor_type> control_;
  asio::steady_timer drain_deadline_;
  std::optional<asio::signal_set> signals_;
  std::shared_ptr<detail::Listener> listener_;
  std::vector<std::thread> threads_;
  std::mutex wait_mu_;
  std::string host_;
  uint16_t port_ = 0;
};

Result<std::unique_ptr<Server>> Server::Start(Database& db, const ServerOptions& options, ComputePool* pool) {
  if (options.max_body_bytes == 0) return Status::InvalidArgument("max_body_bytes must be > 0");
  auto impl = std::make_unique<Impl>(db, options, pool);
  M3VDB_RETURN_IF_ERROR(impl->Listen());
  impl->Run();
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() {
  Shutdown();
  Wait();
}

const std::string& Server::host() const { return impl_->host(); }
uint16_t Server::port() const { return impl_->port(); }
void Server::Shutdown() { impl_->RequestShutdown(); }
void Server::Wait() { impl_->Wait(); }

}  // namespace m3vdb::net
