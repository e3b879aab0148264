// Text encoding of a model collection's documents and queries (collection_impl.h): the texts
// of every item that lacks a mode are encoded in one embedder call, and only the missing modes
// are filled.
#include "engine/detail/collection_impl.h"
#include "engine/detail/validation.h"

namespace m3vdb::engine {
namespace {

// Encodes the texts of in[pending] in one call; `out` becomes `in` with those items' missing
// modes filled.
template <class T>
Status EncodeInto(const TextModel& model, const CollectionSchema& schema, std::span<const T> in,
                  const std::vector<size_t>& pending, const std::string& what, std::vector<T>* out) {
  std::vector<std::string> texts;
  texts.reserve(pending.size());
  for (size_t i : pending) texts.push_back(in[i].text);
  Result<std::vector<TextEmbedding>> encoded = model.Encode(texts);
  if (!encoded.ok()) return encoded.status().WithContext(what);
  out->assign(in.begin(), in.end());
  for (size_t k = 0; k < pending.size(); ++k) FillMissingModes(schema, std::move((*encoded)[k]), &(*out)[pending[k]]);
  return Status::OK();
}

}  // namespace

Status CollectionImpl::ModelMissing() const {
  return Status::FailedPrecondition("collection '" + name_ +
                                    "' embeds text with a model, but the database was opened without one "
                                    "(set Options::model_dir, or start the server with --model DIR)");
}

Result<bool> CollectionImpl::EncodeDocuments(std::span<const Document> in, std::vector<Document>* out) const {
  if (!schema_.model) return false;
  std::vector<size_t> pending;
  for (size_t i = 0; i < in.size(); ++i)
    if (LacksModes(schema_, in[i])) pending.push_back(i);
  if (pending.empty()) return false;
  M3VDB_RETURN_IF_ERROR(ValidateBatchTexts(limits_, in));
  if (!model_) return ModelMissing();
  M3VDB_RETURN_IF_ERROR(
      EncodeInto(*model_, schema_, in, pending, "encoding the texts of collection '" + name_ + "'", out));
  return true;
}

Result<bool> CollectionImpl::EncodeQueries(std::span<const Query> in, std::vector<Query>* out) const {
  std::vector<size_t> pending;
  for (size_t i = 0; i < in.size(); ++i) {
    M3VDB_RETURN_IF_ERROR(ValidateQueryText(schema_, limits_, in[i])
                              .WithContext(in.size() > 1 ? "query " + std::to_string(i) : "search"));
    if (LacksModes(schema_, in[i])) pending.push_back(i);
  }
  if (pending.empty()) return false;
  if (!model_) return ModelMissing();
  M3VDB_RETURN_IF_ERROR(
      EncodeInto(*model_, schema_, in, pending, "encoding the query text of collection '" + name_ + "'", out));
  return true;
}

}  // namespace m3vdb::engine
