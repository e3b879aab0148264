// The similarity a dense collection ranks by. Every m3vdb score is "larger is better".
#pragma once

namespace m3vdb {

enum class Metric {
  kInnerProduct,  // "ip": score = <q, d>
  kL2,            // "l2": score = -||q - d||^2
};

}  // namespace m3vdb
