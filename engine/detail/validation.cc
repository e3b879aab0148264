#include "engine/detail/validation.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <unordered_set>

namespace m3vdb::engine {
namespace {

std::string DocLabel(size_t i, const std::string& id) {
  std::string label = "document " + std::to_string(i);
  if (!id.empty() && id.size() <= 128) label += " (id '" + id + "')";
  return label;
}

Status CheckFinite(std::span<const float> values, const std::string& what) {
  for (size_t i = 0; i < values.size(); ++i)
    if (!std::isfinite(values[i]))
      return Status::InvalidArgument(what + " has a non-finite value (" + std::to_string(values[i]) +
                                     ") at position " + std::to_string(i));
  return Status::OK();
}

Status CheckDense(const std::vector<float>& dense, uint32_t dim, const std::string& what) {
  if (dense.size() != dim)
    return Status::InvalidArgument(what + " dense has " + std::to_string(dense.size()) +
                                   " values, collection expects " + std::to_string(dim));
  return CheckFinite(dense, what + " dense");
}

Status CheckSparse(const SparseVector& sparse, const Limits& limits, const std::string& what) {
  if (sparse.indices.size() != sparse.values.size())
    return Status::InvalidArgument(what + " sparse has " + std::to_string(sparse.indices.size()) +
                                   " indices but " + std::to_string(sparse.values.size()) + " values");
  if (sparse.indices.size() > limits.max_sparse_terms)
    return Status::ResourceExhausted(what + " sparse has " + std::to_string(sparse.indices.size()) +
                                     " terms, limit is " + std::to_string(limits.max_sparse_terms));
  for (size_t i = 0; i < sparse.indices.size(); ++i) {
    if (sparse.indices[i] < 0)
      return Status::InvalidArgument(what + " sparse index " + std::to_string(sparse.indices[i]) +
                                     " at position " + std::to_string(i) + " is negative");
    if (i > 0 && sparse.indices[i] <= sparse.indices[i - 1])
      return Status::InvalidArgument(
          what + " sparse indices must be strictly increasing: " + std::to_string(sparse.indices[i]) +
          " at position " + std::to_string(i) +
          (sparse.indices[i] == sparse.indices[i - 1] ? " is duplicated" : " is out of order"));
  }
  return CheckFinite(sparse.values, what + " sparse");
}

Status CheckColbert(const MultiVector& colbert, uint32_t width, const Limits& limits, const std::string& what) {
  if (colbert.rows > limits.max_colbert_rows)
    return Status::ResourceExhausted(what + " colbert has " + std::to_string(colbert.rows) +
                                     " vectors, limit is " + std::to_string(limits.max_colbert_rows));
  if (colbert.data.size() != size_t{colbert.rows} * width)
    return Status::InvalidArgument(what + " colbert has " + std::to_string(colbert.data.size()) +
                                   " values for " + std::to_string(colbert.rows) + " vectors, expected " +
                                   std::to_string(colbert.rows) + " x " + std::to_string(width));
  return CheckFinite(colbert.data, what + " colbert");
}

Status CheckId(const std::string& id, const Limits& limits, const std::string& what) {
  if (id.empty()) return Status::InvalidArgument(what + " has an empty id");
  if (id.size() > limits.max_id_bytes)
    return Status::ResourceExhausted(what + " id is " + std::to_string(id.size()) + " bytes, limit is " +
                                   std::to_string(limits.max_id_bytes));
  return Status::OK();
}

}  // namespace

Status ValidateCollectionName(const std::string& name) {
  if (name.empty() || name.size() > 128)
    return Status::InvalidArgument("collection name must be 1..128 characters");
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                    c == '-' || c == '.';
    if (!ok)
      return Status::InvalidArgument("collection name '" + name +
                                     "' may contain only letters, digits, '_', '-' and '.'");
  }
  return Status::OK();
}

Status ValidateSchema(const Limits& limits, CollectionSchema* schema) {
  if (schema->dense_dim == 0) return Status::InvalidArgument("schema dense_dim must be > 0");
  if (schema->dense_dim > limits.max_dense_dim)
    return Status::ResourceExhausted("schema dense_dim " + std::to_string(schema->dense_dim) + " exceeds limit " +
                                     std::to_string(limits.max_dense_dim));
  if (schema->metric != Metric::kInnerProduct && schema->metric != Metric::kL2)
    return Status::InvalidArgument("schema metric is not ip or l2");
  if (!schema->colbert) {
    schema->colbert_dim = 0;
  } else {
    if (schema->colbert_dim == 0) schema->colbert_dim = schema->dense_dim;
    if (schema->colbert_dim > limits.max_dense_dim)
      return Status::ResourceExhausted("schema colbert_dim exceeds limit " + std::to_string(limits.max_dense_dim));
  }
  IndexSettings& idx = schema->index;
  if (idx.m == 0) {  // auto: the largest divisor of the dimension that is at most dim/16 (at least 1)
    idx.m = 1;
    for (uint32_t m = std::max<uint32_t>(1, schema->dense_dim / 16); m >= 1; --m)
      if (schema->dense_dim % m == 0) {
        idx.m = m;
        break;
      }
  }
  if (schema->dense_dim % idx.m != 0)
    return Status::InvalidArgument("index m (" + std::to_string(idx.m) + ") must divide dense_dim (" +
                                   std::to_string(schema->dense_dim) + ")");
  if (idx.nlist == 0 || idx.nlist > (1u << 20))
    return Status::InvalidArgument("index nlist must be in 1..1048576, got " + std::to_string(idx.nlist));
  if (idx.epochs < 0 || idx.epochs > 1000) return Status::InvalidArgument("index epochs must be in 0..1000");
  if (idx.nprobe <= 0) return Status::InvalidArgument("index nprobe must be > 0");
  return Status::OK();
}

Status ValidateBatchTexts(const Limits& limits, std::span<const Document> batch) {
  if (batch.size() > limits.max_batch_documents)
    return Status::ResourceExhausted("batch has " + std::to_string(batch.size()) + " documents, limit is " +
                                     std::to_string(limits.max_batch_documents));
  for (size_t i = 0; i < batch.size(); ++i)
    if (batch[i].text.size() > limits.max_text_bytes)
      return Status::ResourceExhausted(DocLabel(i, batch[i].id) + " text is " + std::to_string(batch[i].text.size()) +
                                       " bytes, limit is " + std::to_string(limits.max_text_bytes));
  return Status::OK();
}

Status ValidateBatch(const CollectionSchema& schema, const Limits& limits, std::span<const Document> batch) {
  if (batch.size() > limits.max_batch_documents)
    return Status::ResourceExhausted("batch has " + std::to_string(batch.size()) + " documents, limit is " +
                                     std::to_string(limits.max_batch_documents));
  std::unordered_set<std::string_view> seen;
  seen.reserve(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    const Document& doc = batch[i];
    const std::string what = DocLabel(i, doc.id);
    M3VDB_RETURN_IF_ERROR(CheckId(doc.id, limits, what));
    if (!seen.insert(doc.id).second)
      return Status::InvalidArgument(what + ": id appears more than once in the batch");
    if (doc.text.size() > limits.max_text_bytes)
      return Status::ResourceExhausted(what + " text is " + std::to_string(doc.text.size()) +
                                       " bytes, limit is " + std::to_string(limits.max_text_bytes));
    if (doc.metadata_json.size() > limits.max_metadata_bytes)
      return Status::ResourceExhausted(what + " metadata is " + std::to_string(doc.metadata_json.size()) +
                                       " bytes, limit is " + std::to_string(limits.max_metadata_bytes));
    if (!doc.metadata_json.empty()) {
      auto parsed = nlohmann::json::parse(doc.metadata_json, nullptr, /*allow_exceptions=*/false);
      if (parsed.is_discarded()) return Status::InvalidArgument(what + " metadata is not valid JSON");
      if (!parsed.is_object()) return Status::InvalidArgument(what + " metadata must be a JSON object");
    }
    if (schema.model && doc.dense.empty() && doc.text.empty())
      return Status::InvalidArgument(what + " has neither text nor a dense vector");
    if (!schema.model && doc.dense.empty() && !doc.text.empty())
      return Status::InvalidArgument(what + " has text but no dense vector, and the collection does not embed text "
                                            "(create it with model)");
    // A model collection's text-only document gets its vectors from the encoder (Upsert encodes
    // before it validates; Validate checks everything else).
    if (!(schema.model && doc.dense.empty()))
      M3VDB_RETURN_IF_ERROR(CheckDense(doc.dense, schema.dense_dim, what));
    if (!doc.sparse.empty() || !doc.sparse.values.empty()) {
      if (!schema.sparse) return Status::InvalidArgument(what + " has sparse weights but the collection does not store sparse");
      M3VDB_RETURN_IF_ERROR(CheckSparse(doc.sparse, limits, what));
    }
    if (!doc.colbert.empty() || !doc.colbert.data.empty()) {
      if (!schema.colbert) return Status::InvalidArgument(what + " has colbert vectors but the collection does not store colbert");
      M3VDB_RETURN_IF_ERROR(CheckColbert(doc.colbert, schema.colbert_dim, limits, what));
    }
  }
  return Status::OK();
}

Status ValidateIds(const Limits& limits, std::span<const std::string> ids) {
  if (ids.size() > limits.max_batch_documents)
    return Status::ResourceExhausted("delete has " + std::to_string(ids.size()) + " ids, limit is " +
                                     std::to_string(limits.max_batch_documents));
  for (size_t i = 0; i < ids.size(); ++i) M3VDB_RETURN_IF_ERROR(CheckId(ids[i], limits, "id " + std::to_string(i)));
  return Status::OK();
}

Status ValidateQueryText(const CollectionSchema& schema, const Limits& limits, const Query& query) {
  if (query.text.empty()) return Status::OK();
  if (!schema.model)
    return Status::InvalidArgument("query has text, but the collection does not embed text (create it with model)");
  if (query.text.size() > limits.max_text_bytes)
    return Status::ResourceExhausted("query text is " + std::to_string(query.text.size()) + " bytes, limit is " +
                                     std::to_string(limits.max_text_bytes));
  return Status::OK();
}

Status ValidateQuery(const CollectionSchema& schema, const Limits& limits, const Query& query) {
  const bool has_dense = !query.dense.empty();
  const bool has_sparse = !query.sparse.empty() || !query.sparse.values.empty();
  const bool has_colbert = !query.colbert.empty() || !query.colbert.data.empty();
  M3VDB_RETURN_IF_ERROR(ValidateQueryText(schema, limits, query));
  if (!has_dense && !has_sparse && !has_colbert)
    return Status::InvalidArgument("query has no dense, sparse or colbert part, and no text");
  if (has_dense) M3VDB_RETURN_IF_ERROR(CheckDense(query.dense, schema.dense_dim, "query"));
  if (has_sparse) {
    if (!schema.sparse) return Status::InvalidArgument("query has sparse weights but the collection does not store sparse");
    M3VDB_RETURN_IF_ERROR(CheckSparse(query.sparse, limits, "query"));
  }
  if (has_colbert) {
    if (!schema.colbert) return Status::InvalidArgument("query has colbert vectors but the collection does not store colbert");
    M3VDB_RETURN_IF_ERROR(CheckColbert(query.colbert, schema.colbert_dim, limits, "query"));
  }
  return Status::OK();
}

Status ValidateSearchOptions(const Limits& limits, const SearchOptions& options) {
  if (options.top_k <= 0) return Status::InvalidArgument("top_k must be > 0, got " + std::to_string(options.top_k));
  if (options.top_k > limits.max_top_k)
    return Status::ResourceExhausted("top_k " + std::to_string(options.top_k) + " exceeds limit " +
                                     std::to_string(limits.max_top_k));
  if (options.rerank_k <= 0)
    return Status::InvalidArgument("rerank_k must be > 0, got " + std::to_string(options.rerank_k));
  if (options.rerank_k > limits.max_rerank_k)
    return Status::ResourceExhausted("rerank_k " + std::to_string(options.rerank_k) + " exceeds limit " +
                                     std::to_string(limits.max_rerank_k));
  if (options.nprobe < 0) return Status::InvalidArgument("nprobe must be >= 0, got " + std::to_string(options.nprobe));
  const ModeWeights& w = options.weights;
  if (!std::isfinite(w.dense) || !std::isfinite(w.sparse) || !std::isfinite(w.colbert))
    return Status::InvalidArgument("fusion weights must be finite");
  if (options.fusion != Fusion::kWeighted && options.fusion != Fusion::kRrf)
    return Status::InvalidArgument("fusion must be weighted or rrf");
  return Status::OK();
}

}  // namespace m3vdb::engine
