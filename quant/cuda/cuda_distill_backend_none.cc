// CPU-only twin of cuda_distill_backend.cu, built when nvcc was not found.
#include "quant/cuda/cuda_distill_backend.h"

namespace m3vdb::quant {

Result<std::unique_ptr<DistillBackend>> CreateCudaDistillBackend() {
  return Status::Unavailable("the CUDA Distill-VQ backend was not compiled into this build");
}

}  // namespace m3vdb::quant
