// BGE-M3 text encoder: one forward pass of the XLM-RoBERTa encoder gives the three M3
// representations of a text (SPECS.md section 1).
//
// `Embedder::Open` loads a BGE-M3 release directory as published: config.json, the encoder
// weights (model.safetensors or pytorch_model.bin, read in place from a memory mapping), the
// two heads colbert_linear.pt and sparse_linear.pt, and sentencepiece.bpe.model (fairseq id
// mapping). Every file is required; a missing or malformed file, a missing tensor, a wrong
// shape or an unsupported tensor type is an error that names the file and the key.
//
// `Encode` tokenizes (`<s> text </s>`, truncated to `max_length` tokens in all), groups the
// texts into length-sorted batches, runs the encoder (OpenBLAS on the CPU; the CUDA backend
// when it was compiled in and a GPU is present) and applies the heads:
//   dense   = L2-normalized hidden state of `<s>`                         (size dim)
//   sparse  = max over positions of relu(w . h + b) per token id, ids 0-3 and weights <= 0
//             dropped, sorted by token id
//   colbert = L2-normalized linear(h) for tokens 1..n-1 (incl. `</s>`)    (size (n-1) * colbert_dim)
// Results come back in input order and do not depend on how the texts were batched.
//
// Inputs longer than the checkpoint's positions (8192 tokens for BGE-M3) are truncated with
// a logged warning unless `LongInputMode` selects position interpolation or chunk-and-average
// (LongEmbed, SPECS.md section 3.2).
//
// Thread safety: an Embedder is immutable after Open; Encode may be called from many threads
// at once (calls share the model; each uses `threads` worker threads of its own). While an
// encode runs, OpenBLAS's global thread count is 1 (restored afterwards): the encoder
// parallelizes itself and calls BLAS from its workers. Nothing here throws.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "m3vdb/status.h"

namespace m3vdb::embedder {

enum class LongInputMode {
  kTruncate,              // keep the first max_length tokens (the reference); logs a warning
  kInterpolatePositions,  // longer inputs read fractional positions i/s, s = ceil(n / positions)
  kChunkAverage,          // split into position-sized chunks, average their outputs
};

enum class Device { kAuto, kCpu, kCuda };  // kAuto: CUDA when compiled in and a GPU exists

struct Options {
  size_t max_length = 8192;      // tokens incl. <s> and </s>; capped by the checkpoint's
                                 // positions unless long_input is not kTruncate
  size_t batch_size = 16;        // texts per forward pass
  size_t batch_tokens = 16384;   // and at most this many tokens per forward pass
  int threads = 0;               // worker threads per Encode call; 0 = all cores
  LongInputMode long_input = LongInputMode::kTruncate;
  Device device = Device::kAuto;
  std::string weights_file;      // file name in the model directory; empty = model.safetensors
                                 // when present, else pytorch_model.bin
};

// Sparse lexical weights: strictly increasing token ids and their positive weights.
struct SparseWeights {
  std::vector<int32_t> ids;
  std::vector<float> weights;
};

struct Embedding {
  std::vector<int32_t> tokens;   // fairseq ids, starting with <s> (0) and ending with </s> (2)
  std::vector<float> dense;      // size dim
  SparseWeights sparse;
  std::vector<float> colbert;    // row-major, size colbert_rows * colbert_dim
  size_t colbert_rows = 0;
};

class Embedder {
 public:
  static Result<std::unique_ptr<Embedder>> Open(const std::string& model_dir, const Options& options = {});
  virtual ~Embedder() = default;

  // One Embedding per text, in input order.
  virtual Result<std::vector<Embedding>> Encode(std::span<const std::string> texts) const = 0;
  // Same for pre-tokenized inputs: fairseq ids including <s> and </s>, each in [0, vocab).
  virtual Result<std::vector<Embedding>> EncodeTokens(std::span<const std::vector<int32_t>> tokens) const = 0;
  // The token ids Encode uses for `text` (after truncation).
  virtual std::vector<int32_t> Tokenize(std::string_view text) const = 0;

  virtual size_t dim() const = 0;          // dense width (hidden size)
  virtual size_t colbert_dim() const = 0;
  virtual size_t max_length() const = 0;   // effective max_length after capping
  virtual std::string_view backend() const = 0;  // "cpu" or "cuda"
};

// Lexical matching score sum over shared ids of q[t] * d[t] (SPECS.md section 1.4).
float SparseScore(const SparseWeights& q, const SparseWeights& d);

// ColBERT MaxSim (1/|Q|) sum_i max_j <Q_i, D_j>. `q` has size q_rows*dim, `d` d_rows*dim.
// 0 when either side has no rows.
float ColbertScore(std::span<const float> q, size_t q_rows, std::span<const float> d, size_t d_rows, size_t dim);

}  // namespace m3vdb::embedder
