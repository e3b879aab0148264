// The similarity a dense collection ranks by. Every m3vdb score is "larger is better".
#pragma once

#include <string_view>

#include "m3vdb/status.h"

namespace m3vdb {

enum class Metric {
  kInnerProduct,  // "ip": score = <q, d>
  kL2,            // "l2": score = -||q - d||^2
};

std::string_view MetricName(Metric metric);         // "ip" / "l2"
Result<Metric> ParseMetric(std::string_view name);  // inverse of MetricName

}  // namespace m3vdb
