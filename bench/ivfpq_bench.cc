// Learned IVF-PQ on Fashion-MNIST: FAISS k-means IVFPQ, FAISS OPQ+IVFPQ and m3vdb's Distill-VQ
// codebooks at the same bytes per vector, all searched with FAISS's IVFPQ scan (so query speed
// compares like with like), in one run. Prints one row per (method, m, nlist, nprobe):
// recall@10 and recall@100 (true top-k found in the returned top-k), recall@10 after an exact
// rerank of the returned top-100, queries/s on one thread, PQ codes scanned per query (what
// the scan costs, independent of the machine's load), and training time (k-means, plus
// Distill-VQ for ours; a cached k-means initialisation counts with the time it took to train).
//
// Inner product (on L2-normalised vectors) has two FAISS baselines: `faiss-ivfpq`, FAISS's own
// IndexIVFPQ with METRIC_INNER_PRODUCT (k-means and list assignment by the largest <x, c>), and
// `faiss-ivfpq-l2`, FAISS's METRIC_L2 IndexIVFPQ on the same normalised vectors (same ranking as
// inner product, and the stronger of the two); OPQ likewise as `faiss-opq-ivfpq-l2`. m3vdb's codebooks for inner product start from L2
// k-means (quant/codebooks.h); `kmeans` is that initialisation searched as m3vdb searches it
// (inner product, L2 lists), before Distill-VQ.
//
// OPQ comes two ways: `opq` / `distill-opq` start from FAISS's OPQMatrix (the baseline), and
// `m3vdb-opq` / `distill-m3vdb-opq` from m3vdb's own OPQ (quant/opq.h), which is what a collection
// with `opq: true` and `m3vdb quantize --opq` train.
//
// Training never sees the test queries: Distill-VQ uses documents sampled from the base set as
// queries (quant/distill_trainer.h).
#include <faiss/IndexFlat.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexPreTransform.h>
#include <omp.h>
#include <cblas.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <map>
#include <cstdio>
#include <sstream>

#include "index/ivfpq_index.h"
#include "quant/opq.h"
#include "quant/distill_trainer.h"
#include "quant/faiss_bridge.h"
#include "tools/fashion_mnist.h"
#include "tools/ground_truth.h"

namespace {

using namespace m3vdb;
using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

template <class T>
std::vector<T> ParseList(const std::string& s) {
  std::vector<T> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(static_cast<T>(std::stod(item)));
  return out;
}

struct Row {
  double r10 = 0, r100 = 0, r10_rerank = 0, qps = 0;
  double codes = 0;  // PQ codes scanned per query: the load-independent part of the query cost
};

// Searches `index` with nprobe and measures recall against `truth` (k = 100 neighbours each).
Row Evaluate(faiss::Index* index, const tools::Matrix& base, const tools::Matrix& queries, Metric metric,
             const std::vector<std::vector<uint32_t>>& truth, size_t nprobe) {
  faiss::IndexIVF* ivf = dynamic_cast<faiss::IndexIVF*>(index);
  if (!ivf) ivf = dynamic_cast<faiss::IndexIVF*>(dynamic_cast<faiss::IndexPreTransform*>(index)->index);
  ivf->nprobe = nprobe;
  const size_t nq = queries.rows, k = 100;
  std::vector<float> dist(nq * k);
  std::vector<faiss::Index::idx_t> labels(nq * k);
  omp_set_num_threads(1);
  faiss::indexIVF_stats.reset();
  auto t = Clock::now();
  for (size_t i = 0; i < nq; ++i)  // one query at a time, one thread: the latency-bound case
    index->search(1, queries.row(i), k, dist.data() + i * k, labels.data() + i * k);
  Row row;
  row.qps = nq / Since(t);
  row.codes = static_cast<double>(faiss::indexIVF_stats.ndis) / nq;
  omp_set_num_threads(2);
  std::vector<std::vector<uint32_t>> found10(nq), found100(nq), reranked(nq);
  for (size_t i = 0; i < nq; ++i) {
    std::vector<std::pair<float, uint32_t>> exact;
    for (size_t j = 0; j < k; ++j) {
      const auto id = labels[i * k + j];
      if (id < 0) continue;
      found100[i].push_back(static_cast<uint32_t>(id));
      if (j < 10) found10[i].push_back(static_cast<uint32_t>(id));
      double s = 0;
      for (size_t c = 0; c < base.cols; ++c) {
        const double a = queries.row(i)[c], b = base.row(static_cast<size_t>(id))[c];
        s += metric == Metric::kL2 ? -(a - b) * (a - b) : a * b;
      }
      exact.push_back({static_cast<float>(s), static_cast<uint32_t>(id)});
    }
    std::sort(exact.begin(), exact.end(), [](auto& a, auto& b) { return a.first > b.first; });
    for (size_t j = 0; j < std::min<size_t>(10, exact.size()); ++j) reranked[i].push_back(exact[j].second);
  }
  row.r10 = tools::RecallAtK(found10, truth, 10);
  row.r100 = tools::RecallAtK(found100, truth, 100);
  row.r10_rerank = tools::RecallAtK(reranked, truth, 10);
  return row;
}

// The same codebooks in m3vdb's own IVF-PQ index (index::IvfPqIndex, what a collection
// searches), one query per call on one thread: recall@10 and queries/s of our scan.
Row EvaluateOurs(const quant::Codebooks& books, const tools::Matrix& base, const tools::Matrix& queries,
                 const std::vector<std::vector<uint32_t>>& truth, size_t nprobe) {
  index::IvfPqIndex ours(std::make_shared<const quant::Codebooks>(books));
  std::vector<uint32_t> lists(base.rows);
  std::vector<uint8_t> codes(base.rows * books.params.m);
  books.Encode(base.data.data(), base.rows, lists.data(), codes.data());
  for (size_t i = 0; i < base.rows; ++i) ours.Add(i, lists[i], codes.data() + i * books.params.m);
  const size_t nq = queries.rows, k = 100;
  std::vector<std::vector<uint32_t>> found10(nq), found100(nq);
  omp_set_num_threads(1);
  openblas_set_num_threads(1);
  auto t = Clock::now();
  for (size_t i = 0; i < nq; ++i) {
    auto hits = ours.Search({queries.row(i), queries.cols}, 1, k, nprobe);
    for (size_t j = 0; j < hits[0].size(); ++j) {
      (j < 10 ? found10[i] : found100[i]).push_back(static_cast<uint32_t>(hits[0][j].id));
    }
  }
  Row row;
  row.qps = nq / Since(t);
  omp_set_num_threads(2);
  openblas_set_num_threads(2);
  for (size_t i = 0; i < nq; ++i) found100[i].insert(found100[i].begin(), found10[i].begin(), found10[i].end());
  row.r10 = tools::RecallAtK(found10, truth, 10);
  row.r100 = tools::RecallAtK(found100, truth, 100);
  row.r10_rerank = -1;
  return row;
}

bool ReadFile(const std::string& path, std::string* bytes) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) bytes->append(buf, n);
  std::fclose(f);
  return true;
}

// A cached k-means initialisation and the seconds it took to train (kept beside it in
// PATH.seconds, so that the training time reported for a cached run is still the real one).
bool ReadCache(const std::string& path, quant::Codebooks* books, double* seconds) {
  std::string bytes, secs;
  if (!ReadFile(path, &bytes) || !ReadFile(path + ".seconds", &secs)) return false;
  auto parsed = quant::Codebooks::Parse(bytes);
  if (!parsed.ok()) return false;
  *books = std::move(*parsed);
  *seconds = std::stod(secs);
  return true;
}

void WriteFile(const std::string& path, const std::string& bytes) {
  if (FILE* f = std::fopen(path.c_str(), "wb")) {
    std::fwrite(bytes.data(), 1, bytes.size(), f);
    std::fclose(f);
  }
}

// FAISS's own IndexIVFPQ with METRIC_INNER_PRODUCT: IVF k-means with an IndexFlatIP quantizer
// and lists by the largest <x, c>; its codebooks as Codebooks (for the cache).
quant::Codebooks TrainFaissIp(const tools::Matrix& base, const quant::IvfPqParams& params) {
  faiss::IndexFlatIP quantizer(params.dim);
  faiss::IndexIVFPQ ivfpq(&quantizer, params.dim, params.nlist, params.m, params.nbits, faiss::METRIC_INNER_PRODUCT);
  ivfpq.cp.seed = static_cast<int>(params.seed);
  ivfpq.pq.cp.seed = static_cast<int>(params.seed + 1);
  ivfpq.train(static_cast<faiss::Index::idx_t>(base.rows), base.data.data());
  quant::Codebooks books;
  books.params = params;
  books.centroids.assign(quantizer.get_xb(), quantizer.get_xb() + size_t{params.nlist} * params.dim);
  books.pq = ivfpq.pq.centroids;
  return books;
}

// That index filled by FAISS's own add (its list assignment).
std::unique_ptr<faiss::Index> BuildFaissIp(const quant::Codebooks& books, const tools::Matrix& base) {
  const auto& p = books.params;
  auto* quantizer = new faiss::IndexFlatIP(p.dim);
  quantizer->add(p.nlist, books.centroids.data());
  auto index = std::make_unique<faiss::IndexIVFPQ>(quantizer, p.dim, p.nlist, p.m, p.nbits,
                                                   faiss::METRIC_INNER_PRODUCT);
  index->own_fields = true;
  index->pq.centroids = books.pq;
  index->is_trained = true;
  index->add(static_cast<faiss::Index::idx_t>(base.rows), base.data.data());
  return index;
}

// Where a method's codebooks start: plain k-means, FAISS's OPQ (the baseline) or m3vdb's own
// OPQ (quant/opq.h: what a collection with `opq: true` trains), each followed by IVF + PQ k-means.
enum class Start { kPlain, kFaissOpq, kOwnOpq };

Start StartOf(const std::string& method) {
  if (method == "opq" || method == "distill-opq") return Start::kFaissOpq;
  if (method == "m3vdb-opq" || method == "distill-m3vdb-opq") return Start::kOwnOpq;
  return Start::kPlain;
}

const char* CacheTag(Start start) { return start == Start::kFaissOpq ? "-opq" : start == Start::kOwnOpq ? "-m3opq" : ""; }

// Trains the start; with `rotation` (an OPQ rotation learned for another nlist) only the k-means.
Result<quant::Codebooks> TrainStart(const tools::Matrix& base, quant::IvfPqParams params, Start start,
                                    const std::vector<float>* rotation) {
  params.opq = start == Start::kFaissOpq && !rotation;  // TrainKMeans's OPQ is FAISS's OPQMatrix
  if (start == Start::kPlain || params.opq) return quant::TrainKMeans(base.data.data(), base.rows, params);
  std::vector<float> learned;
  if (!rotation) {  // m3vdb's OPQ (quant/opq.h)
    M3VDB_ASSIGN_OR_RETURN(learned, quant::TrainOpqRotation(base.data.data(), base.rows, params.dim, params.m,
                                                            params.ksub()));
    rotation = &learned;
  }
  quant::Codebooks rotate;
  rotate.params = params;
  rotate.rotation = *rotation;
  std::vector<float> rotated(base.data.size());
  rotate.Rotate(base.data.data(), base.rows, rotated.data());
  auto books = quant::TrainKMeans(rotated.data(), base.rows, params);
  if (books.ok()) {
    books->params.opq = true;
    books->rotation = *rotation;
  }
  return books;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Learned IVF-PQ (Distill-VQ) vs FAISS k-means IVFPQ and OPQ+IVFPQ on Fashion-MNIST"};
  std::string data = tools::kFashionMnistDir, metric_name = "l2", ms = "16,28,56", nlists = "256,1024",
              nprobes = "1,4,16,64", methods = "ivfpq,distill";
  size_t max_queries = 20000, num_queries = 10000, validation = 0, held_out = quant::DistillOptions{}.validation_queries;
  std::string init_cache, save_dir, device = "auto";
  float tau = 0, tau_code = -1, lr_pq = 0, lr_ivf = 0;
  int epochs = 4;
  bool scan_ours = false;
  uint64_t seed = 1234;
  app.add_option("--data", data)->capture_default_str();
  app.add_option("--metric", metric_name, "l2 (raw vectors) or ip (L2-normalized)")->capture_default_str();
  app.add_option("--m", ms, "PQ sub-quantizers = bytes per vector (comma list)")->capture_default_str();
  app.add_option("--nlist", nlists)->capture_default_str();
  app.add_option("--nprobe", nprobes)->capture_default_str();
  app.add_option("--methods", methods,
                 "ivfpq (FAISS k-means IVFPQ; for ip both FAISS baselines), opq (FAISS OPQ+IVFPQ; slow to train), "
                 "kmeans (ip: m3vdb's initialisation before Distill-VQ), distill, distill-opq (from FAISS's OPQ), "
                 "m3vdb-opq (k-means after m3vdb's OPQ, what `opq: true` trains), distill-m3vdb-opq")
      ->capture_default_str();
  app.add_option("--epochs", epochs)->capture_default_str();
  app.add_option("--held-out", held_out,
                 "training queries Distill-VQ holds out to keep its best epoch (0 = off: keep the last)")
      ->capture_default_str();
  app.add_option("--train-queries", max_queries, "documents sampled as training queries")->capture_default_str();
  app.add_option("--queries", num_queries, "test queries evaluated")->capture_default_str();
  app.add_option("--seed", seed)->capture_default_str();
  app.add_option("--validation", validation,
                 "hold out the last N base vectors as queries instead of the test set (for tuning)");
  app.add_option("--init-cache", init_cache, "directory caching k-means codebooks (and their training time) between runs");
  app.add_option("--save-dir", save_dir, "directory where every evaluated set of codebooks is written");
  app.add_option("--device", device, "Distill-VQ backend: auto (CUDA when a GPU exists), cpu or cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
  app.add_option("--tau", tau, "Distill-VQ score temperature (0 = auto)");
  app.add_option("--tau-code", tau_code, "Distill-VQ soft code assignment temperature (0 = auto, < 0 = auto for unit-length vectors, else 1)")->capture_default_str();
  app.add_option("--lr-pq", lr_pq, "Distill-VQ PQ learning rate (0 = auto)");
  app.add_option("--lr-ivf", lr_ivf, "Distill-VQ centroid learning rate (0 = auto)");
  app.add_flag("--m3vdb-scan", scan_ours,
               "also search each set of codebooks with m3vdb's own IVF-PQ index (one query per call, one thread)");
  CLI11_PARSE(app, argc, argv);

  auto metric = ParseMetric(metric_name);
  if (!metric.ok()) return std::fprintf(stderr, "%s\n", metric.status().ToString().c_str()), 2;
  auto base = tools::ReadIdxImages(data + "/train-images-idx3-ubyte.gz");
  auto queries = tools::ReadIdxImages(data + "/t10k-images-idx3-ubyte.gz");
  if (!base.ok() || !queries.ok()) return std::fprintf(stderr, "cannot read Fashion-MNIST from %s\n", data.c_str()), 2;
  if (validation > 0) {  // tuning: queries come from the training set, never the test set
    validation = std::min(validation, base->rows / 2);
    const size_t keep = base->rows - validation;
    queries->data.assign(base->data.begin() + static_cast<std::ptrdiff_t>(keep * base->cols), base->data.end());
    queries->rows = validation;
    base->data.resize(keep * base->cols);
    base->rows = keep;
  }
  queries->rows = std::min(queries->rows, num_queries);
  queries->data.resize(queries->rows * queries->cols);
  if (*metric == Metric::kInnerProduct) {
    tools::NormalizeRows(&*base);
    tools::NormalizeRows(&*queries);
  }
  auto truth = tools::ExactNeighbors(*base, *queries, 100, *metric);
  std::printf("| metric | method | bytes | nlist | nprobe | R@10 | R@100 | R@10 rerank100 | QPS (1 thread) | codes/query | train s |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (uint32_t m : ParseList<uint32_t>(ms)) {
    for (uint32_t nlist : ParseList<uint32_t>(nlists)) {
      quant::IvfPqParams params;
      params.dim = static_cast<uint32_t>(base->cols);
      params.metric = *metric;
      params.nlist = nlist;
      params.m = m;
      params.seed = seed;
      std::stringstream list(methods);
      std::string method;
      // The starting codebooks of each kind, trained (or read from the cache) once per (m, nlist).
      std::map<Start, std::pair<quant::Codebooks, double>> starts;
      while (std::getline(list, method, ',')) {
        const Start start = StartOf(method);
        const bool ip = *metric == Metric::kInnerProduct;
        if (!starts.count(start)) {
          const std::string cache = init_cache.empty() ? "" :
              init_cache + "/kmeans-" + (ip ? "ip-l2lists" : metric_name) + "-n" + std::to_string(base->rows) + "-m" + std::to_string(m) +
              "-l" + std::to_string(nlist) + CacheTag(start) + "-s" + std::to_string(seed) + ".bin";
          quant::Codebooks trained;
          double seconds = 0;
          auto t = Clock::now();
          if (cache.empty() || !ReadCache(cache, &trained, &seconds)) {
            // An OPQ rotation does not depend on nlist: one cached for another nlist is reused, and
            // the reported time is that whole training (rotation + its IVF-PQ) plus this IVF-PQ.
            quant::Codebooks other;
            double other_s = 0;
            std::string other_cache;
            const std::string tag = "-l" + std::to_string(nlist) + "-";
            for (uint32_t other_nlist : {256u, 1024u}) {
              if (start == Start::kPlain || cache.empty() || other_nlist == nlist || !other_cache.empty()) continue;
              std::string path = cache;
              path.replace(path.find(tag), tag.size(), "-l" + std::to_string(other_nlist) + "-");
              if (ReadCache(path, &other, &other_s)) other_cache = path;
            }
            if (!other_cache.empty()) std::fprintf(stderr, "OPQ rotation from %s (%.1fs)\n", other_cache.c_str(), other_s);
            auto books = TrainStart(*base, params, start, other_cache.empty() ? nullptr : &other.rotation);
            if (!books.ok()) return std::fprintf(stderr, "%s\n", books.status().ToString().c_str()), 1;
            trained = std::move(*books);
            seconds = Since(t) + other_s;
            if (!cache.empty()) {
              WriteFile(cache, trained.Serialize());
              WriteFile(cache + ".seconds", std::to_string(seconds));
            }
          }
          std::fprintf(stderr, "k-means m=%u nlist=%u%s: %.1fs%s\n", m, nlist, CacheTag(start), seconds,
                       Since(t) < seconds ? " (cached)" : "");
          starts[start] = {std::move(trained), seconds};
        }
        const quant::Codebooks& init = starts[start].first;
        const double init_s = starts[start].second;
        quant::Codebooks books = init;
        double train_s = init_s;
        if (method.rfind("distill", 0) == 0) {
          quant::DistillOptions opt;
          opt.epochs = epochs;
          opt.max_queries = max_queries;
          opt.validation_queries = held_out;
          opt.seed = seed;
          opt.tau = tau;
          opt.tau_code = tau_code;
          opt.lr_pq = lr_pq;
          opt.lr_ivf = lr_ivf;
          opt.device = device == "cpu" ? quant::DistillDevice::kCpu
                       : device == "cuda" ? quant::DistillDevice::kCuda : quant::DistillDevice::kAuto;
          auto t = Clock::now();
          auto rep = quant::DistillTrain(base->data.data(), base->rows, nullptr, 0, &books, opt);
          if (!rep.ok()) return std::fprintf(stderr, "%s\n", rep.status().ToString().c_str()), 1;
          train_s += Since(t);
          std::fprintf(stderr,
                       "distill m=%u nlist=%u (%s): %zu steps, PQ loss %.4f -> %.4f, IVF loss %.4f -> %.4f, tau %.4g, "
                       "tau_code %.4g, lr_pq %.4g, lr_ivf %.4g, %.1fs\n",
                       m, nlist, rep->backend, rep->steps, rep->first_loss_pq, rep->last_loss_pq, rep->first_loss_ivf,
                       rep->last_loss_ivf, rep->tau, rep->tau_code, rep->lr_pq, rep->lr_ivf, rep->seconds);
          if (rep->best_epoch >= 0) {
            std::fprintf(stderr, "  held-out recall@10 (%zu training queries held out), epoch 0 = start:",
                         rep->validation_queries);
            for (double r : rep->validation_recall) std::fprintf(stderr, " %.4f", r);
            std::fprintf(stderr, "; kept epoch %d\n", rep->best_epoch);
          }
        }
        if (!save_dir.empty())
          WriteFile(save_dir + "/" + method + "-" + metric_name + "-m" + std::to_string(m) + "-l" +
                        std::to_string(nlist) + "-s" + std::to_string(seed) + ".bin",
                    books.Serialize());
        // The rows of this method: (label, FAISS index searched, codebooks for m3vdb's scan).
        struct Variant {
          std::string label;
          std::unique_ptr<faiss::Index> index;
          quant::Codebooks books;
        };
        std::vector<Variant> variants;
        auto add_ours = [&](std::string label, const quant::Codebooks& b) -> bool {
          auto index = quant::BuildFaissIndex(b, base->data.data(), base->rows);
          if (!index.ok()) return std::fprintf(stderr, "%s\n", index.status().ToString().c_str()), false;
          variants.push_back({std::move(label), std::move(*index), b});
          return true;
        };
        if (method == "ivfpq" && ip) {
          const std::string cache = init_cache.empty() ? "" :
              init_cache + "/kmeans-ip-n" + std::to_string(base->rows) + "-m" + std::to_string(m) + "-l" +
              std::to_string(nlist) + "-s" + std::to_string(seed) + ".bin";
          quant::Codebooks native;
          double native_s = 0;
          auto t = Clock::now();
          if (cache.empty() || !ReadCache(cache, &native, &native_s)) {
            native = TrainFaissIp(*base, params);
            native_s = Since(t);
            if (!cache.empty()) {
              WriteFile(cache, native.Serialize());
              WriteFile(cache + ".seconds", std::to_string(native_s));
            }
          }
          train_s = native_s;
          variants.push_back({"faiss-ivfpq", BuildFaissIp(native, *base), native});
          quant::Codebooks as_l2 = init;  // L2 k-means on the normalised vectors, searched by L2
          as_l2.params.metric = Metric::kL2;
          if (!add_ours("faiss-ivfpq-l2", as_l2)) return 1;
        } else if (method == "opq" && ip) {  // FAISS OPQ + METRIC_L2 IVFPQ on the normalised vectors
          quant::Codebooks as_l2 = books;
          as_l2.params.metric = Metric::kL2;
          if (!add_ours("faiss-opq-ivfpq-l2", as_l2)) return 1;
        } else {
          const std::string label = method == "ivfpq" ? "faiss-ivfpq" : method == "opq" ? "faiss-opq-ivfpq" : method;  // m3vdb-opq: k-means after m3vdb's OPQ
          if (!add_ours(label, books)) return 1;
        }
        for (size_t nprobe : ParseList<size_t>(nprobes)) {
          for (Variant& v : variants) {
            const double row_train_s = v.label == "faiss-ivfpq-l2" ? starts[Start::kPlain].second : train_s;
            Row r = Evaluate(v.index.get(), *base, *queries, *metric, truth, nprobe);
            std::printf("| %s | %s | %u | %u | %zu | %.4f | %.4f | %.4f | %.0f | %.0f | %.1f |\n", metric_name.c_str(),
                        v.label.c_str(), m, nlist, nprobe, r.r10, r.r100, r.r10_rerank, r.qps, r.codes, row_train_s);
            std::fflush(stdout);
            if (scan_ours && !(ip && v.label == "faiss-ivfpq")) {  // FAISS's own IP lists are not ours
              Row o = EvaluateOurs(v.books, *base, *queries, truth, nprobe);
              std::printf("| %s | %s, m3vdb scan | %u | %u | %zu | %.4f | %.4f | - | %.0f | %.0f | %.1f |\n",
                          metric_name.c_str(), v.label.c_str(), m, nlist, nprobe, o.r10, o.r100, o.qps, r.codes,
                          row_train_s);
              std::fflush(stdout);
            }
          }
        }
      }
    }
  }
  return 0;
}
