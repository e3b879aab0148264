// Engine types to response bodies; see json_codec.h for the contract.
#include <charconv>
#include <cmath>
#include <cstdlib>

#include "net/detail/json_codec.h"

namespace m3vdb::net::detail {
namespace {

// The double whose shortest decimal form is the float's shortest form, so 0.3f is written
// "0.3" rather than "0.30000001192092896"; it still reads back as exactly the same float.
double ShortestDouble(float value) {
  if (!std::isfinite(value)) return value;
  char buffer[32];
  const auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer) - 1, value);
  if (ec != std::errc()) return value;
  *end = '\0';
  return std::strtod(buffer, nullptr);
}

Json FloatArray(std::span<const float> values) {
  Json array = Json::array();
  array.get_ref<Json::array_t&>().reserve(values.size());
  for (float v : values) array.push_back(ShortestDouble(v));
  return array;
}

// Stored metadata is a JSON object the engine validated; it is embedded as an object.
Json Metadata(const std::string& metadata_json) {
  Json parsed = Json::parse(metadata_json, nullptr, /*allow_exceptions=*/false);
  return parsed.is_discarded() ? Json::object() : parsed;
}

}  // namespace

Json EncodeCollectionInfo(const CollectionInfo& info, const IndexInfo& state) {
  const CollectionSchema& s = info.schema;
  const IndexSettings& settings = s.index;
  Json index = {{"nlist", settings.nlist},     {"m", settings.m},
                {"opq", settings.opq},         {"distill", settings.distill},
                {"epochs", settings.epochs},   {"nprobe", settings.nprobe},
                {"train_threshold", settings.train_threshold},
                {"kind", state.kind},          {"generation", state.generation},
                {"bytes_per_vector", state.bytes_per_vector}, {"training", state.training}};
  return {{"name", info.name},  {"dense_dim", s.dense_dim}, {"metric", MetricName(s.metric)},
          {"sparse", s.sparse}, {"colbert", s.colbert},     {"colbert_dim", s.colbert_dim},
          {"model", s.model},   {"count", info.count}, {"index", std::move(index)}};
}

Json EncodeDocument(const Document& doc) {
  Json out = {{"id", doc.id}, {"dense", FloatArray(doc.dense)}};
  if (!doc.text.empty()) out["text"] = doc.text;
  if (!doc.metadata_json.empty()) out["metadata"] = Metadata(doc.metadata_json);
  if (!doc.sparse.empty() || !doc.sparse.values.empty()) {
    Json indices = Json::array();
    for (int32_t i : doc.sparse.indices) indices.push_back(i);
    out["sparse"] = {{"indices", std::move(indices)}, {"values", FloatArray(doc.sparse.values)}};
  }
  if (!doc.colbert.empty()) {
    Json rows = Json::array();
    const size_t width = doc.colbert.data.size() / doc.colbert.rows;
    for (size_t r = 0; r < doc.colbert.rows; ++r)
      rows.push_back(FloatArray(std::span<const float>(doc.colbert.data).subspan(r * width, width)));
    out["colbert"] = std::move(rows);
  }
  return out;
}

Json EncodeSearchResults(const std::vector<SearchHit>& hits, const SearchRequest& request, double took_ms) {
  Json results = Json::array();
  for (const SearchHit& hit : hits) {
    Json item = {{"id", hit.id}, {"score", ShortestDouble(hit.score)}};
    if (request.include_scores) {
      Json scores = Json::object();
      if (hit.scores.dense) scores["dense"] = ShortestDouble(*hit.scores.dense);
      if (hit.scores.sparse) scores["sparse"] = ShortestDouble(*hit.scores.sparse);
      if (hit.scores.colbert) scores["colbert"] = ShortestDouble(*hit.scores.colbert);
      item["scores"] = std::move(scores);
    }
    if (request.options.include_metadata) item["metadata"] = hit.metadata_json.empty() ? Json::object() : Metadata(hit.metadata_json);
    if (request.options.include_text) item["text"] = hit.text;
    results.push_back(std::move(item));
  }
  return {{"results", std::move(results)}, {"took_ms", std::round(took_ms * 1000) / 1000}};
}

Json EncodeEmbeddings(const std::vector<TextEmbedding>& embeddings, const EmbedRequest& request) {
  Json list = Json::array();
  for (const TextEmbedding& e : embeddings) {
    Json item = Json::object();
    if (request.tokens) item["tokens"] = e.tokens;
    if (request.dense) item["dense"] = FloatArray(e.dense);
    if (request.sparse) {
      Json sparse = Json::object();
      for (size_t i = 0; i < e.sparse.indices.size(); ++i)
        sparse[std::to_string(e.sparse.indices[i])] = ShortestDouble(e.sparse.values[i]);
      item["sparse"] = std::move(sparse);
    }
    if (request.colbert) {
      Json rows = Json::array();
      const size_t width = e.colbert.rows ? e.colbert.data.size() / e.colbert.rows : 0;
      for (size_t r = 0; r < e.colbert.rows; ++r)
        rows.push_back(FloatArray(std::span<const float>(e.colbert.data).subspan(r * width, width)));
      item["colbert"] = std::move(rows);
    }
    list.push_back(std::move(item));
  }
  return {{"embeddings", std::move(list)}};
}

Json EncodeJob(const JobView& job) {
  Json out = {{"id", job.id},
              {"collection", job.collection},
              {"state", JobStateName(job.state)},
              {"phase", job.phase},
              {"fraction", job.fraction},
              {"loss", job.loss},
              {"eta_seconds", job.eta_seconds ? Json(*job.eta_seconds) : Json(nullptr)},
              {"elapsed_seconds", job.elapsed_seconds}};
  if (job.report) {
    const TrainReport& r = *job.report;
    out["report"] = {{"generation", r.generation},         {"documents", r.documents},
                     {"kmeans_seconds", r.kmeans_seconds}, {"distill_seconds", r.distill_seconds},
                     {"total_seconds", r.total_seconds},   {"first_loss", r.first_loss},
                     {"last_loss", r.last_loss},           {"resumed_kmeans", r.resumed_kmeans},
                     {"resumed_epochs", r.resumed_epochs}, {"validation_recall", r.validation_recall},
                     {"best_epoch", r.best_epoch}};
  }
  if (job.error) out["error"] = {{"code", StatusCodeName(job.error->code())}, {"message", job.error->message()}};
  return out;
}

std::string Dump(const Json& json) { return json.dump(-1, ' ', false, Json::error_handler_t::replace); }

}  // namespace m3vdb::net::detail
