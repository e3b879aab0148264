// The README's main measurement on a database that `m3vdb build` made from Fashion-MNIST with
// the learned index: the 10,000 test queries answered through the library (batched) and
// through `m3vdb serve`'s HTTP API (the same server code, in process, on loopback, several
// client connections), recall@10 against an independent brute-force ground truth and
// queries/s for both; beside it FAISS's IVF-PQ with plain k-means codebooks of the same size
// (same nlist, bytes per vector and nprobe) on the same data.
#pragma once

#include <string>

#include "m3vdb/metric.h"
#include "tools/fashion_mnist.h"

namespace m3vdb::tools {

struct BuiltBenchOptions {
  std::string db_dir, collection;
  Metric metric = Metric::kL2;
  size_t k = 10;
  int http_clients = 4;
};

// Prints the report on stdout; returns the process exit code.
int RunBuiltBench(const BuiltBenchOptions& options, const Matrix& base, const Matrix& queries);

}  // namespace m3vdb::tools
