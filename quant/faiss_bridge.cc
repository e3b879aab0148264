#include "quant/faiss_bridge.h"

#include <faiss/IndexFlat.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/VectorTransform.h>
#include <faiss/index_io.h>

#include <exception>
#include <memory>

namespace m3vdb::quant {
namespace {

faiss::MetricType ToFaiss(Metric m) {
  return m == Metric::kL2 ? faiss::METRIC_L2 : faiss::METRIC_INNER_PRODUCT;
}

std::unique_ptr<faiss::IndexFlat> MakeQuantizer(const IvfPqParams& p) {
  if (p.metric == Metric::kL2) return std::make_unique<faiss::IndexFlatL2>(p.dim);
  return std::make_unique<faiss::IndexFlatIP>(p.dim);
}

}  // namespace

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
    std::vector<float> rotated;
    const float* train = x;
    if (params.opq) {
      faiss::OPQMatrix opq(static_cast<int>(d), static_cast<int>(params.m));
      opq.verbose = false;
      opq.train(static_cast<faiss::Index::idx_t>(n), x);
      books.rotation = opq.A;  // d_out x d_in row-major: x' = A x
      rotated.resize(n * d);
      books.Rotate(x, n, rotated.data());
      train = rotated.data();
    }
    auto quantizer = MakeQuantizer(params);
    faiss::IndexIVFPQ ivfpq(quantizer.get(), d, params.nlist, params.m, params.nbits, ToFaiss(params.metric));
    ivfpq.cp.seed = static_cast<int>(params.seed);
    ivfpq.pq.cp.seed = static_cast<int>(params.seed + 1);
    ivfpq.train(static_cast<faiss::Index::idx_t>(n), train);
    const float* xb = quantizer->get_xb();
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
    auto* ivfpq = new faiss::IndexIVFPQ(quantizer, p.dim, p.nlist, p.m, p.nbits, ToFaiss(p.metric));
    ivfpq->own_fields = true;
    ivfpq->pq.centroids = books.pq;
    ivfpq->is_trained = true;
    if (p.metric == Metric::kL2) ivfpq->precompute_table();
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
    if (n > 0) index->add(static_cast<faiss::Index::idx_t>(n), x);
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
