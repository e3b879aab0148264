// The API's handlers: plain functions from (database, request, path parameters) to the
// response, one per route. They run on the calling thread, block on the engine, never throw,
// and know nothing about sockets; `Service` routes to them after authentication and the
// content-type check.
#pragma once

#include <mutex>
#include <string>

#include "net/detail/json_codec.h"
#include "net/detail/search_batcher.h"
#include "net/detail/train_jobs.h"
#include "net/service.h"

namespace m3vdb::net::detail {

// The path parameters the router matched, percent-decoded.
struct PathParams {
  std::string collection;  // {name}
  std::string id;          // {id}
};

// collection_handlers.cc
Response ListCollections(Database& db, const Request& request, const PathParams& params);
Response PutCollection(Database& db, const Request& request, const PathParams& params);
Response GetCollection(Database& db, const Request& request, const PathParams& params);
Response DeleteCollection(Database& db, const Request& request, const PathParams& params);

// document_handlers.cc
Response PostDocuments(Database& db, const Request& request, const PathParams& params);
Response GetDocument(Database& db, const Request& request, const PathParams& params);
Response DeleteDocument(Database& db, const Request& request, const PathParams& params);

// search_handler.cc: concurrent searches are coalesced by `batcher`.
Response Search(Database& db, SearchBatcher& batcher, const Request& request, const PathParams& params);

// train_handlers.cc: training runs as a job on its own thread (see train_jobs.h); 202 + job.
Response PostTrain(Database& db, TrainJobs& jobs, const Request& request, const PathParams& params);
Response GetJob(TrainJobs& jobs, const Request& request, const PathParams& params);
// embed_handler.cc: POST /embed, within the service's limits.
Response Embed(Database& db, const ServiceOptions& options, const Request& request);
// snapshot_handler.cc: POST /snapshots, a RocksDB checkpoint of the whole database written to
// `options.snapshot_dir`/{name}. Snapshots run one at a time: `one_at_a_time` is held while one
// is written, so two requests for the same name get 201 and 409, never a half-made directory.
Response PostSnapshot(Database& db, const ServiceOptions& options, std::mutex& one_at_a_time, const Request& request);

// Shared by the handlers.
Response JsonResponse(int status, const Json& body);

}  // namespace m3vdb::net::detail
