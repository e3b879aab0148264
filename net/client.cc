#include "net/client.h"

#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <optional>

#include "net/detail/base64.h"

namespace m3vdb::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

std::string HttpReply::Header(std::string_view name) const {
  for (const auto& [key, value] : headers)
    if (beast::iequals(key, name)) return value;
  return "";
}

class HttpClient::Impl {
 public:
  Impl(std::string host, uint16_t port, std::chrono::milliseconds timeout)
      : host_(std::move(host)), port_(port), timeout_(timeout) {}

  Status Connect() {
    beast::error_code ec;
    socket_.emplace(io_);
    tcp::resolver resolver(io_);
    auto endpoints = resolver.resolve(host_, std::to_string(port_), ec);
    if (!ec) asio::connect(*socket_, endpoints, ec);
    if (ec) {
      socket_.reset();
      return Status::IOError("cannot connect to " + host_ + ":" + std::to_string(port_) + ": " + ec.message());
    }
    socket_->set_option(tcp::no_delay(true), ec);
    timeval tv{static_cast<time_t>(timeout_.count() / 1000), static_cast<suseconds_t>(timeout_.count() % 1000 * 1000)};
    ::setsockopt(socket_->native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(socket_->native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    buffer_.clear();
    return Status::OK();
  }

  Result<HttpReply> Send(std::string_view method, std::string_view target, std::string_view body,
                         std::string_view content_type) {
    http::request<http::string_body> request;
    request.method_string(method);  // also methods Beast does not know, to test the server's 405
    request.target(target);
    request.version(11);
    request.set(http::field::host, host_);
    for (const auto& [name, value] : headers_) request.set(name, value);
    if (!body.empty()) {
      if (!content_type.empty()) request.set(http::field::content_type, content_type);
      request.body() = std::string(body);
    }
    request.keep_alive(true);
    request.prepare_payload();
    return Exchange([&](beast::error_code& ec) { http::write(*socket_, request, ec); });
  }

  Result<HttpReply> SendRaw(std::string_view bytes) {
    return Exchange([&](beast::error_code& ec) { asio::write(*socket_, asio::buffer(bytes.data(), bytes.size()), ec); });
  }

  std::vector<std::pair<std::string, std::string>> headers_;

 private:
  template <class WriteFn>
  Result<HttpReply> Exchange(WriteFn write) {
    if (!socket_) M3VDB_RETURN_IF_ERROR(Connect());
    beast::error_code ec;
    write(ec);
    http::response_parser<http::string_body> parser;
    parser.body_limit(std::numeric_limits<uint64_t>::max());
    if (!ec) http::read(*socket_, buffer_, parser, ec);
    if (ec) {
      socket_.reset();
      return Status::IOError("HTTP exchange with " + host_ + ":" + std::to_string(port_) + " failed: " + ec.message());
    }
    auto& message = parser.get();
    HttpReply reply;
    reply.status = static_cast<int>(message.result_int());
    reply.keep_alive = message.keep_alive();
    for (const auto& field : message) reply.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    reply.body = std::move(message.body());
    if (!reply.keep_alive) socket_.reset();
    return reply;
  }

  asio::io_context io_;
  std::optional<tcp::socket> socket_;
  beast::flat_buffer buffer_;
  std::string host_;
  uint16_t port_;
  std::chrono::milliseconds timeout_;
};

Result<std::unique_ptr<HttpClient>> HttpClient::Connect(const std::string& host, uint16_t port,
                                                        std::chrono::milliseconds timeout) {
  auto impl = std::make_unique<Impl>(host, port, timeout);
  M3VDB_RETURN_IF_ERROR(impl->Connect());
  return std::unique_ptr<HttpClient>(new HttpClient(std::move(impl)));
}

HttpClient::HttpClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpClient::~HttpClient() = default;

void HttpClient::SetHeader(std::string name, std::string value) {
  impl_->headers_.emplace_back(std::move(name), std::move(value));
}

Result<HttpReply> HttpClient::Send(std::string_view method, std::string_view target, std::string_view body,
                                   std::string_view content_type) {
  return impl_->Send(method, target, body, content_type);
}

Result<HttpReply> HttpClient::SendRaw(std::string_view bytes) { return impl_->SendRaw(bytes); }

std::string EncodeDenseBase64(std::span<const float> values) { return detail::EncodeFloatsBase64(values); }

}  // namespace m3vdb::net
