// `m3vdb serve`: opens the database directory and serves the HTTP API (net/) until SIGTERM or
// SIGINT, then finishes the requests in flight and closes the database cleanly. Prints
// "m3vdb listening on http://HOST:PORT" on stdout once it accepts connections (with --port 0,
// the port the system picked).
#include <spdlog/spdlog.h>

#include <cstdio>

#include "net/server.h"
#include "tools/commands.h"
#include "tools/config.h"

namespace m3vdb::tools {
namespace {

int RunServe(const ConfigFlags& flags) {
  auto config = flags.Resolve();
  if (!config.ok()) {
    spdlog::error("{}", config.status().message());
    return 2;
  }
  if (!config->log_level.empty()) spdlog::set_level(spdlog::level::from_str(config->log_level));
  // With `model`, Database::Open loads the checkpoint (once per process) before serving.
  auto db = Database::Open(config->engine, config->data_dir);
  if (!db.ok()) {
    spdlog::error("cannot open the database in {}: {}", config->data_dir, db.status().ToString());
    return 1;
  }
  if (auto model = (*db)->GetModelInfo())
    spdlog::info("model {} loaded: dense {}, ColBERT {}, max_length {}, backend {}", model->dir, model->dim,
                 model->colbert_dim, model->max_length, model->backend);
  config->server.handle_signals = true;
  auto server = net::Server::Start(**db, config->server);
  if (!server.ok()) {
    spdlog::error("{}", server.status().ToString());
    return 1;
  }
  std::printf("m3vdb listening on http://%s:%u\n", (*server)->host().c_str(), unsigned{(*server)->port()});
  std::fflush(stdout);
  (*server)->Wait();
  server->reset();  // every accepted request is answered; no engine call is running
  db->reset();
  spdlog::info("database {} closed", config->data_dir);
  return 0;
}

}  // namespace

Runner AddServeCommand(CLI::App& app) {
  auto* serve = app.add_subcommand("serve", "Serve a database over HTTP (JSON API, see docs/api.md)");
  auto flags = std::make_shared<ConfigFlags>(*serve);
  return [flags] { return RunServe(*flags); };
}

}  // namespace m3vdb::tools
