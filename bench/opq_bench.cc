// opq_bench: m3vdb's OPQ (quant/opq.h) against FAISS's OPQMatrix on Fashion-MNIST. For each
// rotation: its training time, and the PQ reconstruction error it allows (the objective both
// minimize), measured the same way for every rotation: 25 iterations of product k-means on the
// rotated vectors (quant/detail/product_kmeans.h), mean squared error per vector. FAISS's OPQ
// takes about 20 minutes here, so --faiss-cache can read a rotation that ivfpq_bench cached
// (--init-cache DIR: kmeans-...-opq-...bin, with its training time) instead of training it.
//
//   build/bench/opq_bench --m 28 --iterations 25,50 --kmeans-iterations 2,4
//       --faiss-cache DIR/kmeans-l2-n60000-m28-l256-opq-s1234.bin     (one command line)
#include <faiss/VectorTransform.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>

#include "quant/codebooks.h"
#include "quant/detail/product_kmeans.h"
#include "quant/opq.h"
#include "tools/fashion_mnist.h"

using namespace m3vdb;
using Clock = std::chrono::steady_clock;

namespace {

double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::vector<int> ParseInts(const std::string& list) {
  std::vector<int> out;
  std::stringstream in(list);
  for (std::string item; std::getline(in, item, ',');) out.push_back(std::stoi(item));
  return out;
}

// PQ error of m subspaces x 256 codewords after 25 k-means iterations on x rotated by r.
double PqError(const tools::Matrix& x, const std::vector<float>& r, size_t m) {
  quant::Codebooks rotate;
  rotate.params.dim = static_cast<uint32_t>(x.cols);
  rotate.rotation = r;
  std::vector<float> xr(x.data.size());
  rotate.Rotate(x.data.data(), x.rows, xr.data());
  const quant::detail::ProductLayout layout{x.cols, m, 256};
  std::vector<float> centroids(m * 256 * layout.dsub());
  return quant::detail::ProductKMeans(xr.data(), x.rows, layout, 25, true, 99, centroids.data());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"m3vdb's OPQ against FAISS's OPQMatrix on Fashion-MNIST: time and PQ error"};
  std::string data = tools::kFashionMnistDir, metric = "l2", iterations = "25", kmeans_iterations = "2", faiss_cache;
  size_t m = 28;
  int first = 20;
  size_t max_train = quant::OpqOptions{}.max_train_points;
  bool faiss_live = false;
  app.add_option("--data", data)->capture_default_str();
  app.add_option("--metric", metric, "l2 (raw vectors) or ip (L2-normalized)")->capture_default_str();
  app.add_option("--m", m, "PQ sub-quantizers")->capture_default_str();
  app.add_option("--iterations", iterations, "m3vdb OPQ rotation updates (comma list)")->capture_default_str();
  app.add_option("--kmeans-iterations", kmeans_iterations, "PQ k-means per update (comma list)")->capture_default_str();
  app.add_option("--first", first, "PQ k-means before the first update")->capture_default_str();
  app.add_option("--max-train", max_train, "m3vdb OPQ training sample")->capture_default_str();
  app.add_option("--faiss-cache", faiss_cache, "codebooks file with FAISS's OPQ rotation (ivfpq_bench --init-cache)");
  app.add_flag("--faiss", faiss_live, "train FAISS's OPQMatrix (defaults: 50 updates, 4 PQ k-means each; slow)");
  CLI11_PARSE(app, argc, argv);

  auto base = tools::ReadIdxImages(data + "/train-images-idx3-ubyte.gz");
  if (!base.ok()) return std::fprintf(stderr, "%s\n", base.status().ToString().c_str()), 2;
  if (metric == "ip") tools::NormalizeRows(&*base);
  const size_t d = base->cols;
  std::printf("| rotation | updates | PQ k-means per update | train s | PQ error |\n|---|---|---|---|---|\n");
  std::vector<float> identity(d * d, 0.0f);
  for (size_t i = 0; i < d; ++i) identity[i * d + i] = 1.0f;
  std::printf("| none | - | - | - | %.4f |\n", PqError(*base, identity, m));
  std::fflush(stdout);
  if (!faiss_cache.empty()) {
    std::ifstream in(faiss_cache, std::ios::binary), secs(faiss_cache + ".seconds");
    const std::string bytes((std::istreambuf_iterator<char>(in)), {});
    auto books = quant::Codebooks::Parse(bytes);
    double s = 0;
    secs >> s;
    if (!books.ok() || books->rotation.empty()) return std::fprintf(stderr, "no rotation in %s\n", faiss_cache.c_str()), 2;
    std::printf("| FAISS OPQMatrix (cached; time includes its IVF-PQ k-means) | 50 | 4 | %.1f | %.4f |\n", s,
                PqError(*base, books->rotation, m));
    std::fflush(stdout);
  }
  if (faiss_live) {
    auto t = Clock::now();
    faiss::OPQMatrix opq(static_cast<int>(d), static_cast<int>(m));
    opq.train(static_cast<faiss::Index::idx_t>(base->rows), base->data.data());
    const double s = Since(t);
    std::printf("| FAISS OPQMatrix | %d | %d | %.1f | %.4f |\n", opq.niter, opq.niter_pq, s, PqError(*base, opq.A, m));
    std::fflush(stdout);
  }
  for (int updates : ParseInts(iterations)) {
    for (int per : ParseInts(kmeans_iterations)) {
      quant::OpqOptions opt;
      opt.iterations = updates;
      opt.kmeans_iterations = per;
      opt.first_kmeans_iterations = first;
      opt.max_train_points = max_train;
      opt.on_iteration = [](int done, int, double error) { std::fprintf(stderr, "  update %d: PQ error %.4f\n", done, error); };
      auto t = Clock::now();
      auto r = quant::TrainOpqRotation(base->data.data(), base->rows, d, m, 256, opt);
      const double s = Since(t);
      if (!r.ok()) return std::fprintf(stderr, "%s\n", r.status().ToString().c_str()), 1;
      std::printf("| m3vdb OPQ | %d | %d | %.1f | %.4f |\n", updates, per, s, PqError(*base, *r, m));
      std::fflush(stdout);
    }
  }
  return 0;
}
