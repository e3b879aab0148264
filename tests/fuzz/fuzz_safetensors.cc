// Fuzz target: the safetensors reader (embedder/detail/checkpoint_files.h). The input is the
// whole file. Invariants: no crash, and those of tests/fuzz/tensor_checks.h.
#include <cstdint>

#include "tests/fuzz/tensor_checks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  m3vdb::fuzz::MemoryFile file(data, size);
  auto read = m3vdb::embedder::ReadSafetensors(file.path());
  if (read.ok()) m3vdb::fuzz::CheckTensors(*read);
  return 0;
}
