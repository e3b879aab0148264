// The BGE-M3 model as loaded from a release directory: config.json, the XLM-R weights
// (pytorch_model.bin or model.safetensors) and the two heads (colbert_linear.pt,
// sparse_linear.pt). float32 weights are used in place inside the mapped files; other float
// types are converted once at load. Immutable after loading; safe to share between threads.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "embedder/detail/tensor.h"
#include "m3vdb/status.h"

namespace m3vdb::embedder {

struct ModelConfig {
  int hidden = 0;
  int layers = 0;
  int heads = 0;
  int ffn = 0;
  int positions = 0;   // max_position_embeddings (rows of the position table, incl. offset 2)
  int vocab = 0;
  int type_vocab = 0;
  float eps = 1e-5f;
};

// y = x W^T + b with W row-major [out, in].
struct Linear {
  const float* w = nullptr;
  const float* b = nullptr;
  int out = 0;
  int in = 0;
};

struct LayerNormWeights {
  const float* gamma = nullptr;
  const float* beta = nullptr;
};

struct LayerWeights {
  Linear q, k, v, attn_out;
  LayerNormWeights attn_ln;
  Linear ffn_in, ffn_out;
  LayerNormWeights ffn_ln;
};

struct ModelWeights {
  ModelConfig config;
  const float* word = nullptr;      // [vocab, hidden]
  const float* position = nullptr;  // [positions, hidden]
  const float* token_type = nullptr;  // row 0 of [type_vocab, hidden]
  LayerNormWeights embed_ln;
  std::vector<LayerWeights> layers;
  Linear colbert;  // [colbert_dim, hidden]
  Linear sparse;   // [1, hidden]
  std::string weights_path;

  // Owners of the memory the pointers above refer to.
  std::vector<TensorFile> files;
  std::vector<std::unique_ptr<float[]>> converted;
};

Result<ModelConfig> ReadConfig(const std::string& path);

// `weights_file`: a file name inside `dir`, or empty for model.safetensors when present,
// else pytorch_model.bin.
Result<std::unique_ptr<ModelWeights>> LoadModel(const std::string& dir, const std::string& weights_file);

}  // namespace m3vdb::embedder
