// `m3vdb snapshot DIR --to DIR2`: a consistent copy of a database directory (RocksDB
// checkpoint: hard links where the file system allows, so it is fast and small). The command
// opens DIR itself, so no other process may hold it; a program that embeds the library takes
// the same snapshot with Database::Checkpoint while it goes on reading and writing.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <filesystem>

#include <m3vdb/m3vdb.h>

#include "tools/commands.h"

namespace m3vdb::tools {
namespace {

struct SnapshotFlags {
  std::string dir, to;
};

int RunSnapshot(const SnapshotFlags& f) {
  if (std::filesystem::exists(f.to)) {
    spdlog::error("--to {} already exists: the snapshot needs a new directory", f.to);
    return 2;
  }
  Options options;
  options.create_if_missing = false;
  auto db = Database::Open(options, f.dir);
  if (!db.ok()) {
    spdlog::error("{}", db.status().ToString());
    return 1;
  }
  if (Status s = (*db)->Checkpoint(f.to); !s.ok()) {
    spdlog::error("{}", s.ToString());
    return 1;
  }
  std::printf("snapshot of %s written to %s\n", f.dir.c_str(), f.to.c_str());
  return 0;
}

}  // namespace

Runner AddSnapshotCommand(CLI::App& app) {
  auto* cmd = app.add_subcommand("snapshot", "Write a consistent copy of a database directory (RocksDB checkpoint)");
  auto f = std::make_shared<SnapshotFlags>();
  cmd->add_option("dir", f->dir, "database directory")->required()->check(CLI::ExistingDirectory);
  cmd->add_option("--to", f->to, "new directory for the copy")->required();
  return [f] { return RunSnapshot(*f); };
}

}  // namespace m3vdb::tools
