// `m3vdb search DIR --collection NAME (--text "..." --model DIR | --dense-file F.npy|F.fvecs)`:
// answers one text query, or one query per row of the file, from a database directory, printed as a table or, with --json, as one JSON
// object per query: {"results":[{"id":...,"score":...}]}.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include <m3vdb/m3vdb.h>

#include "tools/commands.h"
#include "tools/vector_io.h"

namespace m3vdb::tools {
namespace {

struct SearchFlags {
  std::string dir, collection, text, dense_file, model;
  int top_k = 10, nprobe = 0;
  bool json = false, exact = false, metadata = false;
};

int Fail(const Status& s) {
  spdlog::error("{}", s.ToString());
  return 1;
}

int RunSearch(const SearchFlags& f) {
  if (!f.text.empty() && f.model.empty()) {
    spdlog::error("--text needs --model DIR (the BGE-M3 directory the collection was built with)");
    return 2;
  }
  Options options;
  options.create_if_missing = false;
  options.model_dir = f.model;
  auto db = Database::Open(options, f.dir);
  if (!db.ok()) return Fail(db.status());
  auto coll = (*db)->GetCollection(f.collection);
  if (!coll.ok()) return Fail(coll.status());
  std::vector<Query> qs;
  if (!f.text.empty()) {
    qs.resize(1);
    qs[0].text = f.text;  // the engine embeds it (dense, and sparse/ColBERT when stored)
  } else {
    auto queries = ReadVectors(f.dense_file);
    if (!queries.ok()) return Fail(queries.status());
    if (queries->cols != (*coll)->schema().dense_dim)
      return Fail(Status::InvalidArgument(f.dense_file + " has dimension " + std::to_string(queries->cols) +
                                          ", collection '" + f.collection + "' has " +
                                          std::to_string((*coll)->schema().dense_dim)));
    qs.resize(queries->rows);
    for (size_t i = 0; i < queries->rows; ++i) qs[i].dense.assign(queries->row(i), queries->row(i) + queries->cols);
  }
  SearchOptions so;
  so.top_k = f.top_k;
  so.nprobe = f.nprobe;
  so.exact = f.exact;
  so.include_metadata = f.metadata;
  auto hits = (*coll)->SearchBatch(qs, so);
  if (!hits.ok()) return Fail(hits.status());
  for (size_t i = 0; i < hits->size(); ++i) {
    if (f.json) {
      nlohmann::json results = nlohmann::json::array();
      for (const auto& h : (*hits)[i]) {
        nlohmann::json r = {{"id", h.id}, {"score", h.score}};
        if (f.metadata && !h.metadata_json.empty()) r["metadata"] = nlohmann::json::parse(h.metadata_json, nullptr, false);
        results.push_back(std::move(r));
      }
      std::printf("%s\n", nlohmann::json{{"results", results}}.dump().c_str());
    } else {
      std::printf("query %zu\n  %4s  %-24s  %12s\n", i, "rank", "id", "score");
      for (size_t r = 0; r < (*hits)[i].size(); ++r) {
        const auto& h = (*hits)[i][r];
        std::printf("  %4zu  %-24s  %12.6f%s%s\n", r + 1, h.id.c_str(), h.score, f.metadata ? "  " : "",
                    f.metadata ? h.metadata_json.c_str() : "");
      }
    }
  }
  return 0;
}

}  // namespace

Runner AddSearchCommand(CLI::App& app) {
  auto* cmd = app.add_subcommand("search", "Search a database directory (one query per row of a vector file)");
  auto f = std::make_shared<SearchFlags>();
  cmd->add_option("dir", f->dir, "database directory")->required()->check(CLI::ExistingDirectory);
  cmd->add_option("--collection", f->collection, "collection to search")->required();
  auto* text = cmd->add_option("--text", f->text, "query text (needs --model)");
  cmd->add_option("--model", f->model, "BGE-M3 release directory, for --text")->check(CLI::ExistingDirectory);
  auto* dense = cmd->add_option("--dense-file", f->dense_file, "query vectors, one per row (.npy or .fvecs, float32)")
                    ->check(CLI::ExistingFile);
  text->excludes(dense);
  cmd->add_option("--top-k", f->top_k, "results per query")->capture_default_str()->check(CLI::Range(1, 10000));
  cmd->add_option("--nprobe", f->nprobe, "IVF lists probed (0: the collection's default)")->capture_default_str();
  cmd->add_flag("--exact", f->exact, "exact dense search even when a learned index is trained");
  cmd->add_flag("--metadata", f->metadata, "print each hit's metadata");
  cmd->add_flag("--json", f->json, "one JSON object per query instead of a table");
  return [f, text, dense] {
    if (text->count() + dense->count() != 1) {
      spdlog::error("give exactly one of --text and --dense-file");
      return 2;
    }
    return RunSearch(*f);
  };
}

}  // namespace m3vdb::tools
