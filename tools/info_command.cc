#include <cstdio>

#include "common/gpu.h"
#include "tools/commands.h"

namespace m3vdb::tools {

Runner AddInfoCommand(CLI::App& app) {
  app.add_subcommand("info", "Print the version, build options and whether a GPU is usable");
  return [] {
    const GpuInfo& gpu = ProbeGpu();
    std::printf("m3vdb %s\n", M3VDB_VERSION);
    std::printf("cuda backend: %s\n", gpu.compiled ? "compiled" : "not compiled");
    if (gpu.device_count > 0)
      std::printf("gpu: %d device(s), %s\n", gpu.device_count, gpu.name.c_str());
    else
      std::printf("gpu: none (%s); CPU path in use\n", gpu.reason.c_str());
    return 0;
  };
}

}  // namespace m3vdb::tools
