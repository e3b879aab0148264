// PUT/GET/DELETE /collections/{name} and GET /collections.
#include "net/detail/handlers.h"

namespace m3vdb::net::detail {

Response JsonResponse(int status, const Json& body) {
  Response response;
  response.status = status;
  response.body = Dump(body);
  return response;
}

namespace {

Json Describe(const std::string& name, const Collection& collection) {
  return EncodeCollectionInfo(CollectionInfo{name, collection.schema(), collection.Count()},
                              collection.GetIndexInfo());
}

}  // namespace

Response ListCollections(Database& db, const Request&, const PathParams&) {
  Json list = Json::array();
  for (const CollectionInfo& info : db.ListCollections()) {
    auto collection = db.GetCollection(info.name);
    if (collection.ok()) list.push_back(Describe(info.name, **collection));  // skips one dropped meanwhile
  }
  return JsonResponse(200, {{"collections", std::move(list)}});
}

Response PutCollection(Database& db, const Request& request, const PathParams& params) {
  auto body = ParseJsonObject(request.body);
  if (!body.ok()) return ErrorResponse(body.status());
  auto spec = DecodeCollectionSpec(*body);
  if (!spec.ok()) return ErrorResponse(spec.status());
  auto collection = db.CreateCollection(params.collection, spec->schema);
  if (!collection.ok()) return ErrorResponse(collection.status());
  return JsonResponse(201, Describe(params.collection, **collection));
}

Response GetCollection(Database& db, const Request&, const PathParams& params) {
  auto collection = db.GetCollection(params.collection);
  if (!collection.ok()) return ErrorResponse(collection.status());
  return JsonResponse(200, Describe(params.collection, **collection));
}

Response DeleteCollection(Database& db, const Request&, const PathParams& params) {
  Status status = db.DropCollection(params.collection);
  if (!status.ok()) return ErrorResponse(status);
  return JsonResponse(200, {{"dropped", params.collection}});
}

}  // namespace m3vdb::net::detail
