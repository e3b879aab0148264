// Fuzz target: the YAML configuration loader of `m3vdb serve` (tools/config.h). Invariants: no
// crash or exception; every error names what is wrong (a non-empty message).
#include <cstdint>
#include <string_view>

#include "tests/fuzz/fuzz_support.h"
#include "tools/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view yaml(reinterpret_cast<const char*>(data), size);
  m3vdb::tools::Config config;
  m3vdb::Status s = m3vdb::tools::ApplyConfigYaml(yaml, &config);
  if (!s.ok()) {
    if (s.message().empty()) m3vdb::fuzz::Fail("config error without a message");
    return 0;
  }
  m3vdb::Status v = m3vdb::tools::ValidateConfig(config);
  if (!v.ok() && v.message().empty()) m3vdb::fuzz::Fail("validation error without a message");
  return 0;
}
