#include "engine/detail/text_model.h"

#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>

namespace m3vdb::engine {

TextModel::TextModel(std::string dir, std::unique_ptr<embedder::Embedder> embedder)
    : dir_(std::move(dir)), embedder_(std::move(embedder)) {}

Result<std::vector<TextEmbedding>> TextModel::Encode(std::span<const std::string> texts) const {
  if (texts.empty()) return std::vector<TextEmbedding>{};
  const auto start = std::chrono::steady_clock::now();
  M3VDB_ASSIGN_OR_RETURN(std::vector<embedder::Embedding> encoded, embedder_->Encode(texts));
  const auto nanos =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count();
  std::vector<TextEmbedding> out(encoded.size());
  uint64_t tokens = 0;
  for (size_t i = 0; i < encoded.size(); ++i) {
    embedder::Embedding& e = encoded[i];
    TextEmbedding& t = out[i];
    tokens += e.tokens.size();
    t.tokens = std::move(e.tokens);
    t.dense = std::move(e.dense);
    t.sparse.indices = std::move(e.sparse.ids);
    t.sparse.values = std::move(e.sparse.weights);
    t.colbert.data = std::move(e.colbert);
    t.colbert.rows = static_cast<uint32_t>(e.colbert_rows);
  }
  texts_.fetch_add(texts.size(), std::memory_order_relaxed);
  tokens_.fetch_add(tokens, std::memory_order_relaxed);
  nanos_.fetch_add(static_cast<uint64_t>(nanos), std::memory_order_relaxed);
  return out;
}

ModelInfo TextModel::Info() const {
  ModelInfo info;
  info.dir = dir_;
  info.backend = std::string(embedder_->backend());
  info.dim = static_cast<uint32_t>(embedder_->dim());
  info.colbert_dim = static_cast<uint32_t>(embedder_->colbert_dim());
  info.max_length = embedder_->max_length();
  info.texts_total = texts_.load(std::memory_order_relaxed);
  info.tokens_total = tokens_.load(std::memory_order_relaxed);
  info.encode_seconds_total = static_cast<double>(nanos_.load(std::memory_order_relaxed)) * 1e-9;
  return info;
}

embedder::Options ToEmbedderOptions(const EncoderOptions& o) {
  embedder::Options e;
  e.max_length = o.max_length;
  e.batch_size = o.batch_size;
  e.batch_tokens = o.batch_tokens;
  e.threads = o.threads;
  e.weights_file = o.weights_file;
  switch (o.long_input) {
    case LongInputMode::kTruncate: e.long_input = embedder::LongInputMode::kTruncate; break;
    case LongInputMode::kInterpolatePositions: e.long_input = embedder::LongInputMode::kInterpolatePositions; break;
    case LongInputMode::kChunkAverage: e.long_input = embedder::LongInputMode::kChunkAverage; break;
  }
  switch (o.device) {
    case EncoderDevice::kAuto: e.device = embedder::Device::kAuto; break;
    case EncoderDevice::kCpu: e.device = embedder::Device::kCpu; break;
    case EncoderDevice::kCuda: e.device = embedder::Device::kCuda; break;
  }
  return e;
}

Result<std::shared_ptr<TextModel>> AcquireTextModel(const std::string& model_dir, const EncoderOptions& options) {
  std::error_code ec;
  const std::filesystem::path canonical = std::filesystem::canonical(model_dir, ec);
  if (ec) return Status::NotFound("model directory '" + model_dir + "': " + ec.message());
  if (!std::filesystem::is_directory(canonical, ec))
    return Status::InvalidArgument("model directory '" + model_dir + "' is not a directory");
  const std::string key = canonical.string() + "|" + std::to_string(options.max_length) + "|" +
                          std::to_string(options.batch_size) + "|" + std::to_string(options.batch_tokens) + "|" +
                          std::to_string(options.threads) + "|" + std::to_string(static_cast<int>(options.long_input)) +
                          "|" + std::to_string(static_cast<int>(options.device)) + "|" + options.weights_file;

  static std::mutex mu;
  static std::map<std::string, std::weak_ptr<TextModel>> registry;
  std::lock_guard lock(mu);
  if (auto it = registry.find(key); it != registry.end()) {
    if (auto alive = it->second.lock()) return alive;
  }
  for (auto it = registry.begin(); it != registry.end();) it = it->second.expired() ? registry.erase(it) : std::next(it);
  M3VDB_ASSIGN_OR_RETURN(std::unique_ptr<embedder::Embedder> loaded,
                         embedder::Embedder::Open(canonical.string(), ToEmbedderOptions(options)));
  auto model = std::make_shared<TextModel>(canonical.string(), std::move(loaded));
  registry[key] = model;
  return model;
}

}  // namespace m3vdb::engine
