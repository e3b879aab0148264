// Fuzz target: the stored IVF-PQ codebooks (quant::Codebooks::Parse, a meta-family value).
// Invariants: corrupt bytes are a Corruption status, never a crash; parsed codebooks validate
// and serialize back to the same bytes' meaning (parse(serialize(x)) == x); encoding and
// decoding one vector stays inside the tables (ASan).
#include <cstdint>
#include <string_view>
#include <vector>

#include "quant/codebooks.h"
#include "tests/fuzz/fuzz_support.h"

using namespace m3vdb;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto parsed = quant::Codebooks::Parse(bytes);
  if (!parsed.ok()) {
    if (parsed.status().code() != StatusCode::kCorruption && parsed.status().code() != StatusCode::kInvalidArgument)
      fuzz::Fail("codebooks error is neither Corruption nor InvalidArgument: " + parsed.status().ToString());
    if (parsed.status().message().empty()) fuzz::Fail("codebooks error without a message");
    return 0;
  }
  const quant::Codebooks& cb = *parsed;
  if (!cb.Validate().ok()) fuzz::Fail("parsed codebooks do not validate: " + cb.Validate().ToString());
  const std::string again = cb.Serialize();
  auto reparsed = quant::Codebooks::Parse(again);
  if (!reparsed.ok() || reparsed->Serialize() != again) fuzz::Fail("codebooks do not round-trip");
  // One vector through the quantizer (bounded: fuzzed sizes stay small in practice).
  const uint32_t dim = cb.params.dim;
  if (dim == 0 || dim > 4096 || static_cast<uint64_t>(cb.params.nlist) * dim > (1u << 22)) return 0;
  std::vector<float> x(dim, 0.5f), out(dim);
  uint32_t list = 0;
  std::vector<uint8_t> code(cb.params.code_size());
  cb.Encode(x.data(), 1, &list, code.data());
  if (list >= cb.params.nlist) fuzz::Fail("encoded list out of range");
  cb.Decode(list, code.data(), out.data());
  return 0;
}
