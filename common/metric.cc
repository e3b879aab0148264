#include "m3vdb/metric.h"

#include <string>

namespace m3vdb {

std::string_view MetricName(Metric metric) { return metric == Metric::kL2 ? "l2" : "ip"; }

Result<Metric> ParseMetric(std::string_view name) {
  if (name == "ip") return Metric::kInnerProduct;
  if (name == "l2") return Metric::kL2;
  return Status::InvalidArgument("metric must be 'ip' or 'l2', got '" + std::string(name) + "'");
}

}  // namespace m3vdb
