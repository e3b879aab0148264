// CPU-only twin of cuda_encoder.cu, built when nvcc was not found.
#include "embedder/cuda/cuda_encoder.h"

namespace m3vdb::embedder {

Result<std::unique_ptr<EncoderBackend>> CreateCudaEncoder(const ModelWeights&) {
  return Status::Unavailable("the CUDA encoder was not compiled into this build");
}

}  // namespace m3vdb::embedder
