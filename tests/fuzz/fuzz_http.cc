// Fuzz target: HTTP request parsing and routing. The input is the raw bytes of one request as
// a client would send them; Beast's parser reads it exactly as the server's session does (same
// body limit), and the parsed request goes through the whole API (`net::Service`: auth,
// routing, JSON decoding, the engine) against a real database in a temporary directory.
// Invariants: nothing crashes or throws, every response is a valid status with a JSON body.
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "m3vdb/m3vdb.h"
#include "net/service.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

namespace http = boost::beast::http;
using namespace m3vdb;

struct World {
  fuzz::ScratchDir dir{"http"};
  std::unique_ptr<Database> db;
  std::unique_ptr<net::Service> service;

  World() {
    spdlog::set_level(spdlog::level::off);  // one log line per request would dominate the run
    Options options;
    options.sync = false;  // fuzzing measures parsing, not fsync
    options.limits.max_batch_documents = 64;
    options.limits.max_dense_dim = 1024;
    auto opened = Database::Open(options, dir.path());
    if (!opened.ok()) fuzz::Fail("cannot open the fuzz database: " + opened.status().ToString());
    db = std::move(*opened);
    CollectionSchema schema;
    schema.dense_dim = 4;
    schema.sparse = true;
    schema.colbert = true;
    (void)db->CreateCollection("c", schema);
    net::ServiceOptions so;
    so.api_keys = {"k"};
    service = std::make_unique<net::Service>(*db, so);
  }

  // Keeps the database small: collections the inputs created are dropped again.
  void Trim() {
    for (const auto& info : db->ListCollections())
      if (info.name != "c") (void)db->DropCollection(info.name);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World world;
  http::request_parser<http::string_body> parser;
  parser.header_limit(8 * 1024);
  parser.body_limit(64 * 1024);  // small here; the server's limit is a configuration value
  parser.eager(true);
  boost::beast::error_code ec;
  size_t used = 0;
  while (used < size && !parser.is_done()) {
    size_t n = parser.put(boost::asio::buffer(data + used, size - used), ec);
    if (ec == http::error::need_more) ec = {};
    if (ec || n == 0) break;
    used += n;
  }
  if (!parser.is_header_done()) return 0;  // the session answers 400 and closes

  const auto& message = parser.get();
  net::Request request;
  request.method = std::string(message.method_string());
  request.target = std::string(message.target());
  request.content_type = std::string(message[http::field::content_type]);
  request.authorization = std::string(message[http::field::authorization]);
  request.body = parser.is_done() ? message.body() : std::string();

  (void)world.service->IsLightweight(request);
  net::Response response = world.service->Handle(request);
  if (response.status < 200 || response.status > 599) fuzz::Fail("bad HTTP status " + std::to_string(response.status));
  if (response.content_type == "application/json") {
    auto body = nlohmann::json::parse(response.body, nullptr, /*allow_exceptions=*/false);
    if (body.is_discarded()) fuzz::Fail("response body is not JSON: " + response.body.substr(0, 200));
  }
  world.service->RecordExchange(request, response.status, 0.001);
  world.Trim();
  return 0;
}
