// Encoder throughput, m3vdb (embedder/, OpenBLAS) against PyTorch (Debian's python3-torch,
// CPU, eager XLM-R reference from scripts/make_fixture_model.py) on the same BGE-M3-shaped
// checkpoint, at several sequence lengths and thread counts; plus the peak resident memory of
// one process encoding a single input of the longest length. A harness, not a Google
// Benchmark: every point is a whole forward pass of seconds, so it runs both engines in one
// run and prints a markdown table of tokens/s and ratios.
//
//   scripts/make_fixture_model.py bench --out /tmp/bgem3-bench
//   build/bench/encoder_bench --model /tmp/bgem3-bench [--lengths 128,512,8192] [--threads 1,2]
//
// Inputs are random token ids (the same for both engines in shape, not in value: the ids do
// not change the cost). Batches: 16 x 128, 4 x 512, 1 x 8192 tokens.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "embedder/embedder.h"

namespace {

using m3vdb::embedder::Embedder;

size_t BatchFor(size_t length) { return std::max<size_t>(1, 2048 / length); }

std::vector<std::vector<int32_t>> RandomInputs(size_t batch, size_t length, int vocab) {
  std::mt19937 rng(42);
  std::uniform_int_distribution<int32_t> id(4, vocab - 2);
  std::vector<std::vector<int32_t>> out(batch, std::vector<int32_t>(length));
  for (auto& seq : out) {
    for (auto& t : seq) t = id(rng);
    seq.front() = 0;
    seq.back() = 2;
  }
  return out;
}

// Best wall time of `reps` encodes after `warmup` untimed ones.
double TimeM3vdb(const Embedder& e, const std::vector<std::vector<int32_t>>& inputs, int warmup, int reps) {
  double best = 1e300;
  for (int i = 0; i < warmup + reps; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    auto r = e.EncodeTokens(inputs);
    double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!r.ok()) {
      std::fprintf(stderr, "encode failed: %s\n", r.status().ToString().c_str());
      std::exit(1);
    }
    if (i >= warmup) best = std::min(best, dt);
  }
  return best;
}

nlohmann::json RunTorch(const std::string& python, const std::string& script, const std::string& model, size_t length, size_t batch,
                        int threads, int warmup, int reps) {
  std::string cmd = python + " " + script + " --model " + model + " --length " + std::to_string(length) +
                    " --batch " + std::to_string(batch) + " --threads " + std::to_string(threads) +
                    " --warmup " + std::to_string(warmup) + " --reps " + std::to_string(reps);
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  while (p && fgets(buf, sizeof buf, p)) out += buf;
  if (p == nullptr || pclose(p) != 0) {
    std::fprintf(stderr, "torch run failed: %s\n", cmd.c_str());
    return nullptr;
  }
  return nlohmann::json::parse(out, nullptr, false);
}

// VmHWM (peak resident set, KiB) of this process image.
long PeakRssKib() {
  FILE* f = std::fopen("/proc/self/status", "r");
  char line[256];
  long kib = -1;
  while (f && std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "VmHWM: %ld", &kib) == 1) break;
  if (f) std::fclose(f);
  return kib;
}

// Peak RSS (KiB) of a fresh process that opens the model and encodes one input; it reports
// its own VmHWM (ru_maxrss of a child would include this process's pages from before exec).
long PeakRssChild(const std::string& self, const std::string& model, size_t length, int threads) {
  std::string cmd = self + " --model " + model + " --peak-memory-child " + std::to_string(length) +
                    " --threads " + std::to_string(threads);
  FILE* p = popen(cmd.c_str(), "r");
  long kib = -1;
  if (p != nullptr && std::fscanf(p, "%ld", &kib) != 1) kib = -1;
  if (p == nullptr || pclose(p) != 0) return -1;
  return kib;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"m3vdb encoder vs PyTorch CPU"};
  std::string model;
  std::vector<size_t> lengths{128, 512, 8192};
  std::vector<int> threads{1, 2};
  int reps = 3;
  size_t child_length = 0;
  bool skip_torch = false;
  std::string python = "/usr/bin/python3";
  app.add_option("--model", model, "BGE-M3-shaped checkpoint (scripts/make_fixture_model.py bench)")->required();
  app.add_option("--lengths", lengths, "sequence lengths")->delimiter(',');
  app.add_option("--threads", threads, "thread counts")->delimiter(',');
  app.add_option("--reps", reps, "timed repetitions per point (lengths >= 4096: 1, no warm-up)");
  app.add_flag("--skip-torch", skip_torch, "m3vdb only");
  app.add_option("--python", python, "interpreter with Debian's python3-torch")->capture_default_str();
  app.add_option("--peak-memory-child", child_length)->group("");
  CLI11_PARSE(app, argc, argv);

  if (child_length > 0) {  // child: open + encode once, the parent reads our peak RSS
    m3vdb::embedder::Options o;
    o.threads = threads.front();
    o.device = m3vdb::embedder::Device::kCpu;
    auto e = Embedder::Open(model, o);
    if (!e.ok()) return 1;
    auto r = (*e)->EncodeTokens(RandomInputs(1, child_length, 250002));
    if (!r.ok()) return 1;
    std::printf("%ld\n", PeakRssKib());
    return 0;
  }

  std::string self = "/proc/self/exe";
  char exe[4096];
  ssize_t n = readlink(self.c_str(), exe, sizeof exe - 1);
  if (n > 0) self.assign(exe, static_cast<size_t>(n));
  std::string script = std::string(M3VDB_SOURCE_DIR) + "/bench/encoder_bench_torch.py";

  std::printf("| length | batch | threads | m3vdb tokens/s | PyTorch tokens/s | ratio |\n|---|---|---|---|---|---|\n");
  for (int t : threads) {
    m3vdb::embedder::Options o;
    o.threads = t;
    o.batch_size = 64;
    o.batch_tokens = 1 << 16;
    o.device = m3vdb::embedder::Device::kCpu;
    auto e = Embedder::Open(model, o);
    if (!e.ok()) {
      std::fprintf(stderr, "%s\n", e.status().ToString().c_str());
      return 1;
    }
    for (size_t len : lengths) {
      size_t batch = BatchFor(len);
      int warm = len >= 4096 ? 0 : 1, r = len >= 4096 ? 1 : reps;
      auto inputs = RandomInputs(batch, len, 250002);
      double ours = static_cast<double>(batch * len) / TimeM3vdb(**e, inputs, warm, r);
      double theirs = 0;
      if (!skip_torch) {
        auto j = RunTorch(python, script, model, len, batch, t, warm, r);
        if (j.is_object()) theirs = static_cast<double>(batch * len) / j["seconds"].get<double>();
      }
      std::printf("| %zu | %zu | %d | %.0f | %.0f | %.2f |\n", len, batch, t, ours, theirs,
                  theirs > 0 ? ours / theirs : 0.0);
      std::fflush(stdout);
    }
  }
  size_t longest = *std::max_element(lengths.begin(), lengths.end());
  long ours = PeakRssChild(self, model, longest, threads.back());
  std::printf("\npeak RSS, one %zu-token input, %d threads: m3vdb %.2f GiB", longest, threads.back(),
              static_cast<double>(ours) / (1 << 20));
  if (!skip_torch) {
    auto j = RunTorch(python, script, model, longest, 1, threads.back(), 0, 1);
    if (j.is_object())
      std::printf(", PyTorch %.2f GiB", j["peak_rss_kib"].get<double>() / (1 << 20));
  }
  std::printf("\n");
  return 0;
}
