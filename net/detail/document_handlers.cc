// POST /collections/{name}/documents, GET and DELETE /collections/{name}/documents/{id}.
#include "net/detail/handlers.h"

namespace m3vdb::net::detail {

Response PostDocuments(Database& db, const Request& request, const PathParams& params) {
  auto collection = db.GetCollection(params.collection);
  if (!collection.ok()) return ErrorResponse(collection.status());
  auto body = ParseJsonObject(request.body);
  if (!body.ok()) return ErrorResponse(body.status());
  auto batch = DecodeDocumentBatch(*body);
  if (!batch.ok()) return ErrorResponse(batch.status());
  // One engine batch: the whole request is written, or (on any error) none of it. Texts of a
  // model collection are encoded by the engine in one call.
  Status status = (*collection)->Upsert(batch->documents);
  if (!status.ok()) return ErrorResponse(status);
  return JsonResponse(200, {{"written", batch->documents.size()}});
}

Response GetDocument(Database& db, const Request&, const PathParams& params) {
  auto collection = db.GetCollection(params.collection);
  if (!collection.ok()) return ErrorResponse(collection.status());
  auto doc = (*collection)->Get(params.id);
  if (!doc.ok()) return ErrorResponse(doc.status());
  return JsonResponse(200, EncodeDocument(*doc));
}

Response DeleteDocument(Database& db, const Request&, const PathParams& params) {
  auto collection = db.GetCollection(params.collection);
  if (!collection.ok()) return ErrorResponse(collection.status());
  const std::string ids[] = {params.id};
  auto deleted = (*collection)->Delete(ids);
  if (!deleted.ok()) return ErrorResponse(deleted.status());
  if (*deleted == 0)
    return ErrorResponse(
        Status::NotFound("document '" + params.id + "' not found in collection '" + params.collection + "'"));
  return JsonResponse(200, {{"deleted", *deleted}});
}

}  // namespace m3vdb::net::detail
