// CPU-only twin of the GPU probe, linked when m3vdb is built without CUDA.
#include "common/gpu.h"

namespace m3vdb {

const GpuInfo& ProbeGpu() {
  static const GpuInfo info{false, 0, "", "built without CUDA (M3VDB_CUDA=OFF or no nvcc)"};
  return info;
}

}  // namespace m3vdb
