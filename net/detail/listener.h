// Accepts connections and starts a Session for each, each on its own strand.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <memory>

#include "net/detail/session.h"

namespace m3vdb::net::detail {

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  // Binds and listens; IOError naming the address when that fails.
  static Result<std::shared_ptr<Listener>> Open(boost::asio::io_context& io, const std::string& host, uint16_t port,
                                                ServerContext& context);

  boost::asio::ip::tcp::endpoint local_endpoint() const;
  void Start();
  // Closes the acceptor; the pending accept ends. Call on the listener's strand (via Stop).
  void Stop();

 private:
  Listener(boost::asio::io_context& io, ServerContext& context);
  void Accept();
  void OnAccept(boost::beast::error_code ec, boost::asio::ip::tcp::socket socket);

  boost::asio::io_context& io_;
  ServerContext& context_;
  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer retry_;  // backs off after accept errors such as EMFILE
};

}  // namespace m3vdb::net::detail
