#include "embedder/embedder.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <numeric>
#include <thread>

#include "common/gpu.h"
#include "embedder/cuda/cuda_encoder.h"
#include "common/blas_threads.h"
#include "embedder/detail/cpu_encoder.h"
#include "embedder/detail/heads.h"
#include "embedder/detail/kernels.h"
#include "embedder/detail/model.h"
#include "embedder/detail/tokenizer.h"

namespace m3vdb::embedder {
namespace {

// One encoder input: a whole text, or one chunk of a long text (kChunkAverage).
struct Job {
  size_t text = 0;
  size_t content_start = 0;  // index of the chunk's first token in the text's content
  std::vector<int32_t> ids;  // <s> ... </s>
  int stretch = 1;           // position interpolation factor
  SequenceHeads heads;
};

class EmbedderImpl final : public Embedder {
 public:
  EmbedderImpl(std::unique_ptr<ModelWeights> model, std::unique_ptr<Tokenizer> tokenizer,
               std::unique_ptr<EncoderBackend> backend, const Options& options, size_t max_length)
      : model_(std::move(model)), tokenizer_(std::move(tokenizer)), backend_(std::move(backend)),
        options_(options), max_length_(max_length) {
    threads_ = options.threads > 0 ? options.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    cap_ = static_cast<size_t>(model_->config.positions) - 2;
  }

  Result<std::vector<Embedding>> Encode(std::span<const std::string> texts) const override {
    std::vector<std::vector<int32_t>> tokens;
    tokens.reserve(texts.size());
    size_t truncated = 0;
    for (const std::string& text : texts) {
      tokens.push_back(TokenizeCounting(text, truncated));
    }
    if (truncated > 0)
      spdlog::warn("embedder: {} of {} input(s) truncated to max_length {} tokens", truncated, texts.size(),
                   max_length_);
    return Run(tokens);
  }

  Result<std::vector<Embedding>> EncodeTokens(std::span<const std::vector<int32_t>> tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      const auto& t = tokens[i];
      std::string where = "input " + std::to_string(i) + ": ";
      if (t.size() < 2 || t.front() != kBos || t.back() != kEos)
        return Status::InvalidArgument(where + "token ids must start with <s> (0) and end with </s> (2)");
      if (t.size() > max_length_)
        return Status::InvalidArgument(where + std::to_string(t.size()) + " tokens exceed max_length " +
                                       std::to_string(max_length_));
      for (int32_t id : t)
        if (id < 0 || id >= model_->config.vocab || id == kPad)
          return Status::InvalidArgument(where + "token id " + std::to_string(id) + " is out of range or <pad>");
    }
    return Run(tokens);
  }

  std::vector<int32_t> Tokenize(std::string_view text) const override {
    size_t truncated = 0;
    return TokenizeCounting(text, truncated);
  }

  size_t dim() const override { return static_cast<size_t>(model_->config.hidden); }
  size_t colbert_dim() const override { return static_cast<size_t>(model_->colbert.out); }
  size_t max_length() const override { return max_length_; }
  std::string_view backend() const override { return backend_->name(); }

 private:
  std::vector<int32_t> TokenizeCounting(std::string_view text, size_t& truncated) const {
    std::vector<int32_t> content = tokenizer_->Encode(text);
    if (content.size() > max_length_ - 2) {
      content.resize(max_length_ - 2);
      ++truncated;
    }
    std::vector<int32_t> ids;
    ids.reserve(content.size() + 2);
    ids.push_back(kBos);
    ids.insert(ids.end(), content.begin(), content.end());
    ids.push_back(kEos);
    return ids;
  }

  std::vector<Job> MakeJobs(std::span<const std::vector<int32_t>> tokens) const {
    std::vector<Job> jobs;
    for (size_t t = 0; t < tokens.size(); ++t) {
      const auto& ids = tokens[t];
      if (ids.size() <= cap_) {
        jobs.push_back(Job{t, 0, ids, 1, {}});
      } else if (options_.long_input == LongInputMode::kInterpolatePositions) {
        int stretch = static_cast<int>((ids.size() + cap_ - 1) / cap_);
        jobs.push_back(Job{t, 0, ids, stretch, {}});
      } else {  // kChunkAverage: chunks of cap_-2 content tokens, the last one right-aligned
        const size_t content = ids.size() - 2, chunk = cap_ - 2;
        for (size_t start = 0;; start += chunk) {
          size_t s = std::min(start, content - chunk);
          Job job{t, s, {}, 1, {}};
          job.ids.push_back(kBos);
          job.ids.insert(job.ids.end(), ids.begin() + 1 + static_cast<long>(s), ids.begin() + 1 + static_cast<long>(s + chunk));
          job.ids.push_back(kEos);
          jobs.push_back(std::move(job));
          if (s + chunk >= content) break;
        }
      }
    }
    return jobs;
  }

  // Encodes the jobs in length-sorted batches and fills their heads.
  Status EncodeJobs(std::vector<Job>& jobs) const {
    std::vector<size_t> order(jobs.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return jobs[a].ids.size() > jobs[b].ids.size(); });
    const size_t h = dim();
    SingleThreadedBlas blas;  // the workers below call BLAS concurrently
    WorkerTeam team(threads_);
    std::vector<float> x;
    for (size_t i = 0; i < order.size();) {
      std::vector<size_t> batch;
      std::vector<size_t> offsets{0};
      while (i < order.size() && batch.size() < options_.batch_size) {
        size_t len = jobs[order[i]].ids.size();
        if (!batch.empty() && offsets.back() + len > options_.batch_tokens) break;
        batch.push_back(order[i++]);
        offsets.push_back(offsets.back() + len);
      }
      x.resize(offsets.back() * h);
      for (size_t b = 0; b < batch.size(); ++b)
        EmbedTokens(*model_, jobs[batch[b]].ids, jobs[batch[b]].stretch, x.data() + offsets[b] * h);
      M3VDB_RETURN_IF_ERROR(backend_->Run(x.data(), offsets, team));
      team.ParallelFor(batch.size(), [&](size_t b, int) {
        jobs[batch[b]].heads = ApplyHeads(*model_, jobs[batch[b]].ids, x.data() + offsets[b] * h);
      });
    }
    return Status::OK();
  }

  Result<std::vector<Embedding>> Run(std::span<const std::vector<int32_t>> tokens) const {
    std::vector<Job> jobs = MakeJobs(tokens);
    M3VDB_RETURN_IF_ERROR(EncodeJobs(jobs));
    std::vector<Embedding> out(tokens.size());
    const size_t h = dim(), cdim = colbert_dim();
    std::vector<std::vector<std::pair<int32_t, float>>> sparse(tokens.size());
    std::vector<size_t> parts(tokens.size(), 0), covered(tokens.size(), 0);
    for (Job& job : jobs) {  // jobs of one text are consecutive, in content order
      Embedding& e = out[job.text];
      if (parts[job.text]++ == 0) e.dense.assign(h, 0.0f);
      for (size_t j = 0; j < h; ++j) e.dense[j] += job.heads.cls[j];
      AccumulateSparse(job.ids, job.heads.token_weight, sparse[job.text]);
      // ColBERT rows for content tokens not yet covered by an earlier chunk.
      size_t content = job.ids.size() - 2;
      size_t first = std::max(covered[job.text], job.content_start) - job.content_start;
      e.colbert.insert(e.colbert.end(), job.heads.colbert.begin() + static_cast<long>(first * cdim),
                       job.heads.colbert.begin() + static_cast<long>(content * cdim));
      covered[job.text] = job.content_start + content;
    }
    for (const Job& job : jobs) {  // the last chunk of each text contributes </s>
      if (covered[job.text] == job.content_start + job.ids.size() - 2) {
        Embedding& e = out[job.text];
        if (e.colbert_rows == 0) {
          e.colbert.insert(e.colbert.end(), job.heads.colbert.end() - static_cast<long>(cdim), job.heads.colbert.end());
          e.colbert_rows = e.colbert.size() / cdim;
        }
      }
    }
    for (size_t t = 0; t < tokens.size(); ++t) {
      Embedding& e = out[t];
      e.tokens = tokens[t];
      NormalizeL2(e.dense.data(), h);
      e.sparse = FinishSparse(std::move(sparse[t]));
    }
    return out;
  }

  std::unique_ptr<ModelWeights> model_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<EncoderBackend> backend_;
  Options options_;
  size_t max_length_ = 0;
  size_t cap_ = 0;
  int threads_ = 1;
};

Result<std::unique_ptr<EncoderBackend>> ChooseBackend(const ModelWeights& model, Device device) {
  if (device == Device::kCpu) return CreateCpuEncoder(model);
  if (device == Device::kCuda) return CreateCudaEncoder(model);
  if (GpuAvailable()) {
    auto cuda = CreateCudaEncoder(model);
    if (cuda.ok()) return cuda;
    spdlog::warn("embedder: GPU present but the CUDA encoder is unavailable ({}); using the CPU",
                 cuda.status().ToString());
  }
  return CreateCpuEncoder(model);
}

}  // namespace

Result<std::unique_ptr<Embedder>> Embedder::Open(const std::string& model_dir, const Options& options) {
  if (options.batch_size == 0 || options.batch_tokens == 0 || options.threads < 0)
    return Status::InvalidArgument("embedder options: batch_size and batch_tokens must be > 0, threads >= 0");
  if (options.max_length < 2) return Status::InvalidArgument("embedder options: max_length must be at least 2");
  M3VDB_ASSIGN_OR_RETURN(auto model, LoadModel(model_dir, options.weights_file));
  M3VDB_ASSIGN_OR_RETURN(auto tokenizer, Tokenizer::Open(model_dir + "/sentencepiece.bpe.model", model->config.vocab));
  size_t cap = static_cast<size_t>(model->config.positions) - 2;
  size_t max_length = options.max_length;
  if (options.long_input == LongInputMode::kTruncate) max_length = std::min(max_length, cap);
  if (options.long_input == LongInputMode::kChunkAverage && cap < 3)
    return Status::InvalidArgument(model_dir + "/config.json: too few positions for chunking");
  M3VDB_ASSIGN_OR_RETURN(auto backend, ChooseBackend(*model, options.device));
  return std::unique_ptr<Embedder>(
      new EmbedderImpl(std::move(model), std::move(tokenizer), std::move(backend), options, max_length));
}

}  // namespace m3vdb::embedder
