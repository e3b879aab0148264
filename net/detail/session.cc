#include "net/detail/session.h"

#include <spdlog/spdlog.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>

namespace m3vdb::net::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

constexpr size_t kHeaderLimit = 64 << 10;
constexpr auto kLingerTime = std::chrono::seconds(2);

bool IsHttpParseError(const beast::error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_target).category();
}

}  // namespace

// ---- registry -----------------------------------------------------------------------------

void SessionRegistry::Add(const std::shared_ptr<Session>& session) {
  std::lock_guard lock(mu_);
  sessions_[session.get()] = session;
}

void SessionRegistry::Remove(Session* session) {
  std::function<void()> on_empty;
  {
    std::lock_guard lock(mu_);
    sessions_.erase(session);
    if (sessions_.empty()) on_empty = std::move(on_empty_);
  }
  if (on_empty) on_empty();
}

std::vector<std::shared_ptr<Session>> SessionRegistry::Snapshot() const {
  std::vector<std::shared_ptr<Session>> live;
  std::lock_guard lock(mu_);
  for (const auto& [raw, weak] : sessions_)
    if (auto session = weak.lock()) live.push_back(std::move(session));
  return live;
}

void SessionRegistry::NotifyWhenEmpty(std::function<void()> on_empty) {
  {
    std::lock_guard lock(mu_);
    if (!sessions_.empty()) {
      on_empty_ = std::move(on_empty);
      return;
    }
  }
  on_empty();
}

// ---- session ------------------------------------------------------------------------------

Session::Session(asio::ip::tcp::socket socket, ServerContext& context)
    : context_(context), stream_(std::move(socket)) {}

Session::~Session() { context_.sessions.Remove(this); }

void Session::Start() {
  context_.sessions.Add(shared_from_this());
  asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->WaitForRequest(); });
}

void Session::StopGracefully() {
  asio::post(stream_.get_executor(), [self = shared_from_this()] {
    if (self->phase_ == Phase::kIdle) self->stream_.cancel();  // the pending read ends; OnFirstBytes closes
  });
}

void Session::StopNow() {
  asio::post(stream_.get_executor(), [self = shared_from_this()] { self->Close(); });
}

// A kept-alive connection waits for the first byte of its next request with the idle timeout;
// from then on the header must arrive within the header timeout.
void Session::WaitForRequest() {
  if (context_.stopping) return Close();
  phase_ = Phase::kIdle;
  if (buffer_.size() > 0) return ReadHeader();  // the client pipelined the next request
  stream_.expires_after(context_.options.idle_timeout);
  stream_.async_read_some(buffer_.prepare(4096), [self = shared_from_this()](beast::error_code ec, size_t bytes) {
    self->OnFirstBytes(ec, bytes);
  });
}

void Session::OnFirstBytes(beast::error_code ec, size_t bytes) {
  if (ec) return Close();  // closed by the peer, idle timeout, or shutdown
  buffer_.commit(bytes);
  ReadHeader();
}

void Session::ReadHeader() {
  phase_ = Phase::kReading;
  parser_.emplace();
  parser_->header_limit(kHeaderLimit);
  parser_->body_limit(context_.options.max_body_bytes);
  stream_.expires_after(context_.options.header_timeout);
  http::async_read_header(stream_, buffer_, *parser_,
                          [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
}

// A failed read: 413 for a body over the limit, 400 for malformed HTTP; otherwise (the peer
// left, a timeout, shutdown) the connection just closes.
void Session::OnReadError(beast::error_code ec) {
  if (ec == http::error::body_limit) {
    return Reject(ErrorResponse(Status::ResourceExhausted(
        "the request body is larger than the limit of " + std::to_string(context_.options.max_body_bytes) + " bytes")));
  }
  if (IsHttpParseError(ec) && ec != http::error::end_of_stream && ec != http::error::partial_message)
    return Reject(ErrorResponse(Status::InvalidArgument("malformed HTTP request: " + ec.message())));
  Close();
}

void Session::OnHeader(beast::error_code ec) {
  if (ec) return OnReadError(ec);
  auto& header = parser_->get();
  if (beast::iequals(header[http::field::expect], "100-continue")) {
    // The client waits for this before sending its body (curl does for bodies over 1 KiB).
    continue_ = {http::status::continue_, header.version()};
    stream_.expires_after(context_.options.body_timeout);
    return http::async_write(stream_, continue_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->Close();
      self->ReadBody();
    });
  }
  ReadBody();
}

void Session::ReadBody() {
  stream_.expires_after(context_.options.body_timeout);
  http::async_read(stream_, buffer_, *parser_,
                   [self = shared_from_this()](beast::error_code ec, size_t) { self->OnBody(ec); });
}

void Session::OnBody(beast::error_code ec) {
  if (ec) return OnReadError(ec);
  Dispatch();
}

void Session::FillRequest() {
  auto& message = parser_->get();
  request_.method = std::string(message.method_string());
  request_.target = std::string(message.target());
  request_.content_type = std::string(message[http::field::content_type]);
  request_.authorization = std::string(message[http::field::authorization]);
  request_.body = parser_->is_done() ? std::move(message.body()) : std::string();
  keep_alive_ = message.keep_alive();
  version_ = message.version();
}

// Engine work goes to the compute pool; when its queue is full the answer is 503 at once.
void Session::Dispatch() {
  FillRequest();
  started_ = Clock::now();
  phase_ = Phase::kHandling;
  stream_.expires_never();
  if (context_.service.IsLightweight(request_)) return Write(context_.service.Handle(request_));
  auto self = shared_from_this();
  auto work = asio::make_work_guard(stream_.get_executor());  // keeps the I/O threads until we answer
  const bool queued = context_.pool.TrySubmit([self, work] {
    Response response = self->context_.service.Handle(self->request_);
    asio::post(self->stream_.get_executor(),
               [self, response = std::move(response)]() mutable { self->Write(std::move(response)); });
  });
  if (!queued) {
    Response busy = ErrorResponse(Status::Unavailable(
        "the server is overloaded: " + std::to_string(context_.pool.queue_capacity()) +
        " requests are already waiting for a compute thread; retry later"));
    busy.headers.emplace_back("Retry-After", "1");
    Write(std::move(busy));
  }
}

void Session::Reject(Response response) {
  FillRequest();
  started_ = Clock::now();
  keep_alive_ = false;
  Write(std::move(response));
}

void Session::Write(Response response) {
  if (phase_ == Phase::kClosed) {  // closed at the shutdown deadline while the engine worked
    spdlog::warn("{} {}: connection closed before the response ({}) could be written", request_.method,
                 request_.target, response.status);
    return;
  }
  phase_ = Phase::kWriting;
  response_ = {};
  response_.version(version_);
  response_.result(static_cast<unsigned>(response.status));
  response_.set(http::field::server, "m3vdb");
  response_.set(http::field::content_type, response.content_type);
  for (const auto& [name, value] : response.headers) response_.set(name, value);
  response_.body() = std::move(response.body);
  response_.keep_alive(keep_alive_ && !context_.stopping);
  response_.prepare_payload();
  stream_.expires_after(context_.options.body_timeout);
  http::async_write(stream_, response_,
                    [self = shared_from_this()](beast::error_code ec, size_t) { self->OnWrite(ec); });
}

void Session::OnWrite(beast::error_code ec) {
  const double seconds = std::chrono::duration<double>(Clock::now() - started_).count();
  context_.service.RecordExchange(request_, static_cast<int>(response_.result_int()), seconds);
  if (ec) return Close();
  if (response_.keep_alive()) return WaitForRequest();
  // The request was not read to its end when it was refused (413, malformed): drain first.
  if (!parser_ || !parser_->is_done()) return LingerAndClose();
  Close();
}

void Session::LingerAndClose() {
  beast::error_code ignored;
  stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  stream_.expires_after(kLingerTime);  // one deadline for the whole drain
  Discard();
}

void Session::Discard() {
  stream_.async_read_some(asio::buffer(discard_), [self = shared_from_this()](beast::error_code ec, size_t) {
    if (ec) return self->Close();  // the peer finished (or the linger time is over)
    self->Discard();
  });
}

void Session::Close() {
  if (phase_ == Phase::kClosed) return;
  phase_ = Phase::kClosed;
  beast::error_code ignored;
  stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  stream_.close();
}

}  // namespace m3vdb::net::detail
