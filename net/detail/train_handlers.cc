// POST /collections/{name}/train and GET /jobs/{id}.
#include "net/detail/handlers.h"

namespace m3vdb::net::detail {

Response PostTrain(Database& db, TrainJobs& jobs, const Request& request, const PathParams& params) {
  auto collection = db.GetCollection(params.collection);
  if (!collection.ok()) return ErrorResponse(collection.status());
  TrainOptions options;
  if (!request.body.empty()) {
    auto body = ParseJsonObject(request.body);
    if (!body.ok()) return ErrorResponse(body.status());
    auto decoded = DecodeTrainRequest(*body, (*collection)->schema().dense_dim);
    if (!decoded.ok()) return ErrorResponse(decoded.status());
    options = std::move(*decoded);
  }
  auto job = jobs.Start(params.collection, std::move(*collection), std::move(options));
  if (!job.ok()) return ErrorResponse(job.status());
  Response response = JsonResponse(202, EncodeJob(*job));
  response.headers.emplace_back("Location", "/jobs/" + job->id);
  return response;
}

Response GetJob(TrainJobs& jobs, const Request&, const PathParams& params) {
  auto job = jobs.Get(params.id);
  if (!job.ok()) return ErrorResponse(job.status());
  return JsonResponse(200, EncodeJob(*job));
}

}  // namespace m3vdb::net::detail
