// The XLM-RoBERTa encoder layers on the CPU: per layer, Q/K/V projections over all tokens of
// the batch, attention per (sequence, head, block of query rows) so that at most
// threads * block * length scores exist at once, output projection + residual + LayerNorm,
// then FFN (exact GELU) + residual + LayerNorm (post-LN, as BERT).
#pragma once

#include <memory>

#include "embedder/detail/encoder_backend.h"
#include "embedder/detail/model.h"

namespace m3vdb::embedder {

std::unique_ptr<EncoderBackend> CreateCpuEncoder(const ModelWeights& model);

// Multi-head self-attention of a packed batch: ctx = softmax(q k^T / sqrt(d)) v per sequence
// and head. q, k, v, ctx: [offsets.back(), hidden].
void PackedAttention(const float* q, const float* k, const float* v, float* ctx, std::span<const size_t> offsets,
                     int hidden, int heads, WorkerTeam& team);

}  // namespace m3vdb::embedder
