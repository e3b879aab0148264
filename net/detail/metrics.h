// Prometheus metrics of the HTTP API: requests by route, method and status; request latency
// histograms by route; documents per collection (read from the engine at scrape time).
// Thread-safe: `Record` and `Render` may run concurrently from any threads.
#pragma once

#include <array>
#include <optional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "m3vdb/m3vdb.h"

namespace m3vdb::net::detail {

class Metrics {
 public:
  // Upper bounds of the latency histogram buckets, in seconds (+Inf is implied).
  static constexpr std::array<double, 14> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                      0.1,    0.25,  0.5,    1,     2.5,  5,     10};

  // `route` is a bounded label (the route pattern), never a raw path.
  void Record(std::string_view method, std::string_view route, int status, double seconds);

  // The text exposition format (version 0.0.4). `search_calls` and `searches`: engine calls
  // made for dense searches and the searches they answered (see SearchBatcher).
  std::string Render(const std::vector<CollectionInfo>& collections, uint64_t search_calls, uint64_t searches) const;

 private:
  struct Histogram {
    std::array<uint64_t, kBuckets.size()> buckets{};  // non-cumulative counts per bucket
    uint64_t count = 0;
    double sum = 0;
  };
  mutable std::mutex mu_;
  std::map<std::tuple<std::string, std::string, int>, uint64_t> requests_;  // (route, method, status)
  std::map<std::string, Histogram> latency_;                                 // by route
};

// The embedder's counters (process totals of the database's shared model): texts, tokens and
// seconds spent encoding, so rate(tokens) / rate(seconds) is tokens per second of encoding.
// Empty when no model is configured.
std::string RenderModelMetrics(const std::optional<ModelInfo>& model);

}  // namespace m3vdb::net::detail
