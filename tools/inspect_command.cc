// `m3vdb inspect DIR [--json]`: what a database directory holds: collections with their
// schema, document count, index state and sizes, the state of an `m3vdb build` that wrote
// them, and the bytes on disk.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "tools/build_marker.h"
#include <m3vdb/m3vdb.h>

#include "tools/commands.h"

namespace m3vdb::tools {
namespace {

struct InspectFlags {
  std::string dir;
  bool json = false;
};

uint64_t DiskBytes(const std::string& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir, ec))
    if (entry.is_regular_file(ec)) total += entry.file_size(ec);
  return total;
}

int RunInspect(const InspectFlags& f) {
  Options options;
  options.create_if_missing = false;
  auto db = Database::Open(options, f.dir);
  if (!db.ok()) {
    spdlog::error("{}", db.status().ToString());
    return 1;
  }
  nlohmann::json out = {{"path", f.dir}, {"disk_bytes", DiskBytes(f.dir)}, {"collections", nlohmann::json::array()}};
  for (const CollectionInfo& info : (*db)->ListCollections()) {
    auto coll = (*db)->GetCollection(info.name);
    if (!coll.ok()) continue;
    const IndexInfo index = (*coll)->GetIndexInfo();
    nlohmann::json c = {
        {"name", info.name},
        {"count", info.count},
        {"dense_dim", info.schema.dense_dim},
        {"metric", info.schema.metric == Metric::kL2 ? "l2" : "ip"},
        {"sparse", info.schema.sparse},
        {"colbert", info.schema.colbert},
        {"index", {{"kind", index.kind}, {"generation", index.generation}, {"nlist", index.nlist}, {"m", index.m},
                   {"bytes_per_vector", index.bytes_per_vector}, {"exact_bytes_per_vector", 4 * info.schema.dense_dim},
                   {"index_bytes", index.bytes_per_vector * info.count}}}};
    auto marker = (*coll)->GetProgressMarker();
    if (marker.ok() && marker->has_value()) {
      auto parsed = BuildMarker::Parse(**marker);
      if (parsed.ok())
        c["build"] = {{"phase", parsed->phase}, {"input", parsed->input}, {"lines", parsed->line},
                      {"skipped", parsed->skipped}};
    }
    out["collections"].push_back(std::move(c));
  }
  if (f.json) {
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  std::printf("database %s: %llu bytes on disk, %zu collection(s)\n", f.dir.c_str(),
              static_cast<unsigned long long>(out["disk_bytes"].get<uint64_t>()), out["collections"].size());
  for (const auto& c : out["collections"]) {
    const auto& ix = c["index"];
    std::printf("  %s: %llu documents, dense %u (%s)%s%s\n", c["name"].get<std::string>().c_str(),
                static_cast<unsigned long long>(c["count"].get<uint64_t>()), c["dense_dim"].get<uint32_t>(),
                c["metric"].get<std::string>().c_str(), c["sparse"].get<bool>() ? ", sparse" : "",
                c["colbert"].get<bool>() ? ", colbert" : "");
    if (ix["kind"] == "ivfpq")
      std::printf("    index: IVF-PQ generation %llu, nlist %u, %zu bytes per vector (%llu bytes of codes)\n",
                  static_cast<unsigned long long>(ix["generation"].get<uint64_t>()), ix["nlist"].get<uint32_t>(),
                  ix["bytes_per_vector"].get<size_t>(), static_cast<unsigned long long>(ix["index_bytes"].get<uint64_t>()));
    else
      std::printf("    index: flat (exact), %zu bytes per vector\n", ix["bytes_per_vector"].get<size_t>());
    if (c.contains("build"))
      std::printf("    m3vdb build: phase %s, %llu lines of %s read, %llu skipped\n",
                  c["build"]["phase"].get<std::string>().c_str(),
                  static_cast<unsigned long long>(c["build"]["lines"].get<uint64_t>()),
                  c["build"]["input"].get<std::string>().c_str(),
                  static_cast<unsigned long long>(c["build"]["skipped"].get<uint64_t>()));
  }
  return 0;
}

}  // namespace

Runner AddInspectCommand(CLI::App& app) {
  auto* cmd = app.add_subcommand("inspect", "Show the collections, counts, index state and sizes of a database directory");
  auto f = std::make_shared<InspectFlags>();
  cmd->add_option("dir", f->dir, "database directory")->required()->check(CLI::ExistingDirectory);
  cmd->add_flag("--json", f->json, "print JSON");
  return [f] { return RunInspect(*f); };
}

}  // namespace m3vdb::tools
