// The BGE-M3 heads on the encoder's last hidden states of one sequence (SPECS.md 1.3), and
// the embedding step in front of the encoder.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "embedder/detail/model.h"
#include "embedder/embedder.h"

namespace m3vdb::embedder {

// x[i] = LayerNorm(word[ids[i]] + position(i) + type[0]) for the tokens of one sequence.
// position(i) is row 2 + i; with `stretch` > 1 it is the linear interpolation at 2 + i/stretch
// (position interpolation). x: size ids.size() * hidden.
void EmbedTokens(const ModelWeights& m, std::span<const int32_t> ids, int stretch, float* x);

// Head outputs of one sequence before its text's results are combined.
struct SequenceHeads {
  std::vector<float> cls;        // un-normalized hidden state of <s>
  std::vector<float> token_weight;  // relu(w . h_i + b) for every position
  std::vector<float> colbert;    // normalized rows for positions 1..n-1
};

// `hidden`: size ids.size() * hidden of one sequence.
SequenceHeads ApplyHeads(const ModelWeights& m, std::span<const int32_t> ids, const float* hidden);

// Max weight per token id over (ids, weights), without ids 0-3 and non-positive weights.
void AccumulateSparse(std::span<const int32_t> ids, std::span<const float> weights,
                      std::vector<std::pair<int32_t, float>>& best);
SparseWeights FinishSparse(std::vector<std::pair<int32_t, float>> best);

}  // namespace m3vdb::embedder
