// Routing: (method, path) to one of the API's routes, with the path parameters percent-decoded.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace m3vdb::net::detail {

enum class RouteId {
  kHealthz,          // GET /healthz
  kMetrics,          // GET /metrics
  kListCollections,  // GET /collections
  kPutCollection,    // PUT /collections/{name}
  kGetCollection,    // GET /collections/{name}
  kDeleteCollection, // DELETE /collections/{name}
  kPostDocuments,    // POST /collections/{name}/documents
  kGetDocument,      // GET /collections/{name}/documents/{id}
  kDeleteDocument,   // DELETE /collections/{name}/documents/{id}
  kSearch,           // POST /collections/{name}/search
  kTrain,            // POST /collections/{name}/train
  kGetJob,           // GET /jobs/{id}
  kEmbed,            // POST /embed
  kPostSnapshot,     // POST /snapshots
};

struct RouteMatch {
  enum class Kind { kFound, kUnknownPath, kWrongMethod, kBadPath } kind = Kind::kUnknownPath;
  RouteId route = RouteId::kHealthz;  // when kFound
  std::string label;                  // the path pattern ("/collections/{name}"), "unmatched" if none
  std::string allow;                  // kWrongMethod: the methods the path accepts ("GET, PUT")
  std::string collection;             // {name}, decoded
  std::string id;                     // {id}, decoded
  std::string error;                  // kBadPath: what is wrong (a bad percent escape)
};

// Matches `target` (path plus optional "?query", which is ignored).
RouteMatch MatchRoute(std::string_view method, std::string_view target);

// Every route as (method, path pattern), in matching order.
std::vector<std::pair<std::string_view, std::string_view>> AllRoutes();

// Decodes %XX escapes; false on a malformed escape. '+' is kept (it is not a space in paths).
bool PercentDecode(std::string_view in, std::string* out);

}  // namespace m3vdb::net::detail
