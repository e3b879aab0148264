// net: a small blocking HTTP/1.1 client for m3vdb's own tests, benchmarks and tools.
//
// One `HttpClient` holds one keep-alive connection and sends one request at a time; when the
// server closed the connection (`Connection: close`), the next request opens a new one.
// Socket reads and writes time out. Not thread-safe: use one client per thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "m3vdb/status.h"

namespace m3vdb::net {

struct HttpReply {
  int status = 0;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  bool keep_alive = false;
  // The value of header `name` (case-insensitive), "" when absent.
  std::string Header(std::string_view name) const;
};

class HttpClient {
 public:
  // Connects to `host:port`. IOError when the connection cannot be made.
  static Result<std::unique_ptr<HttpClient>> Connect(const std::string& host, uint16_t port,
                                                     std::chrono::milliseconds timeout = std::chrono::seconds(30));
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // A header sent with every later request (e.g. "Authorization", "Bearer <key>").
  void SetHeader(std::string name, std::string value);

  // Sends one request and reads the whole response. A non-empty `body` is sent with
  // `content_type`. IOError when the connection fails or times out.
  Result<HttpReply> Send(std::string_view method, std::string_view target, std::string_view body = {},
                         std::string_view content_type = "application/json");

  // Writes `bytes` as they are (a hand-made, possibly malformed request) and reads one response.
  Result<HttpReply> SendRaw(std::string_view bytes);

  class Impl;

 private:
  explicit HttpClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Little-endian float32 values as base64: the "dense_b64" form of a dense vector.
std::string EncodeDenseBase64(std::span<const float> values);

}  // namespace m3vdb::net
