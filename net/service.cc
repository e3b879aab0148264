#include "net/service.h"

#include <spdlog/spdlog.h>

#include <cctype>
#include <exception>

#include "net/detail/auth.h"
#include "net/detail/handlers.h"
#include "net/detail/http_status.h"
#include "net/detail/metrics.h"
#include "net/detail/router.h"
#include "net/detail/search_batcher.h"
#include "net/detail/train_jobs.h"

namespace m3vdb::net {
namespace {

using detail::RouteId;
using detail::RouteMatch;

// "application/json", optionally with parameters ("; charset=utf-8"), any letter case.
bool IsJsonContentType(std::string_view content_type) {
  std::string_view media = content_type.substr(0, content_type.find(';'));
  while (!media.empty() && media.back() == ' ') media.remove_suffix(1);
  constexpr std::string_view kJson = "application/json";
  if (media.size() != kJson.size()) return false;
  for (size_t i = 0; i < media.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(media[i])) != kJson[i]) return false;
  return true;
}

bool HasJsonBody(RouteId route) {
  return route == RouteId::kPutCollection || route == RouteId::kPostDocuments || route == RouteId::kSearch ||
         route == RouteId::kEmbed || route == RouteId::kPostSnapshot;
}

}  // namespace

Response ErrorResponse(const Status& status) {
  return ErrorResponse(detail::HttpStatusFor(status.code()), StatusCodeName(status.code()), status.message());
}

Response ErrorResponse(int http_status, std::string_view code, std::string_view message) {
  Response response;
  response.status = http_status;
  response.body = detail::ErrorBody(code, message);
  return response;
}

Service::Service(Database& db, ServiceOptions options)
    : db_(db),
      options_(std::move(options)),
      metrics_(std::make_unique<detail::Metrics>()),
      searches_(std::make_unique<detail::SearchBatcher>(
          options_.search_runners, options_.max_search_batch)),
      jobs_(std::make_unique<detail::TrainJobs>(options_.max_finished_jobs, options_.job_retention)) {}

Service::~Service() = default;

detail::EngineMetrics Service::CollectMetrics() const {
  detail::EngineMetrics m;
  for (const CollectionInfo& info : db_.ListCollections()) {
    auto collection = db_.GetCollection(info.name);
    if (!collection.ok()) continue;  // dropped meanwhile
    m.collections.push_back({info.name, info.count, (*collection)->GetIndexInfo()});
  }
  m.search_calls = searches_->engine_calls();
  m.searches = searches_->searches();
  for (const auto& [state, count] : jobs_->CountByState()) m.jobs_by_state.emplace_back(detail::JobStateName(state), count);
  return m;
}

bool Service::IsLightweight(const Request& request) const {
  const RouteMatch match = detail::MatchRoute(request.method, request.target);
  return match.kind != RouteMatch::Kind::kFound || match.route == RouteId::kHealthz ||
         match.route == RouteId::kMetrics || match.route == RouteId::kGetJob;
}

void Service::RecordExchange(const Request& request, int status, double seconds) const {
  const std::string label = detail::MatchRoute(request.method, request.target).label;
  metrics_->Record(request.method, label, status, seconds);
  spdlog::info("{} {} {} {:.2f} ms", request.method, request.target, status, seconds * 1000);
}

Response Service::Handle(const Request& request) const {
  try {
    const RouteMatch match = detail::MatchRoute(request.method, request.target);
    const bool public_route = match.kind == RouteMatch::Kind::kFound && match.route == RouteId::kHealthz;
    if (!options_.api_keys.empty() && !public_route &&
        !detail::IsAuthorized(request.authorization, options_.api_keys)) {
      Response response = ErrorResponse(401, "unauthenticated", "a valid API key is required: Authorization: Bearer <key>");
      response.headers.emplace_back("WWW-Authenticate", "Bearer");
      return response;
    }
    switch (match.kind) {
      case RouteMatch::Kind::kFound:
        break;
      case RouteMatch::Kind::kUnknownPath:
        return ErrorResponse(404, "not_found", "no route " + request.method + " " + request.target);
      case RouteMatch::Kind::kWrongMethod: {
        Response response = ErrorResponse(405, "method_not_allowed", match.label + " accepts " + match.allow);
        response.headers.emplace_back("Allow", match.allow);
        return response;
      }
      case RouteMatch::Kind::kBadPath:
        return ErrorResponse(Status::InvalidArgument(match.error));
    }
    const bool json_body = HasJsonBody(match.route) || (match.route == RouteId::kTrain && !request.body.empty());
    if (json_body && !IsJsonContentType(request.content_type))
      return ErrorResponse(415, "unsupported_media_type",
                           "the body must be JSON with Content-Type: application/json, got '" +
                               request.content_type + "'");
    const detail::PathParams params{match.collection, match.id};
    switch (match.route) {
      case RouteId::kHealthz: return detail::JsonResponse(200, {{"status", "ok"}});
      case RouteId::kMetrics: {
        Response response;
        response.content_type = "text/plain; version=0.0.4";
        response.body = metrics_->Render(CollectMetrics());
        response.body += detail::RenderModelMetrics(db_.GetModelInfo());
        return response;
      }
      case RouteId::kListCollections: return detail::ListCollections(db_, request, params);
      case RouteId::kPutCollection: return detail::PutCollection(db_, request, params);
      case RouteId::kGetCollection: return detail::GetCollection(db_, request, params);
      case RouteId::kDeleteCollection: return detail::DeleteCollection(db_, request, params);
      case RouteId::kPostDocuments: return detail::PostDocuments(db_, request, params);
      case RouteId::kGetDocument: return detail::GetDocument(db_, request, params);
      case RouteId::kDeleteDocument: return detail::DeleteDocument(db_, request, params);
      case RouteId::kSearch: return detail::Search(db_, *searches_, request, params);
      case RouteId::kTrain: return detail::PostTrain(db_, *jobs_, request, params);
      case RouteId::kGetJob: return detail::GetJob(*jobs_, request, params);
      case RouteId::kEmbed: return detail::Embed(db_, options_, request);
      case RouteId::kPostSnapshot: return detail::PostSnapshot(db_, options_, snapshot_mu_, request);
    }
    return ErrorResponse(Status::Internal("route without a handler"));
  } catch (const std::exception& e) {  // the edge of the module: nothing escapes to the server
    return ErrorResponse(Status::Internal(std::string("unexpected error: ") + e.what()));
  }
}

}  // namespace m3vdb::net
