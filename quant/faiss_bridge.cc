#include "quant/faiss_bridge.h"

#include <faiss/IndexFlat.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/VectorTransform.h>
#include <faiss/index_io.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <memory>
#include <vector>

namespace m3vdb::quant {
namespace {

faiss::MetricType ToFaiss(Metric m) {
  return m == Metric::kL2 ? faiss::METRIC_L2 : faiss::METRIC_INNER_PRODUCT;
}

std::unique_ptr<faiss::IndexFlat> MakeQuantizer(const IvfPqParams& p) {
  if (p.geometry() == Metric::kL2) return std::make_unique<faiss::IndexFlatL2>(p.dim);
  return std::make_unique<faiss::IndexFlatIP>(p.dim);
}

}  // namespace

bool AllUnitLength(const float* x, size_t n, size_t dim) {
  for (size_t i = 0; i < n; ++i) {
    double s = 0;
    for (size_t j = 0; j < dim; ++j) s += double{x[i * dim + j]} * x[i * dim + j];
    if (!(std::abs(s - 1.0) <= kUnitNormTolerance)) return false;
  }
  return n > 0;
}

Result<Codebooks> TrainKMeans(const float* x, size_t n, const IvfPqParams& params) {
  M3VDB_RETURN_IF_ERROR(params.Validate());
  if (n < params.nlist || n < params.ksub())
    return Status::InvalidArgument("k-means needs at least max(nlist, 2^nbits) = " +
                                   std::to_string(std::max(params.nlist, params.ksub())) + " vectors, got " +
                                   std::to_string(n));
  try {
    Codebooks books;
    books.params = params;
    const size_t d = params.dim;
    books.params.unit_norm = params.metric == Metric::kInnerProduct && AllUnitLength(x, n, d);
    std::vector<float> rotated;
    const float* train = x;
    if (params.opq) {  // FAISS's OPQ: m3vdb's own (quant/opq.h) is faster but measured lower recall
      faiss::OPQMatrix opq(static_cast<int>(d), static_cast<int>(params.m));
      opq.verbose = false;
      opq.train(static_cast<faiss::Index::idx_t>(n), x);
      books.rotation = opq.A;  // d_out x d_in row-major: x' = A x
      rotated.resize(n * d);
      books.Rotate(x, n, rotated.data());
      train = rotated.data();
    }
    // L2 k-means for both metrics: documents go to their nearest centroid (quant/codebooks.h).
    faiss::IndexFlatL2 quantizer(static_cast<faiss::Index::idx_t>(d));
    faiss::IndexIVFPQ ivfpq(&quantizer, d, params.nlist, params.m, params.nbits, faiss::METRIC_L2);
    ivfpq.cp.seed = static_cast<int>(params.seed);
    ivfpq.pq.cp.seed = static_cast<int>(params.seed + 1);
    ivfpq.train(static_cast<faiss::Index::idx_t>(n), train);
    const float* xb = quantizer.get_xb();
    books.centroids.assign(xb, xb + size_t{params.nlist} * d);
    books.pq = ivfpq.pq.centroids;
    return books;
  } catch (const std::exception& e) {
    return Status::Internal(std::string("FAISS k-means training failed: ") + e.what());
  }
}

Result<std::unique_ptr<faiss::Index>> BuildFaissIndex(const Codebooks& books, const float* x, size_t n) {
  M3VDB_RETURN_IF_ERROR(books.Validate());
  const IvfPqParams& p = books.params;
  try {
    auto* quantizer = MakeQuantizer(p).release();
    quantizer->add(p.nlist, books.centroids.data());
    auto* ivfpq = new faiss::IndexIVFPQ(quantizer, p.dim, p.nlist, p.m, p.nbits, ToFaiss(p.geometry()));
    ivfpq->own_fields = true;
    ivfpq->pq.centroids = books.pq;
    ivfpq->is_trained = true;
    if (p.geometry() == Metric::kL2) ivfpq->precompute_table();
    std::unique_ptr<faiss::Index> index;
    if (books.rotation.empty()) {
      index.reset(ivfpq);
    } else {
      auto* opq = new faiss::OPQMatrix(static_cast<int>(p.dim), static_cast<int>(p.m));
      opq->A = books.rotation;
      opq->b.assign(p.dim, 0.0f);
      opq->is_trained = true;
      auto* pre = new faiss::IndexPreTransform(opq, ivfpq);
      pre->own_fields = true;
      index.reset(pre);
    }
    if (n > 0) {
      // Our lists, not FAISS's assignment (which for inner product is the largest <x, c>): the
      // file then holds exactly the codes m3vdb's index holds, and FAISS's search (lists probed
      // by the quantizer's metric, <q, c> + <q, r^> or the L2 distance) scores them the same.
      const size_t block = 4096;
      const std::vector<float> norms = books.CentroidNorms();
      std::vector<float> xr(std::min(n, block) * p.dim);
      std::vector<uint32_t> lists(std::min(n, block));
      std::vector<faiss::Index::idx_t> list_ids(lists.size());
      for (size_t b = 0; b < n; b += block) {
        const size_t nb = std::min(block, n - b);
        books.Rotate(x + b * p.dim, nb, xr.data());
        books.Assign(xr.data(), nb, lists.data(), norms.data());
        std::copy_n(lists.begin(), nb, list_ids.begin());
        ivfpq->add_core(static_cast<faiss::Index::idx_t>(nb), xr.data(), nullptr, list_ids.data());
      }
      index->ntotal = ivfpq->ntotal;
    }
    return index;
  } catch (const std::exception& e) {
    return Status::Internal(std::string("building FAISS index: ") + e.what());
  }
}

Status ExportFaissIndex(const Codebooks& books, const float* x, size_t n, const std::string& path) {
  M3VDB_ASSIGN_OR_RETURN(auto index, BuildFaissIndex(books, x, n));
  try {
    faiss::write_index(index.get(), path.c_str());
    return Status::OK();
  } catch (const std::exception& e) {
    return Status::IOError("writing FAISS index " + path + ": " + e.what());
  }
}

}  // namespace m3vdb::quant
