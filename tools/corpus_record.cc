#include "tools/corpus_record.h"

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>
#include <numeric>

namespace m3vdb::tools {
namespace {

using nlohmann::json;

Status Bad(const std::string& reason) { return Status::InvalidArgument(reason); }

Status ReadFloats(const json& array, const char* field, std::vector<float>* out) {
  if (!array.is_array()) return Bad(std::string("\"") + field + "\" must be an array of numbers");
  out->reserve(out->size() + array.size());
  for (const json& v : array) {
    if (!v.is_number()) return Bad(std::string("\"") + field + "\" must be an array of numbers");
    out->push_back(v.get<float>());
  }
  return Status::OK();
}

Status ReadSparse(const json& sparse, SparseVector* out) {
  std::vector<std::pair<int32_t, float>> terms;
  if (sparse.is_object() && sparse.contains("indices")) {
    const json& indices = sparse["indices"];
    const json* values = sparse.contains("values") ? &sparse["values"] : nullptr;
    if (!indices.is_array() || !values || !values->is_array() || indices.size() != values->size() || sparse.size() != 2)
      return Bad("\"sparse\" must be {\"indices\": [...], \"values\": [...]} with arrays of equal length");
    for (size_t i = 0; i < indices.size(); ++i) {
      if (!indices[i].is_number_integer() || indices[i].get<int64_t>() < 0 || indices[i].get<int64_t>() > INT32_MAX)
        return Bad("\"sparse\".indices must be token ids (integers >= 0)");
      if (!(*values)[i].is_number()) return Bad("\"sparse\".values must be numbers");
      terms.emplace_back(indices[i].get<int32_t>(), (*values)[i].get<float>());
    }
  } else if (sparse.is_object()) {  // {"<token id>": weight}
    for (const auto& [key, value] : sparse.items()) {
      int64_t id = -1;
      const auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), id);
      if (ec != std::errc() || end != key.data() + key.size() || id < 0 || id > INT32_MAX)
        return Bad("\"sparse\" key '" + key + "' is not a token id (an integer >= 0)");
      if (!value.is_number()) return Bad("\"sparse\" weight of token " + key + " must be a number");
      terms.emplace_back(static_cast<int32_t>(id), value.get<float>());
    }
  } else {
    return Bad("\"sparse\" must be an object: {\"indices\": [...], \"values\": [...]} or {\"<token id>\": weight}");
  }
  std::sort(terms.begin(), terms.end());
  for (size_t i = 1; i < terms.size(); ++i)
    if (terms[i].first == terms[i - 1].first) return Bad("\"sparse\" lists token " + std::to_string(terms[i].first) + " twice");
  for (const auto& [id, w] : terms) {
    out->indices.push_back(id);
    out->values.push_back(w);
  }
  return Status::OK();
}

}  // namespace

uint64_t Fnv1a(std::string_view bytes) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

Result<Document> ParseCorpusLine(std::string_view line, const RecordRules& rules) {
  json j;
  try {  // nlohmann reports the position and reason of a syntax error only by throwing
    j = json::parse(line);
  } catch (const json::parse_error& e) {
    return Bad(std::string("malformed JSON: ") + e.what());
  }
  if (!j.is_object()) return Bad("the line must be a JSON object");
  Document doc;
  auto id = j.find("id");
  if (id == j.end() || id->is_null()) return Bad("missing \"id\"");
  if (id->is_string()) doc.id = id->get<std::string>();
  else if (id->is_number_unsigned() || (id->is_number_integer() && id->get<int64_t>() >= 0))
    doc.id = std::to_string(id->get<uint64_t>());
  else return Bad("\"id\" must be a string or a non-negative integer");
  if (doc.id.empty()) return Bad("\"id\" is empty");

  for (const auto& [key, value] : j.items()) {
    if (key == "id") continue;
    if (key == "text") {
      if (!value.is_string()) return Bad("\"text\" must be a string");
      doc.text = value.get<std::string>();
    } else if (key == "metadata") {
      if (value.is_null()) continue;
      if (!value.is_object()) return Bad("\"metadata\" must be a JSON object");
      doc.metadata_json = value.dump();
    } else if (key == "dense") {
      M3VDB_RETURN_IF_ERROR(ReadFloats(value, "dense", &doc.dense));
      if (rules.dense_dim != 0 && doc.dense.size() != rules.dense_dim)
        return Bad("\"dense\" has " + std::to_string(doc.dense.size()) + " values, the collection has dimension " +
                   std::to_string(rules.dense_dim));
    } else if (key == "sparse") {
      if (!rules.sparse) return Bad("\"sparse\" given, but the collection stores no sparse weights (build with --sparse)");
      M3VDB_RETURN_IF_ERROR(ReadSparse(value, &doc.sparse));
    } else if (key == "colbert") {
      if (!rules.colbert) return Bad("\"colbert\" given, but the collection stores no ColBERT vectors (build with --colbert)");
      if (!value.is_array()) return Bad("\"colbert\" must be an array of vectors (arrays of numbers)");
      size_t width = 0;
      for (const json& row : value) {
        const size_t at = doc.colbert.data.size();
        M3VDB_RETURN_IF_ERROR(ReadFloats(row, "colbert", &doc.colbert.data));
        const size_t w = doc.colbert.data.size() - at;
        if (doc.colbert.rows == 0) width = w;
        if (w != width || w == 0) return Bad("\"colbert\" vectors must all have the same, non-zero width");
        ++doc.colbert.rows;
      }
    }
    // Other fields are ignored, so corpora may carry extra columns.
  }
  if (rules.dense_required && doc.dense.empty()) return Bad("missing \"dense\" (and no model to embed \"text\")");
  return doc;
}

}  // namespace m3vdb::tools
