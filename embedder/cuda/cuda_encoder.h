// The encoder layers on a CUDA device (cuBLAS GEMMs, own kernels for LayerNorm, GELU and
// softmax). Compiled when nvcc is found (cuda_encoder.cu); otherwise cuda_encoder_none.cc
// is built and the factory always reports Unavailable.
#pragma once

#include <memory>

#include "embedder/detail/encoder_backend.h"
#include "embedder/detail/model.h"
#include "m3vdb/status.h"

namespace m3vdb::embedder {

// Copies the weights to device 0. Unavailable when CUDA was not compiled in or no GPU is
// usable; the caller then uses the CPU backend.
Result<std::unique_ptr<EncoderBackend>> CreateCudaEncoder(const ModelWeights& model);

}  // namespace m3vdb::embedder
