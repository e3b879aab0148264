// `m3vdb quantize`: trains IVF-PQ codebooks on a vector file (k-means, then Distill-VQ unless
// --baseline) and writes a FAISS index file holding every base vector with ids 0..n-1.
#include <spdlog/spdlog.h>

#include <cstdio>

#include "quant/distill_trainer.h"
#include "quant/faiss_bridge.h"
#include "tools/commands.h"
#include "tools/progress.h"
#include "tools/vector_io.h"

namespace m3vdb::tools {
namespace {

struct QuantizeFlags {
  std::string base, queries, out, metric = "ip", device = "auto";
  uint32_t nlist = 256, m = 16, nbits = 8;
  bool opq = false, baseline = false;
  uint64_t seed = 1234;
  int epochs = 4;
};

int Fail(const Status& s) {
  spdlog::error("{}", s.ToString());
  return 1;
}

int RunQuantize(const QuantizeFlags& f) {
  auto metric = ParseMetric(f.metric);
  if (!metric.ok()) return Fail(metric.status());
  auto base = ReadVectors(f.base);
  if (!base.ok()) return Fail(base.status());
  Matrix queries;
  if (!f.queries.empty()) {
    auto q = ReadVectors(f.queries);
    if (!q.ok()) return Fail(q.status());
    if (q->cols != base->cols)
      return Fail(Status::InvalidArgument(f.queries + " has dimension " + std::to_string(q->cols) + ", " + f.base +
                                          " has " + std::to_string(base->cols)));
    queries = std::move(*q);
  }
  quant::IvfPqParams params;
  params.dim = static_cast<uint32_t>(base->cols);
  params.metric = *metric;
  params.nlist = f.nlist;
  params.m = f.m;
  params.nbits = f.nbits;
  params.opq = f.opq;
  params.seed = f.seed;
  if (Status s = params.Validate(); !s.ok()) return Fail(s);
  spdlog::info("training {} codebooks on {} vectors of dimension {} (nlist {}, m {}, metric {}{})",
               f.baseline ? "k-means" : "Distill-VQ", base->rows, base->cols, f.nlist, f.m, f.metric,
               f.opq ? ", OPQ" : "");
  Progress kmeans("kmeans", 1, "runs");
  auto books = quant::TrainKMeans(base->data.data(), base->rows, params);
  if (!books.ok()) return Fail(books.status());
  kmeans.Advance(1);
  kmeans.Finish();
  if (!f.baseline) {
    quant::DistillOptions opt;
    opt.epochs = f.epochs;
    opt.seed = f.seed;
    opt.device = f.device == "cpu" ? quant::DistillDevice::kCpu
                 : f.device == "cuda" ? quant::DistillDevice::kCuda : quant::DistillDevice::kAuto;
    std::unique_ptr<Progress> progress;
    opt.on_step = [&](size_t step, size_t total, double loss_pq, double loss_ivf) {
      if (!progress) progress = std::make_unique<Progress>("distill", total, "steps");
      char note[64];
      std::snprintf(note, sizeof note, "PQ loss %.4f IVF loss %.4f", loss_pq, loss_ivf);
      progress->SetNote(note);
      progress->Advance(1);
    };
    auto report = quant::DistillTrain(base->data.data(), base->rows, queries.rows ? queries.data.data() : nullptr,
                                      queries.rows, &*books, opt);
    if (!report.ok()) return Fail(report.status());
    if (progress) progress->Finish();
    spdlog::info("Distill-VQ ({}): {} steps, PQ loss {:.4f} -> {:.4f}, training queries: {}", report->backend,
                 report->steps, report->first_loss_pq, report->last_loss_pq,
                 queries.rows ? f.queries : std::string("documents sampled from the base set"));
    if (report->best_epoch >= 0) {
      std::string recalls;
      for (double r : report->validation_recall) recalls += (recalls.empty() ? "" : " ") + std::to_string(r);
      spdlog::info("held-out recall@10 by epoch (0 = k-means): {}; kept epoch {}", recalls, report->best_epoch);
    }
  }
  if (Status s = quant::ExportFaissIndex(*books, base->data.data(), base->rows, f.out); !s.ok()) return Fail(s);
  std::printf("wrote %s: %zu vectors, %u bytes per vector (IVF%u,PQ%ux%u%s)\n", f.out.c_str(), base->rows,
              params.code_size(), f.nlist, f.m, f.nbits, f.opq ? " with OPQ" : "");
  return 0;
}

}  // namespace

Runner AddQuantizeCommand(CLI::App& app) {
  auto* cmd = app.add_subcommand("quantize", "Train IVF-PQ codebooks (Distill-VQ) on a vector file and write a FAISS index");
  auto flags = std::make_shared<QuantizeFlags>();
  cmd->add_option("--base", flags->base, "base vectors (.fvecs or .npy, float32)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--metric", flags->metric, "ip or l2")->capture_default_str();
  cmd->add_option("--nlist", flags->nlist, "IVF lists")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--m", flags->m, "PQ sub-quantizers (bytes per vector); must divide the dimension")
      ->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--nbits", flags->nbits, "bits per sub-code (8)")->capture_default_str();
  cmd->add_flag("--opq", flags->opq, "learn an OPQ rotation at initialisation (kept fixed)");
  cmd->add_option("--queries", flags->queries, "training queries (.fvecs/.npy); default: sampled base vectors")
      ->check(CLI::ExistingFile);
  cmd->add_option("--seed", flags->seed, "random seed (training is deterministic for a seed)")->capture_default_str();
  cmd->add_option("--epochs", flags->epochs, "Distill-VQ epochs")->capture_default_str();
  cmd->add_option("--device", flags->device, "Distill-VQ on: auto (CUDA when a GPU is found), cpu or cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
  cmd->add_flag("--baseline", flags->baseline, "write the plain k-means index with the same parameters");
  cmd->add_option("--out", flags->out, "output FAISS index file")->required();
  return [flags] { return RunQuantize(*flags); };
}

}  // namespace m3vdb::tools
