// CUDA twin of the GPU probe: asks the runtime for devices, treating every error as "no GPU".
#include <cuda_runtime.h>

#include "common/gpu.h"

namespace m3vdb {

const GpuInfo& ProbeGpu() {
  static const GpuInfo info = [] {
    GpuInfo out;
    out.compiled = true;
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
      out.reason = cudaGetErrorString(err);
      cudaGetLastError();  // clear the sticky error
      return out;
    }
    if (count == 0) {
      out.reason = "no CUDA device";
      return out;
    }
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) out.name = prop.name;
    out.device_count = count;
    return out;
  }();
  return info;
}

}  // namespace m3vdb
