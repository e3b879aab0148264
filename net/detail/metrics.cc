#include "net/detail/metrics.h"

#include <algorithm>
#include <charconv>

namespace m3vdb::net::detail {
namespace {

// A label value with backslash, double quote and newline escaped.
std::string Label(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

// Shortest form that reads back exactly ("0.0005", not "0.00050000000000000001").
std::string Number(double v) {
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), v, std::chars_format::fixed);
  return std::string(buffer, result.ptr);
}

}  // namespace

void Metrics::Record(std::string_view method, std::string_view route, int status, double seconds) {
  const size_t bucket = static_cast<size_t>(
      std::lower_bound(kBuckets.begin(), kBuckets.end(), seconds) - kBuckets.begin());
  std::lock_guard lock(mu_);
  ++requests_[{std::string(route), std::string(method), status}];
  Histogram& h = latency_[std::string(route)];
  if (bucket < h.buckets.size()) ++h.buckets[bucket];
  ++h.count;
  h.sum += seconds;
}

std::string Metrics::Render(const std::vector<CollectionInfo>& collections, uint64_t search_calls,
                            uint64_t searches) const {
  std::string out;
  out += "# HELP m3vdb_http_requests_total HTTP requests answered, by route, method and status.\n";
  out += "# TYPE m3vdb_http_requests_total counter\n";
  std::lock_guard lock(mu_);
  for (const auto& [key, count] : requests_) {
    const auto& [route, method, status] = key;
    out += "m3vdb_http_requests_total{route=\"" + Label(route) + "\",method=\"" + Label(method) +
           "\",status=\"" + std::to_string(status) + "\"} " + std::to_string(count) + "\n";
  }
  out += "# HELP m3vdb_http_request_duration_seconds Time from a complete request to its response written.\n";
  out += "# TYPE m3vdb_http_request_duration_seconds histogram\n";
  for (const auto& [route, h] : latency_) {
    const std::string prefix = "m3vdb_http_request_duration_seconds_bucket{route=\"" + Label(route) + "\",le=\"";
    uint64_t cumulative = 0;
    for (size_t i = 0; i < kBuckets.size(); ++i) {
      cumulative += h.buckets[i];
      out += prefix + Number(kBuckets[i]) + "\"} " + std::to_string(cumulative) + "\n";
    }
    out += prefix + "+Inf\"} " + std::to_string(h.count) + "\n";
    out += "m3vdb_http_request_duration_seconds_sum{route=\"" + Label(route) + "\"} " + Number(h.sum) + "\n";
    out += "m3vdb_http_request_duration_seconds_count{route=\"" + Label(route) + "\"} " + std::to_string(h.count) + "\n";
  }
  out += "# HELP m3vdb_collections Collections in the database.\n";
  out += "# TYPE m3vdb_collections gauge\n";
  out += "m3vdb_collections " + std::to_string(collections.size()) + "\n";
  out += "# HELP m3vdb_collection_documents Documents stored per collection.\n";
  out += "# TYPE m3vdb_collection_documents gauge\n";
  for (const CollectionInfo& c : collections)
    out += "m3vdb_collection_documents{collection=\"" + Label(c.name) + "\"} " + std::to_string(c.count) + "\n";
  out += "# HELP m3vdb_dense_searches_total Searches with a dense part.\n";
  out += "# TYPE m3vdb_dense_searches_total counter\n";
  out += "m3vdb_dense_searches_total " + std::to_string(searches) + "\n";
  out += "# HELP m3vdb_dense_search_engine_calls_total Engine calls answering them (concurrent searches are batched).\n";
  out += "# TYPE m3vdb_dense_search_engine_calls_total counter\n";
  out += "m3vdb_dense_search_engine_calls_total " + std::to_string(search_calls) + "\n";
  return out;
}

}  // namespace m3vdb::net::detail
