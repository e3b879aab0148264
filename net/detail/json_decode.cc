// Request bodies to engine types; see json_codec.h for the contract.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "net/detail/base64.h"
#include "net/detail/json_codec.h"

namespace m3vdb::net::detail {
namespace {

Status Invalid(const std::string& where, std::string_view what) {
  return Status::InvalidArgument(where + " " + std::string(what));
}

// Unknown fields are errors: they are almost always a misspelling.
Status CheckFields(const Json& object, std::initializer_list<std::string_view> known, const std::string& where) {
  for (const auto& item : object.items()) {
    if (std::find(known.begin(), known.end(), item.key()) == known.end())
      return Status::InvalidArgument((where.empty() ? "" : where + ": ") + "unknown field '" + item.key() + "'");
  }
  return Status::OK();
}

std::string Field(const std::string& where, std::string_view key) {
  return where.empty() ? std::string(key) : where + "." + std::string(key);
}

Status ReadBool(const Json& value, const std::string& where, bool* out) {
  if (!value.is_boolean()) return Invalid(where, "must be true or false");
  *out = value.get<bool>();
  return Status::OK();
}

Status ReadInt(const Json& value, const std::string& where, int64_t min, int64_t max, int64_t* out) {
  if (!value.is_number_integer()) return Invalid(where, "must be an integer");
  if (value.is_number_unsigned() && value.get<uint64_t>() > static_cast<uint64_t>(max))
    return Invalid(where, "must be at most " + std::to_string(max));
  const int64_t v = value.get<int64_t>();
  if (v < min || v > max)
    return Invalid(where, "must be in " + std::to_string(min) + ".." + std::to_string(max) + ", got " + std::to_string(v));
  *out = v;
  return Status::OK();
}

// `object[key]` into `*out` when present (an integer in min..max); absent keeps `*out`.
template <class T>
Status ReadOptionalInt(const Json& object, std::string_view key, const std::string& where, int64_t min, int64_t max,
                       T* out) {
  const auto it = object.find(key);
  if (it == object.end()) return Status::OK();
  int64_t v = 0;
  M3VDB_RETURN_IF_ERROR(ReadInt(*it, Field(where, key), min, max, &v));
  *out = static_cast<T>(v);
  return Status::OK();
}

Status ReadFloats(const Json& value, const std::string& where, std::vector<float>* out) {
  if (!value.is_array()) return Invalid(where, "must be an array of numbers");
  out->resize(value.size());
  for (size_t i = 0; i < value.size(); ++i) {
    const Json& v = value[i];
    if (!v.is_number()) return Invalid(where + "[" + std::to_string(i) + "]", "must be a number");
    (*out)[i] = static_cast<float>(v.get<double>());
  }
  return Status::OK();
}

Status ReadDenseB64(const Json& value, const std::string& where, std::vector<float>* out) {
  if (!value.is_string()) return Invalid(where, "must be a base64 string of little-endian float32 values");
  auto decoded = DecodeFloatsBase64(value.get_ref<const std::string&>());
  if (!decoded.ok()) return decoded.status().WithContext(where);
  *out = std::move(*decoded);
  return Status::OK();
}

Status ReadSparse(const Json& value, const std::string& where, SparseVector* out) {
  if (!value.is_object()) return Invalid(where, "must be an object {\"indices\":[...],\"values\":[...]}");
  M3VDB_RETURN_IF_ERROR(CheckFields(value, {"indices", "values"}, where));
  if (!value.contains("indices") || !value.contains("values"))
    return Invalid(where, "needs both \"indices\" and \"values\"");
  const Json& indices = value["indices"];
  const std::string iwhere = where + ".indices";
  if (!indices.is_array()) return Invalid(iwhere, "must be an array of integers");
  out->indices.resize(indices.size());
  for (size_t i = 0; i < indices.size(); ++i) {
    int64_t v = 0;
    M3VDB_RETURN_IF_ERROR(ReadInt(indices[i], iwhere + "[" + std::to_string(i) + "]", 0,
                                  std::numeric_limits<int32_t>::max(), &v));
    out->indices[i] = static_cast<int32_t>(v);
  }
  return ReadFloats(value["values"], where + ".values", &out->values);
}

// A list of equally long lists of numbers, flattened row-major.
Status ReadColbert(const Json& value, const std::string& where, MultiVector* out) {
  if (!value.is_array()) return Invalid(where, "must be a list of lists of numbers");
  out->rows = static_cast<uint32_t>(std::min<size_t>(value.size(), std::numeric_limits<uint32_t>::max()));
  out->data.clear();
  size_t width = 0;
  std::vector<float> row;
  for (size_t r = 0; r < value.size(); ++r) {
    const std::string rwhere = where + "[" + std::to_string(r) + "]";
    M3VDB_RETURN_IF_ERROR(ReadFloats(value[r], rwhere, &row));
    if (r == 0) width = row.size();
    if (row.size() != width)
      return Invalid(rwhere, "has " + std::to_string(row.size()) + " values but row 0 has " + std::to_string(width));
    out->data.insert(out->data.end(), row.begin(), row.end());
  }
  return Status::OK();
}

// "dense" (array) or "dense_b64" (base64 string), at most one of them.
Status ReadDenseEither(const Json& object, const std::string& where, std::vector<float>* out) {
  const bool has_array = object.contains("dense"), has_b64 = object.contains("dense_b64");
  if (has_array && has_b64) return Invalid(where.empty() ? "request" : where, "has both dense and dense_b64");
  if (has_array) return ReadFloats(object["dense"], Field(where, "dense"), out);
  if (has_b64) return ReadDenseB64(object["dense_b64"], Field(where, "dense_b64"), out);
  return Status::OK();
}

Status ReadDocument(const Json& value, const std::string& where, Document* doc) {
  if (!value.is_object()) return Invalid(where, "must be an object");
  M3VDB_RETURN_IF_ERROR(
      CheckFields(value, {"id", "text", "metadata", "dense", "dense_b64", "sparse", "colbert"}, where));
  if (!value.contains("id")) return Invalid(where, "has no \"id\"");
  if (!value["id"].is_string()) return Invalid(where + ".id", "must be a string");
  doc->id = value["id"].get<std::string>();
  if (value.contains("text")) {
    if (!value["text"].is_string()) return Invalid(where + ".text", "must be a string");
    doc->text = value["text"].get<std::string>();
  }
  if (value.contains("metadata") && !value["metadata"].is_null()) {
    if (!value["metadata"].is_object()) return Invalid(where + ".metadata", "must be an object");
    doc->metadata_json = value["metadata"].dump(-1, ' ', false, Json::error_handler_t::replace);
  }
  M3VDB_RETURN_IF_ERROR(ReadDenseEither(value, where, &doc->dense));
  if (value.contains("sparse")) M3VDB_RETURN_IF_ERROR(ReadSparse(value["sparse"], where + ".sparse", &doc->sparse));
  if (value.contains("colbert"))
    M3VDB_RETURN_IF_ERROR(ReadColbert(value["colbert"], where + ".colbert", &doc->colbert));
  return Status::OK();
}

Status ReadIndexSettings(const Json& value, IndexSettings* index) {
  if (!value.is_object()) return Invalid("index", "must be an object of index settings");
  M3VDB_RETURN_IF_ERROR(
      CheckFields(value, {"nlist", "m", "opq", "distill", "epochs", "nprobe", "train_threshold"}, "index"));
  constexpr int64_t kU32 = std::numeric_limits<uint32_t>::max(), kInt = std::numeric_limits<int>::max();
  M3VDB_RETURN_IF_ERROR(ReadOptionalInt(value, "nlist", "index", 1, kU32, &index->nlist));
  M3VDB_RETURN_IF_ERROR(ReadOptionalInt(value, "m", "index", 0, kU32, &index->m));
  M3VDB_RETURN_IF_ERROR(ReadOptionalInt(value, "epochs", "index", 0, kInt, &index->epochs));
  M3VDB_RETURN_IF_ERROR(ReadOptionalInt(value, "nprobe", "index", 1, kInt, &index->nprobe));
  M3VDB_RETURN_IF_ERROR(ReadOptionalInt(value, "train_threshold", "index", 0, std::numeric_limits<int64_t>::max(),
                                        &index->train_threshold));
  if (value.contains("opq")) M3VDB_RETURN_IF_ERROR(ReadBool(value["opq"], "index.opq", &index->opq));
  if (value.contains("distill")) M3VDB_RETURN_IF_ERROR(ReadBool(value["distill"], "index.distill", &index->distill));
  return Status::OK();
}

Status ReadInclude(const Json& value, SearchRequest* request) {
  if (!value.is_array()) return Invalid("include", "must be a list of \"metadata\", \"text\", \"scores\"");
  request->options.include_metadata = request->options.include_text = request->include_scores = false;
  for (size_t i = 0; i < value.size(); ++i) {
    const Json& item = value[i];
    const std::string where = "include[" + std::to_string(i) + "]";
    if (!item.is_string()) return Invalid(where, "must be a string");
    const std::string& name = item.get_ref<const std::string&>();
    if (name == "metadata") request->options.include_metadata = true;
    else if (name == "text") request->options.include_text = true;
    else if (name == "scores") request->include_scores = true;
    else return Invalid(where, "must be \"metadata\", \"text\" or \"scores\", got '" + name + "'");
  }
  return Status::OK();
}

Status ReadWeights(const Json& value, ModeWeights* weights) {
  if (!value.is_object()) return Invalid("weights", "must be an object {\"dense\":..,\"sparse\":..,\"colbert\":..}");
  M3VDB_RETURN_IF_ERROR(CheckFields(value, {"dense", "sparse", "colbert"}, "weights"));
  for (auto [key, target] : {std::pair{"dense", &weights->dense}, std::pair{"sparse", &weights->sparse},
                             std::pair{"colbert", &weights->colbert}}) {
    if (!value.contains(key)) continue;
    if (!value[key].is_number()) return Invalid(std::string("weights.") + key, "must be a number");
    *target = static_cast<float>(value[key].get<double>());
  }
  return Status::OK();
}

// Depth of the deepest array/object in `text`, ignoring brackets inside strings.
int MaxNesting(std::string_view text) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

}  // namespace

Result<Json> ParseJsonObject(std::string_view body) {
  if (MaxNesting(body) > kMaxJsonDepth)
    return Status::InvalidArgument("body nests arrays/objects deeper than " + std::to_string(kMaxJsonDepth));
  Json json;
  try {
    json = Json::parse(body);
  } catch (const Json::exception& e) {
    std::string what = e.what();  // "[json.exception.parse_error.101] parse error at ..."
    const size_t bracket = what.find("] ");
    if (what.rfind("[json.exception", 0) == 0 && bracket != std::string::npos) what.erase(0, bracket + 2);
    return Status::InvalidArgument("body is not valid JSON: " + what);
  }
  if (!json.is_object()) return Status::InvalidArgument("body must be a JSON object");
  return json;
}

Result<CollectionSpec> DecodeCollectionSpec(const Json& body) {
  M3VDB_RETURN_IF_ERROR(
      CheckFields(body, {"dense_dim", "metric", "sparse", "colbert", "colbert_dim", "model", "index"}, ""));
  CollectionSpec spec;
  if (body.contains("model")) M3VDB_RETURN_IF_ERROR(ReadBool(body["model"], "model", &spec.schema.model));
  if (!body.contains("dense_dim") && !spec.schema.model)
    return Status::InvalidArgument("dense_dim is required (unless \"model\" is true)");
  constexpr int64_t kU32 = std::numeric_limits<uint32_t>::max();
  M3VDB_RETURN_IF_ERROR(ReadOptionalInt(body, "dense_dim", "", 1, kU32, &spec.schema.dense_dim));
  if (body.contains("metric")) {
    if (!body["metric"].is_string()) return Invalid("metric", "must be \"ip\" or \"l2\"");
    M3VDB_ASSIGN_OR_RETURN(spec.schema.metric, ParseMetric(body["metric"].get_ref<const std::string&>()));
  }
  if (body.contains("sparse")) M3VDB_RETURN_IF_ERROR(ReadBool(body["sparse"], "sparse", &spec.schema.sparse));
  if (body.contains("colbert")) M3VDB_RETURN_IF_ERROR(ReadBool(body["colbert"], "colbert", &spec.schema.colbert));
  M3VDB_RETURN_IF_ERROR(ReadOptionalInt(body, "colbert_dim", "", 0, kU32, &spec.schema.colbert_dim));
  if (body.contains("index")) M3VDB_RETURN_IF_ERROR(ReadIndexSettings(body["index"], &spec.schema.index));
  return spec;
}

Result<DocumentBatch> DecodeDocumentBatch(const Json& body) {
  M3VDB_RETURN_IF_ERROR(CheckFields(body, {"documents"}, ""));
  if (!body.contains("documents")) return Status::InvalidArgument("documents is required");
  const Json& docs = body["documents"];
  if (!docs.is_array()) return Invalid("documents", "must be an array of documents");
  DocumentBatch batch;
  batch.documents.resize(docs.size());
  for (size_t i = 0; i < docs.size(); ++i) {
    M3VDB_RETURN_IF_ERROR(ReadDocument(docs[i], "documents[" + std::to_string(i) + "]", &batch.documents[i]));
  }
  return batch;
}

Result<SearchRequest> DecodeSearchRequest(const Json& body) {
  M3VDB_RETURN_IF_ERROR(CheckFields(body,
                                    {"text", "dense", "dense_b64", "sparse", "colbert", "top_k", "rerank_k", "fusion",
                                     "weights", "nprobe", "include"},
                                    ""));
  SearchRequest request;
  if (body.contains("text")) {
    if (!body["text"].is_string()) return Invalid("text", "must be a string");
    request.query.text = body["text"].get<std::string>();
  }
  M3VDB_RETURN_IF_ERROR(ReadDenseEither(body, "", &request.query.dense));
  if (body.contains("sparse")) M3VDB_RETURN_IF_ERROR(ReadSparse(body["sparse"], "sparse", &request.query.sparse));
  if (body.contains("colbert")) M3VDB_RETURN_IF_ERROR(ReadColbert(body["colbert"], "colbert", &request.query.colbert));
  SearchOptions& options = request.options;
  constexpr int64_t kIntMax = std::numeric_limits<int>::max();
  M3VDB_RETURN_IF_ERROR(ReadOptionalInt(body, "top_k", "", 1, kIntMax, &options.top_k));
  M3VDB_RETURN_IF_ERROR(ReadOptionalInt(body, "rerank_k", "", 1, kIntMax, &options.rerank_k));
  M3VDB_RETURN_IF_ERROR(ReadOptionalInt(body, "nprobe", "", 0, kIntMax, &options.nprobe));
  if (body.contains("fusion")) {
    const Json& fusion = body["fusion"];
    if (fusion == "weighted") options.fusion = Fusion::kWeighted;
    else if (fusion == "rrf") options.fusion = Fusion::kRrf;
    else return Invalid("fusion", "must be \"weighted\" or \"rrf\"");
  }
  if (body.contains("weights")) M3VDB_RETURN_IF_ERROR(ReadWeights(body["weights"], &options.weights));
  if (body.contains("include")) M3VDB_RETURN_IF_ERROR(ReadInclude(body["include"], &request));
  return request;
}

Result<EmbedRequest> DecodeEmbedRequest(const Json& body) {
  M3VDB_RETURN_IF_ERROR(CheckFields(body, {"texts", "include"}, ""));
  if (!body.contains("texts")) return Status::InvalidArgument("texts is required");
  const Json& texts = body["texts"];
  if (!texts.is_array()) return Invalid("texts", "must be an array of strings");
  EmbedRequest request;
  request.texts.reserve(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    if (!texts[i].is_string()) return Invalid("texts[" + std::to_string(i) + "]", "must be a string");
    request.texts.push_back(texts[i].get<std::string>());
  }
  if (body.contains("include")) {
    const Json& include = body["include"];
    if (!include.is_array()) return Invalid("include", "must be a list of \"tokens\", \"dense\", \"sparse\", \"colbert\"");
    request.tokens = request.dense = request.sparse = request.colbert = false;
    for (size_t i = 0; i < include.size(); ++i) {
      const std::string where = "include[" + std::to_string(i) + "]";
      if (!include[i].is_string()) return Invalid(where, "must be a string");
      const std::string& name = include[i].get_ref<const std::string&>();
      if (name == "tokens") request.tokens = true;
      else if (name == "dense") request.dense = true;
      else if (name == "sparse") request.sparse = true;
      else if (name == "colbert") request.colbert = true;
      else return Invalid(where, "must be \"tokens\", \"dense\", \"sparse\" or \"colbert\", got '" + name + "'");
    }
  }
  return request;
}

Result<SnapshotRequest> DecodeSnapshotRequest(const Json& body) {
  M3VDB_RETURN_IF_ERROR(CheckFields(body, {"name"}, ""));
  if (!body.contains("name")) return Status::InvalidArgument("name is required");
  if (!body["name"].is_string()) return Invalid("name", "must be a string");
  return SnapshotRequest{body["name"].get<std::string>()};
}

Result<TrainOptions> DecodeTrainRequest(const Json& body, uint32_t dense_dim) {
  M3VDB_RETURN_IF_ERROR(CheckFields(body, {"queries", "queries_b64", "seed"}, ""));
  TrainOptions options;
  if (body.contains("queries") && body.contains("queries_b64"))
    return Status::InvalidArgument("request has both queries and queries_b64");
  if (body.contains("queries")) {
    MultiVector rows;
    M3VDB_RETURN_IF_ERROR(ReadColbert(body["queries"], "queries", &rows));
    if (rows.rows > 0 && rows.data.size() != size_t{rows.rows} * dense_dim)
      return Invalid("queries[0]", "has " + std::to_string(rows.data.size() / rows.rows) +
                                       " values, collection expects dense_dim " + std::to_string(dense_dim));
    options.queries = std::move(rows.data);
  }
  if (body.contains("queries_b64")) {
    M3VDB_RETURN_IF_ERROR(ReadDenseB64(body["queries_b64"], "queries_b64", &options.queries));
    if (options.queries.size() % dense_dim != 0)
      return Invalid("queries_b64", "has " + std::to_string(options.queries.size()) +
                                        " values, not a multiple of dense_dim " + std::to_string(dense_dim));
  }
  // The engine checks this too, but only once the job runs; a bad request is answered now.
  for (size_t i = 0; i < options.queries.size(); ++i)
    if (!std::isfinite(options.queries[i]))
      return Status::InvalidArgument("training queries have a non-finite value (query " + std::to_string(i / dense_dim) +
                                     ", value " + std::to_string(i % dense_dim) + ")");
  M3VDB_RETURN_IF_ERROR(ReadOptionalInt(body, "seed", "", 0, std::numeric_limits<int64_t>::max(), &options.seed));
  return options;
}

}  // namespace m3vdb::net::detail
