// `m3vdb build`: turns a corpus (JSONL with precomputed vectors, or a .npy/.fvecs matrix) into a
// ready database directory that `m3vdb serve` and the embedded library open as is.
//
// Phases: read (parse + validate each line; bad lines are reported with their number and
// skipped, or stop the build with --strict), write (batches of --batch input lines, each one
// Collection::Upsert carrying the progress marker, so documents and position commit together),
// train (the learned IVF-PQ index: k-means + Distill-VQ), index (every document encoded with
// the new codebooks) and a recall check on a held-out sample. kill -9 at any moment and
// `--resume` continues after the last committed batch; ids are de-duplicated (last wins).
// Training is checkpointed by Collection::Train itself (after k-means and every Distill-VQ
// epoch), so a resumed build skips k-means and continues Distill-VQ after its last epoch.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <unordered_map>

#include "engine/detail/text_modes.h"
#include "tools/build_marker.h"
#include "tools/commands.h"
#include "tools/config.h"
#include "tools/corpus_source.h"
#include "tools/progress.h"

namespace m3vdb::tools {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct BuildFlags {
  std::string config_path, input, collection, out, model;
  bool resume = false, strict = false, sync = false;
  size_t batch = 1000;
  // Collection settings (used when the collection is created).
  uint32_t dense_dim = 0;
  std::string metric = "ip";
  bool sparse = false, colbert = false;
  IndexSettings index;
  bool no_distill = false, no_train = false;
  uint64_t seed = 1234;
  size_t eval_queries = 500;
  size_t max_errors_shown = 20;
};

double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

int Fail(const Status& s) {
  spdlog::error("{}", s.ToString());
  return 1;
}

// The schema for a new collection: flags, completed by the first good record of a JSONL input
// (dense dimension when not given; sparse / ColBERT when it carries them).
Result<CollectionSchema> ChooseSchema(const BuildFlags& f, CorpusSource& source) {
  CollectionSchema schema;
  M3VDB_ASSIGN_OR_RETURN(schema.metric, ParseMetric(f.metric));
  schema.dense_dim = f.dense_dim;
  schema.sparse = f.sparse;
  schema.colbert = f.colbert;
  schema.index = f.index;
  schema.index.distill = !f.no_distill;
  if (!f.model.empty()) {
    // Text collection: widths come from the model (0 = the model's), sparse is always worth
    // keeping (BGE-M3 computes it in the same pass); ColBERT only when asked (it is large).
    schema.model = true;
    schema.sparse = true;
    return schema;
  }
  if (source.dense_dim() != 0) {
    if (f.dense_dim != 0 && f.dense_dim != source.dense_dim())
      return Status::InvalidArgument("--dense-dim " + std::to_string(f.dense_dim) + " but " + f.input + " has dimension " +
                                     std::to_string(source.dense_dim()));
    schema.dense_dim = source.dense_dim();
    return schema;
  }
  RecordRules peek{.dense_dim = 0, .dense_required = false, .sparse = true, .colbert = true};
  Document doc;
  Status problem;
  for (;;) {
    M3VDB_ASSIGN_OR_RETURN(bool more, source.Next(peek, &doc, &problem));
    if (!more) break;
    if (!problem.ok()) continue;
    if (schema.dense_dim == 0) schema.dense_dim = static_cast<uint32_t>(doc.dense.size());
    if (!doc.sparse.empty()) schema.sparse = true;
    if (!doc.colbert.empty()) {
      schema.colbert = true;
      if (schema.colbert_dim == 0) schema.colbert_dim = static_cast<uint32_t>(doc.colbert.data.size() / doc.colbert.rows);
    }
    break;
  }
  M3VDB_RETURN_IF_ERROR(source.Seek(0, 0));
  if (schema.dense_dim == 0)
    return Status::InvalidArgument(f.input + ": no record with a \"dense\" vector to take the dimension from; give --dense-dim");
  if (schema.colbert && schema.colbert_dim == schema.dense_dim) schema.colbert_dim = 0;
  return schema;
}

// Keeps the last record of each id in `docs` (in the order of those last records); returns
// how many were dropped.
size_t CollapseDuplicates(std::vector<Document>* docs) {
  std::unordered_map<std::string, size_t> last;
  for (size_t i = 0; i < docs->size(); ++i) last[(*docs)[i].id] = i;
  if (last.size() == docs->size()) return 0;
  std::vector<Document> kept;
  kept.reserve(last.size());
  for (size_t i = 0; i < docs->size(); ++i)
    if (last[(*docs)[i].id] == i) kept.push_back(std::move((*docs)[i]));
  const size_t dropped = docs->size() - kept.size();
  *docs = std::move(kept);
  return dropped;
}

Status WriteMarker(Collection& coll, const BuildMarker& marker) {
  UpsertOptions options;
  options.progress_marker = marker.Serialize();
  return coll.Upsert(std::span<const Document>(), options);
}

// Embed phase of one batch (text collections): the texts of documents that lack a mode the
// collection stores are encoded in one call, their missing parts filled (parts the input gave
// are kept). Done here rather than inside Upsert so that tokens and time are counted per batch
// and committed with the batch's marker.
Status EmbedBatch(const Database& db, const CollectionSchema& schema, std::vector<Document>* docs,
                  BuildMarker* marker) {
  if (!schema.model) return Status::OK();
  std::vector<size_t> pending;
  std::vector<std::string> texts;
  for (size_t i = 0; i < docs->size(); ++i) {
    if (!engine::LacksModes(schema, (*docs)[i])) continue;
    pending.push_back(i);
    texts.push_back((*docs)[i].text);
  }
  if (pending.empty()) return Status::OK();
  const auto t = Clock::now();
  M3VDB_ASSIGN_OR_RETURN(std::vector<TextEmbedding> encoded, db.Embed(texts));
  for (size_t k = 0; k < pending.size(); ++k) {
    marker->tokens += encoded[k].tokens.size();
    engine::FillMissingModes(schema, std::move(encoded[k]), &(*docs)[pending[k]]);
  }
  marker->seconds["embed"] += Since(t);
  return Status::OK();
}

// Read + write phases: streams the input from the marker's position to the end.
Status Ingest(const BuildFlags& f, const Database& db, CorpusSource& source, Collection& coll, BuildMarker* marker) {
  const CollectionSchema& schema = coll.schema();
  RecordRules rules{.dense_dim = schema.dense_dim, .dense_required = !schema.model, .sparse = schema.sparse,
                    .colbert = schema.colbert};
  M3VDB_RETURN_IF_ERROR(source.Seek(marker->offset, marker->line));
  RecallSample sample(f.eval_queries);
  sample.Load(marker->sample);
  Progress progress("write", 0, "lines");
  progress.Resume(marker->line);
  std::vector<Document> docs;
  double read_secs = 0, write_secs = 0;
  size_t shown = 0;
  bool more = true;
  while (more) {
    docs.clear();
    auto t = Clock::now();
    uint64_t lines = 0;
    while (lines < f.batch) {
      Document doc;
      Status problem;
      M3VDB_ASSIGN_OR_RETURN(more, source.Next(rules, &doc, &problem));
      if (!more) break;
      ++lines;
      if (problem.ok()) problem = coll.Validate(std::span<const Document>(&doc, 1));
      if (!problem.ok()) {
        const std::string where = f.input + ":" + std::to_string(source.line());
        if (f.strict)
          return Status::InvalidArgument(where + ": " + problem.message() +
                                         " (--strict: stopping; the batches before this line are committed, this "
                                         "batch is not)");
        ++marker->skipped;
        if (shown++ < f.max_errors_shown) spdlog::warn("{}: skipped: {}", where, problem.message());
        if (shown == f.max_errors_shown + 1) spdlog::warn("more bad lines are not shown; the summary counts them");
        continue;
      }
      ++marker->accepted;
      sample.Add(doc.id);
      docs.push_back(std::move(doc));
    }
    if (lines == 0) break;
    marker->batch_duplicates += CollapseDuplicates(&docs);
    read_secs += Since(t);
    marker->offset = source.offset();
    marker->line = source.line();
    marker->sample = sample.Ids();
    marker->seconds["read"] += Since(t);
    M3VDB_RETURN_IF_ERROR(EmbedBatch(db, schema, &docs, marker)
                              .WithContext("embedding the batch ending at line " + std::to_string(marker->line)));
    t = Clock::now();
    UpsertOptions options;
    options.progress_marker = marker->Serialize();  // seconds["write"] lags one batch: harmless
    M3VDB_RETURN_IF_ERROR(coll.Upsert(docs, options).WithContext("writing the batch ending at line " +
                                                                   std::to_string(marker->line)));
    marker->seconds["write"] += Since(t);
    write_secs += Since(t);
    const double frac = source.fraction();
    if (frac > 0) progress.SetTotal(static_cast<uint64_t>(marker->line / frac));
    progress.Advance(lines);
  }
  progress.SetTotal(marker->line);
  progress.Finish();
  spdlog::info("read {:.1f} s, write {:.1f} s in this run", read_secs, write_secs);
  marker->phase = "train";
  return WriteMarker(coll, *marker);
}

// What this run's training took from the training checkpoint of an interrupted one (empty: none).
std::string ResumedTraining(const TrainReport& r, int epochs) {
  if (!r.resumed_kmeans) return {};
  std::string s = "k-means codebooks from the checkpoint";
  if (r.resumed_epochs > 0)
    s += ", Distill-VQ resumed at epoch " + std::to_string(r.resumed_epochs + 1) + " of " + std::to_string(epochs);
  return s;
}

// Train + index phases. `*resumed` says what training resumed from a checkpoint (empty: none).
Status TrainIndex(const BuildFlags& f, Collection& coll, BuildMarker* marker, std::string* resumed) {
  const IndexInfo info = coll.GetIndexInfo();
  if (info.kind == "ivfpq") {
    spdlog::info("the learned index was trained before the interruption (generation {})", info.generation);
  } else if (f.no_train) {
    spdlog::info("--no-train: the collection keeps exact (flat) search");
  } else {
    std::unique_ptr<Progress> train, encode;
    uint64_t done = 0;  // permille of training shown
    TrainOptions options;
    options.seed = f.seed;
    options.progress = [&](std::string_view phase, double fraction, double loss) {
      if (phase == "encode") {
        if (train) train->Finish(), train.reset();
        if (!encode) encode = std::make_unique<Progress>("index", coll.Count(), "docs");
        if (fraction >= 1.0) encode->Advance(coll.Count()), encode->Finish();
        return;
      }
      if (!train) train = std::make_unique<Progress>("train", 1000, "permille");
      char note[64];
      if (phase == "kmeans") {
        std::snprintf(note, sizeof note, "k-means");
      } else {
        std::snprintf(note, sizeof note, "%s loss %.4f", std::string(phase).c_str(), loss);
      }
      train->SetNote(note);
      // k-means is the first tenth of training when Distill-VQ follows, all of it otherwise.
      const double kmeans_share = coll.schema().index.distill && coll.schema().index.epochs > 0 ? 0.1 : 1.0;
      const double overall = phase == "kmeans" ? kmeans_share * fraction : kmeans_share + (1 - kmeans_share) * fraction;
      const uint64_t target = static_cast<uint64_t>(1000 * overall);
      if (target > done) train->Advance(target - done), done = target;
    };
    const IndexSettings& ix = coll.schema().index;
    spdlog::info("training the learned index on {} documents: k-means (nlist {}, {} PQ bytes per vector{}){}; "
                 "k-means reports no progress of its own",
                 coll.Count(), ix.nlist, ix.m == 0 ? std::string("auto") : std::to_string(ix.m), ix.opq ? ", OPQ" : "",
                 ix.distill ? ", then Distill-VQ for " + std::to_string(ix.epochs) + " epochs" : std::string());
    auto report = coll.Train(options);
    if (!report.ok()) {
      if (report.status().code() == StatusCode::kFailedPrecondition) {
        spdlog::warn("not training the learned index: {}", report.status().message());
      } else {
        return report.status();
      }
    } else {
      *resumed = ResumedTraining(*report, coll.schema().index.epochs);
      if (!resumed->empty()) spdlog::info("training resumed where the interrupted build left it: {}", *resumed);
      marker->seconds["train"] += report->kmeans_seconds + report->distill_seconds;
      marker->seconds["index"] += report->total_seconds - report->kmeans_seconds - report->distill_seconds;
    }
  }
  marker->phase = "done";
  return WriteMarker(coll, *marker);
}

struct Recall {
  size_t queries = 0;
  double quantized = 0, default_search = 0;
};

// Recall@10 of the learned index against exact search, with the sample's stored vectors as
// queries: `quantized` ranks by the IVF-PQ codes alone (candidates = top 10), `default_search`
// is what a search with default options returns (top 100 candidates reranked exactly).
Result<Recall> MeasureRecall(Collection& coll, const std::vector<std::string>& ids) {
  Recall r;
  std::vector<Query> queries;
  for (const auto& id : ids) {
    auto doc = coll.Get(id);
    if (!doc.ok()) continue;  // replaced or never stored (a skipped duplicate is fine)
    Query q;
    q.dense = std::move(doc->dense);
    queries.push_back(std::move(q));
  }
  r.queries = queries.size();
  if (queries.empty()) return r;
  SearchOptions exact;
  exact.top_k = 10;
  exact.rerank_k = 10;
  exact.include_metadata = false;
  exact.exact = true;
  M3VDB_ASSIGN_OR_RETURN(auto truth, coll.SearchBatch(queries, exact));
  SearchOptions quantized = exact;
  quantized.exact = false;
  M3VDB_ASSIGN_OR_RETURN(auto approx, coll.SearchBatch(queries, quantized));
  SearchOptions defaults;
  defaults.top_k = 10;
  defaults.include_metadata = false;
  M3VDB_ASSIGN_OR_RETURN(auto reranked, coll.SearchBatch(queries, defaults));
  auto overlap = [&](const std::vector<std::vector<SearchHit>>& found) {
    double sum = 0;
    for (size_t i = 0; i < queries.size(); ++i) {
      size_t hit = 0;
      for (const auto& h : found[i])
        for (const auto& t : truth[i]) hit += h.id == t.id;
      sum += truth[i].empty() ? 1.0 : static_cast<double>(hit) / truth[i].size();
    }
    return sum / queries.size();
  };
  r.quantized = overlap(approx);
  r.default_search = overlap(reranked);
  return r;
}

void PrintSummary(const BuildFlags& f, Collection& coll, const BuildMarker& m, const Recall& recall,
                  const std::string& resumed_training) {
  const IndexInfo info = coll.GetIndexInfo();
  const uint64_t count = coll.Count();
  std::printf("\n== m3vdb build: collection '%s' in %s ==\n", coll.name().c_str(), f.out.c_str());
  std::printf("documents            %llu (dimension %u)\n", static_cast<unsigned long long>(count), coll.schema().dense_dim);
  std::printf("input lines          %llu (%llu accepted, %llu skipped)\n", static_cast<unsigned long long>(m.line),
              static_cast<unsigned long long>(m.accepted), static_cast<unsigned long long>(m.skipped));
  std::printf("duplicate ids        %llu (last one wins)\n", static_cast<unsigned long long>(m.accepted - count));
  if (m.tokens) std::printf("tokens embedded      %llu\n", static_cast<unsigned long long>(m.tokens));
  for (const char* phase : {"read", "embed", "write", "train", "index"}) {
    auto it = m.seconds.find(phase);
    if (it == m.seconds.end()) continue;
    const double items = std::string(phase) == "train" || std::string(phase) == "index" ? count : m.line;
    std::printf("%-20s %.2f s  (%.0f docs/s)\n", (std::string("time ") + phase).c_str(), it->second,
                it->second > 0 ? items / it->second : 0.0);
  }
  if (!resumed_training.empty()) std::printf("training resumed     %s\n", resumed_training.c_str());
  if (info.kind == "ivfpq") {
    std::printf("index                IVF-PQ generation %llu, nlist %u, %zu code bytes per vector (exact vectors: %u)\n",
                static_cast<unsigned long long>(info.generation), info.nlist, info.bytes_per_vector,
                4 * coll.schema().dense_dim);
    std::printf("recall@10 quantized  %.4f  (IVF-PQ codes alone, %zu held-out stored vectors as queries, exact ground truth)\n",
                recall.quantized, recall.queries);
    std::printf("recall@10 search     %.4f  (default search: top-100 candidates reranked exactly)\n", recall.default_search);
  } else {
    std::printf("index                flat (exact search), %zu bytes per vector\n", info.bytes_per_vector);
  }
}

bool DirectoryHasEntries(const std::string& dir) {
  std::error_code ec;
  return fs::exists(dir, ec) && (!fs::is_directory(dir, ec) || fs::directory_iterator(dir, ec) != fs::directory_iterator());
}

int RunBuild(BuildFlags f) {
  Config config;
  if (!f.config_path.empty()) {
    if (Status s = ApplyConfigFile(f.config_path, &config); !s.ok()) {
      spdlog::error("{}", s.message());
      return 2;
    }
    if (f.out.empty()) f.out = config.data_dir;
    if (f.model.empty()) f.model = config.engine.model_dir;
  }
  if (f.out.empty()) {
    spdlog::error("--out: required: the database directory to build (or data_dir in --config)");
    return 2;
  }
  Options options = config.engine;
  options.model_dir = f.model;
  options.sync = f.sync;
  if (DirectoryHasEntries(f.out) && !f.resume) {
    spdlog::error("--out {} is not empty: pass --resume to continue an interrupted build there, or choose a new "
                  "directory",
                  f.out);
    return 2;
  }
  auto source = CorpusSource::Open(f.input);
  if (!source.ok()) return Fail(source.status());
  std::error_code ec;
  const uint64_t input_bytes = fs::file_size(f.input, ec);

  auto db = Database::Open(options, f.out);
  if (!db.ok()) return Fail(db.status());
  std::shared_ptr<Collection> coll;
  BuildMarker marker;
  if (auto existing = (*db)->GetCollection(f.collection); existing.ok()) {
    coll = *existing;
    auto bytes = coll->GetProgressMarker();
    if (!bytes.ok()) return Fail(bytes.status());
    if (bytes->has_value()) {
      auto parsed = BuildMarker::Parse(**bytes);
      if (!parsed.ok()) return Fail(parsed.status());
      marker = std::move(*parsed);
      if (marker.input != f.input || marker.input_bytes != input_bytes || marker.batch != f.batch) {
        spdlog::error("--resume: {} was built from {} ({} bytes, batches of {}); this run reads {} ({} bytes, batches "
                      "of {}). Resume with the same input and --batch, or build into a new directory",
                      f.out, marker.input, marker.input_bytes, marker.batch, f.input, input_bytes, f.batch);
        return 2;
      }
      spdlog::info("resuming: phase {}, {} input lines committed", marker.phase, marker.line);
    } else if (coll->Count() != 0) {
      spdlog::error("collection '{}' in {} holds documents that m3vdb build did not write; build into a new directory",
                    f.collection, f.out);
      return 2;
    }
  } else {
    auto schema = ChooseSchema(f, **source);
    if (!schema.ok()) return Fail(schema.status());
    auto created = (*db)->CreateCollection(f.collection, *schema);
    if (!created.ok()) return Fail(created.status());
    coll = *created;
    spdlog::info("created collection '{}': dense {} ({}){}{}", f.collection, schema->dense_dim, f.metric,
                 schema->sparse ? ", sparse" : "", schema->colbert ? ", colbert" : "");
  }
  if (marker.input.empty()) {
    marker.input = f.input;
    marker.input_bytes = input_bytes;
    marker.batch = f.batch;
  }

  if (marker.phase == "write") {
    if (Status s = Ingest(f, **db, **source, *coll, &marker); !s.ok()) {
      spdlog::error("{}", s.ToString());
      return 1;
    }
  }
  std::string resumed_training;
  if (marker.phase == "train") {
    if (Status s = TrainIndex(f, *coll, &marker, &resumed_training); !s.ok()) return Fail(s);
  }
  Recall recall;
  if (coll->GetIndexInfo().kind == "ivfpq") {
    auto r = MeasureRecall(*coll, marker.sample);
    if (!r.ok()) return Fail(r.status());
    recall = *r;
  }
  PrintSummary(f, *coll, marker, recall, resumed_training);
  return 0;
}

}  // namespace

Runner AddBuildCommand(CLI::App& app) {
  auto* cmd = app.add_subcommand("build", "Build a database directory from a corpus (JSONL or .npy/.fvecs), resumable");
  auto f = std::make_shared<BuildFlags>();
  cmd->add_option("--config", f->config_path, "YAML configuration (engine.* keys, data_dir, model; see docs/configuration.md)");
  cmd->add_option("--input", f->input, "corpus: JSONL (.jsonl or .jsonl.gz) or a dense matrix (.npy, .fvecs)")
      ->required()->check(CLI::ExistingFile);
  cmd->add_option("--collection", f->collection, "collection to build")->required();
  cmd->add_option("--out", f->out, "database directory (must be empty or absent, unless --resume)");
  cmd->add_option("--model", f->model, "BGE-M3 checkpoint directory to embed \"text\"");
  cmd->add_flag("--resume", f->resume, "continue an interrupted build in --out");
  cmd->add_flag("--strict", f->strict, "stop at the first bad line (exit 1) instead of skipping it");
  cmd->add_option("--batch", f->batch, "input lines per committed batch")->capture_default_str()->check(CLI::Range(1, 100000));
  cmd->add_flag("--sync", f->sync, "fsync every batch (slower; a resumed build needs no fsync: a lost batch is re-read)");
  cmd->add_option("--dense-dim", f->dense_dim, "dense dimension (default: from the input)");
  cmd->add_option("--metric", f->metric, "ip or l2")->capture_default_str();
  cmd->add_flag("--sparse", f->sparse, "store sparse lexical weights (also when the first record carries them)");
  cmd->add_flag("--colbert", f->colbert, "store ColBERT vectors (also when the first record carries them)");
  cmd->add_option("--nlist", f->index.nlist, "IVF lists of the learned index")->capture_default_str();
  cmd->add_option("--pq-m", f->index.m, "PQ bytes per vector; 0: largest divisor of the dimension <= dim/16")
      ->capture_default_str();
  cmd->add_flag("--opq", f->index.opq, "learn an OPQ rotation");
  cmd->add_flag("--no-distill", f->no_distill, "plain k-means codebooks (no Distill-VQ)");
  cmd->add_option("--epochs", f->index.epochs, "Distill-VQ epochs")->capture_default_str();
  cmd->add_option("--nprobe", f->index.nprobe, "IVF lists probed by default at search time")->capture_default_str();
  cmd->add_flag("--no-train", f->no_train, "do not train the learned index (exact search)");
  cmd->add_option("--seed", f->seed, "training seed")->capture_default_str();
  cmd->add_option("--eval-queries", f->eval_queries, "held-out stored vectors used to measure recall@10")
      ->capture_default_str();
  return [f] { return RunBuild(*f); };
}

}  // namespace m3vdb::tools
