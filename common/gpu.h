// Run-time GPU discovery. CUDA code is compiled whenever nvcc is present (M3VDB_CUDA=AUTO), but
// it is used only when this probe finds a device: any CUDA error (no driver, no device) means
// "no GPU" and callers take the CPU path. Thread-safe; the probe runs once per process.
#pragma once

#include <string>

namespace m3vdb {

struct GpuInfo {
  bool compiled = false;  // the CUDA backend was built into this binary
  int device_count = 0;   // usable devices found at run time (0 on any error)
  std::string name;       // name of device 0, when there is one
  std::string reason;     // why there is no GPU, when device_count == 0
};

const GpuInfo& ProbeGpu();
inline bool GpuAvailable() { return ProbeGpu().device_count > 0; }

}  // namespace m3vdb
