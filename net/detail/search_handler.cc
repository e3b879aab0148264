// POST /collections/{name}/search.
#include <chrono>

#include "net/detail/handlers.h"

namespace m3vdb::net::detail {

Response Search(Database& db, SearchBatcher& batcher, const Request& request, const PathParams& params) {
  const auto start = std::chrono::steady_clock::now();
  auto collection = db.GetCollection(params.collection);
  if (!collection.ok()) return ErrorResponse(collection.status());
  auto body = ParseJsonObject(request.body);
  if (!body.ok()) return ErrorResponse(body.status());
  auto search = DecodeSearchRequest(*body);
  if (!search.ok()) return ErrorResponse(search.status());
  auto hits = batcher.Search(*collection, search->query, search->options);
  if (!hits.ok()) return ErrorResponse(hits.status());
  const double took_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return JsonResponse(200, EncodeSearchResults(*hits, *search, took_ms));
}

}  // namespace m3vdb::net::detail
