// PUT/GET/DELETE /collections/{name} and GET /collections.
#include "net/detail/handlers.h"

namespace m3vdb::net::detail {

Response JsonResponse(int status, const Json& body) {
  Response response;
  response.status = status;
  response.body = Dump(body);
  return response;
}

Status NoModelError(const std::string& what) {
  return Status::FailedPrecondition(what + ": no embedding model is configured; start the server with --model DIR");
}

Response ListCollections(Database& db, const Request&, const PathParams&) {
  Json list = Json::array();
  for (const CollectionInfo& info : db.ListCollections()) list.push_back(EncodeCollectionInfo(info));
  return JsonResponse(200, {{"collections", std::move(list)}});
}

Response PutCollection(Database& db, const Request& request, const PathParams& params) {
  auto body = ParseJsonObject(request.body);
  if (!body.ok()) return ErrorResponse(body.status());
  auto spec = DecodeCollectionSpec(*body);
  if (!spec.ok()) return ErrorResponse(spec.status());
  if (spec->model) return ErrorResponse(NoModelError("\"model\": true"));
  auto collection = db.CreateCollection(params.collection, spec->schema);
  if (!collection.ok()) return ErrorResponse(collection.status());
  const CollectionInfo info{params.collection, (*collection)->schema(), (*collection)->Count()};
  return JsonResponse(201, EncodeCollectionInfo(info));
}

Response GetCollection(Database& db, const Request&, const PathParams& params) {
  auto collection = db.GetCollection(params.collection);
  if (!collection.ok()) return ErrorResponse(collection.status());
  const CollectionInfo info{params.collection, (*collection)->schema(), (*collection)->Count()};
  return JsonResponse(200, EncodeCollectionInfo(info));
}

Response DeleteCollection(Database& db, const Request&, const PathParams& params) {
  Status status = db.DropCollection(params.collection);
  if (!status.ok()) return ErrorResponse(status);
  return JsonResponse(200, {{"dropped", params.collection}});
}

}  // namespace m3vdb::net::detail
