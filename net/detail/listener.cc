#include "net/detail/listener.h"

#include <spdlog/spdlog.h>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/strand.hpp>

namespace m3vdb::net::detail {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

Listener::Listener(asio::io_context& io, ServerContext& context)
    : io_(io), context_(context), strand_(asio::make_strand(io)), acceptor_(strand_), retry_(strand_) {}

Result<std::shared_ptr<Listener>> Listener::Open(asio::io_context& io, const std::string& host, uint16_t port,
                                                 ServerContext& context) {
  std::shared_ptr<Listener> listener(new Listener(io, context));
  const std::string where = host + ":" + std::to_string(port);
  boost::beast::error_code ec;
  tcp::resolver resolver(io);
  auto endpoints = resolver.resolve(host, std::to_string(port), tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || endpoints.empty())
    return Status::InvalidArgument("cannot resolve listen address " + where + ": " + ec.message());
  const tcp::endpoint endpoint = endpoints.begin()->endpoint();
  tcp::acceptor& acceptor = listener->acceptor_;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Status::IOError("cannot listen on " + where + ": " + ec.message());
  return listener;
}

tcp::endpoint Listener::local_endpoint() const {
  boost::beast::error_code ignored;
  return acceptor_.local_endpoint(ignored);
}

void Listener::Start() {
  asio::dispatch(strand_, [self = shared_from_this()] { self->Accept(); });
}

void Listener::Stop() {
  asio::dispatch(strand_, [self = shared_from_this()] {
    boost::beast::error_code ignored;
    self->acceptor_.close(ignored);
    self->retry_.cancel();
  });
}

void Listener::Accept() {
  acceptor_.async_accept(asio::make_strand(io_), [self = shared_from_this()](boost::beast::error_code ec, tcp::socket socket) {
    self->OnAccept(ec, std::move(socket));
  });
}

void Listener::OnAccept(boost::beast::error_code ec, tcp::socket socket) {
  if (!acceptor_.is_open() || ec == asio::error::operation_aborted) return;  // stopped
  if (ec) {
    spdlog::warn("accept failed: {}; retrying in 100 ms", ec.message());
    retry_.expires_after(std::chrono::milliseconds(100));
    retry_.async_wait([self = shared_from_this()](boost::beast::error_code wait_ec) {
      if (!wait_ec) self->Accept();
    });
    return;
  }
  if (!context_.stopping) {
    boost::beast::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    std::make_shared<Session>(std::move(socket), context_)->Start();
  }
  Accept();
}

}  // namespace m3vdb::net::detail
