// The one JSON codec of the API: request bodies to engine types (json_decode.cc) and engine
// types to response bodies (json_encode.cc).
//
// Decoding checks every field's type, rejects unknown fields (a misspelt "top_k" is an error,
// not a silent default) and names the offending field in the message
// ("documents[2].dense[7] must be a number"). Semantic checks that need the collection's schema
// (dimensions, sparse order, finite values, limits) are the engine's; the codec does not
// repeat them. Nothing here throws.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "m3vdb/m3vdb.h"
#include "net/detail/train_jobs.h"

namespace m3vdb::net::detail {

using Json = nlohmann::json;

// Deepest nesting of arrays and objects a request body may have (a document's ColBERT matrix
// inside the batch is 4 deep; metadata gets the rest).
inline constexpr int kMaxJsonDepth = 64;

// Parses a request body that must be one JSON object. InvalidArgument when it is not JSON,
// nests deeper than kMaxJsonDepth, or is not an object.
Result<Json> ParseJsonObject(std::string_view body);

// PUT /collections/{name}: {"dense_dim":..,"metric":"ip"|"l2","sparse":..,"colbert":..,
// "colbert_dim":..,"model":..,"index":{IndexSettings}}. dense_dim is required unless "model" is
// true (then 0 = the model's hidden size).
struct CollectionSpec {
  CollectionSchema schema;  // schema.model: documents and queries are text embedded by the model
};
Result<CollectionSpec> DecodeCollectionSpec(const Json& body);

// POST /collections/{name}/documents: {"documents":[{...}, ...]}.
// A document may carry only "text" (a model collection encodes it; the engine decides).
struct DocumentBatch {
  std::vector<Document> documents;
};
Result<DocumentBatch> DecodeDocumentBatch(const Json& body);

// POST /collections/{name}/search. "text" goes to query.text (encoded by the engine).
struct SearchRequest {
  Query query;
  SearchOptions options;
  bool include_scores = true;
};
Result<SearchRequest> DecodeSearchRequest(const Json& body);

// POST /collections/{name}/train (the body is optional): {"queries":[[...],...]} or
// {"queries_b64":"..."} (row-major little-endian float32, n*dense_dim values), "seed".
// Each row of "queries" must have `dense_dim` values.
Result<TrainOptions> DecodeTrainRequest(const Json& body, uint32_t dense_dim);
// POST /embed: {"texts":["...", ...], "include":["tokens","dense","sparse","colbert"]}
// (include optional, default all four).
struct EmbedRequest {
  std::vector<std::string> texts;
  bool tokens = true, dense = true, sparse = true, colbert = true;
};
Result<EmbedRequest> DecodeEmbedRequest(const Json& body);
// POST /snapshots: {"name":"..."} (required; the handler checks the characters it may have).
struct SnapshotRequest {
  std::string name;
};
Result<SnapshotRequest> DecodeSnapshotRequest(const Json& body);

// Response bodies.
// The schema, the count, and the dense index: its settings and its state (`kind` "flat" or
// "ivfpq", codebook `generation`, `bytes_per_vector`, `training`).
Json EncodeCollectionInfo(const CollectionInfo& info, const IndexInfo& state);
Json EncodeDocument(const Document& doc);
Json EncodeSearchResults(const std::vector<SearchHit>& hits, const SearchRequest& request, double took_ms);
// GET /jobs/{id}: {"id","collection","state","phase","fraction","loss","eta_seconds",
// "elapsed_seconds", "report" (succeeded) or "error" {"code","message"} (failed)}.
Json EncodeJob(const JobView& job);
// Serializes a response body (invalid UTF-8 in stored text is replaced, never thrown on).
std::string Dump(const Json& json);
// {"embeddings":[{"tokens":[..],"dense":[..],"sparse":{"<token id>":w,..},"colbert":[[..],..]},..]}
// with the parts the request includes: the shape `m3vdb embed` writes per line.
Json EncodeEmbeddings(const std::vector<TextEmbedding>& embeddings, const EmbedRequest& request);

}  // namespace m3vdb::net::detail
