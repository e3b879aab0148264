// TextModel: the BGE-M3 embedder as the engine uses it, shared per process.
//
// `AcquireTextModel` returns the one TextModel for (canonical model directory, encoder
// options): the first call loads it, later calls get the same instance while any holder keeps
// it alive (the registry holds weak pointers, so the model is freed with its last database).
// Loading happens under the registry lock: concurrent acquirers of the same model wait for the
// first load instead of loading twice.
//
// `Encode` counts texts, tokens and wall seconds (process totals per model) for metrics, and
// converts to the engine's public types. Thread safe; nothing throws.
#pragma once

#include <atomic>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "embedder/embedder.h"
#include "engine/detail/text_modes.h"
#include "m3vdb/m3vdb.h"

namespace m3vdb::engine {

class TextModel {
 public:
  TextModel(std::string dir, std::unique_ptr<embedder::Embedder> embedder);

  const std::string& dir() const { return dir_; }
  const embedder::Embedder& embedder() const { return *embedder_; }

  // One call of the embedder for the whole span (it buckets by length itself).
  Result<std::vector<TextEmbedding>> Encode(std::span<const std::string> texts) const;

  ModelInfo Info() const;

 private:
  const std::string dir_;
  const std::unique_ptr<embedder::Embedder> embedder_;
  mutable std::atomic<uint64_t> texts_{0}, tokens_{0}, nanos_{0};
};

embedder::Options ToEmbedderOptions(const EncoderOptions& options);

Result<std::shared_ptr<TextModel>> AcquireTextModel(const std::string& model_dir, const EncoderOptions& options);

}  // namespace m3vdb::engine
