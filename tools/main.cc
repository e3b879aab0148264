// m3vdb: one command with subcommands (CLI11).
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <map>

#include "tools/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"m3vdb: a vector database for text retrieval (BGE-M3 dense, sparse and ColBERT)"};
  app.require_subcommand(1);
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")->capture_default_str();

  std::map<std::string, m3vdb::tools::Runner> runners;
  runners["bench"] = m3vdb::tools::AddBenchCommand(app);
  runners["info"] = m3vdb::tools::AddInfoCommand(app);
  runners["serve"] = m3vdb::tools::AddServeCommand(app);
  runners["quantize"] = m3vdb::tools::AddQuantizeCommand(app);
  runners["embed"] = m3vdb::tools::AddEmbedCommand(app);
  runners["build"] = m3vdb::tools::AddBuildCommand(app);
  runners["search"] = m3vdb::tools::AddSearchCommand(app);
  runners["inspect"] = m3vdb::tools::AddInspectCommand(app);
  runners["snapshot"] = m3vdb::tools::AddSnapshotCommand(app);

  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::from_str(log_level));
  for (auto* sub : app.get_subcommands()) {
    auto it = runners.find(sub->get_name());
    if (it != runners.end()) return it->second();
  }
  return 2;
}
