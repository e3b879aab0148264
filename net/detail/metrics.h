// Prometheus metrics of the HTTP API: requests by route, method and status; request latency
// histograms by route; and what the engine holds at scrape time: documents and dense index
// generation per collection, training jobs by state, search batching.
// Thread-safe: `Record` and `Render` may run concurrently from any threads.
#pragma once

#include <array>
#include <optional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "m3vdb/m3vdb.h"

namespace m3vdb::net::detail {

// The engine's side of a scrape, read when /metrics is asked for.
struct EngineMetrics {
  struct Collection {
    std::string name;
    uint64_t documents = 0;
    IndexInfo index;
  };
  std::vector<Collection> collections;
  uint64_t search_calls = 0;  // engine calls made for dense searches (see SearchBatcher)
  uint64_t searches = 0;      // the searches they answered
  std::vector<std::pair<std::string, size_t>> jobs_by_state;  // ("running", 1), ...
};

class Metrics {
 public:
  // Upper bounds of the latency histogram buckets, in seconds (+Inf is implied).
  static constexpr std::array<double, 14> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                      0.1,    0.25,  0.5,    1,     2.5,  5,     10};

  // `route` is a bounded label (the route pattern), never a raw path.
  void Record(std::string_view method, std::string_view route, int status, double seconds);

  // The text exposition format (version 0.0.4).
  std::string Render(const EngineMetrics& engine) const;

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
