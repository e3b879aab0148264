// Fuzz target: the torch zip-pickle reader (pytorch_model.bin, *.pt; embedder/detail/checkpoint_files.h): a zip
// archive with a restricted pickle inside. The input is the
// whole file. Invariants: no crash; every tensor it returns lies inside the file, and its bytes
// can be read (ASan checks every byte touched); a tensor of a known dtype holds exactly
// shape-product elements (no overflow) and converts to float32.
#include <cstdint>
#include <vector>

#include "embedder/detail/checkpoint_files.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  m3vdb::fuzz::MemoryFile file(data, size);
  auto read = m3vdb::embedder::ReadTorchFile(file.path());
  if (!read.ok()) return 0;
  const uint8_t* begin = read->file->data();
  const uint8_t* end = begin + read->file->size();
  unsigned sum = 0;
  for (const auto& [name, t] : read->tensors) {
    if (t.nbytes > 0 && (t.data < begin || t.data + t.nbytes > end)) m3vdb::fuzz::Fail("tensor outside the file: " + name);
    for (size_t i = 0; i < t.nbytes; ++i) sum += t.data[i];
    const size_t elem = m3vdb::embedder::DTypeSize(t.dtype);
    if (elem == 0) continue;
    size_t n = 1;
    bool overflow = false;
    for (int64_t d : t.shape) overflow |= d < 0 || __builtin_mul_overflow(n, static_cast<size_t>(d), &n);
    size_t bytes = 0;
    overflow |= __builtin_mul_overflow(n, elem, &bytes);
    if (overflow || bytes != t.nbytes) m3vdb::fuzz::Fail("tensor '" + name + "': shape does not match its bytes");
    if (t.dtype != m3vdb::embedder::DType::kI64) {
      std::vector<float> out(n);
      if (!m3vdb::embedder::ToFloat(t, name, out.data()).ok()) m3vdb::fuzz::Fail("ToFloat refused a float tensor");
    }
  }
  volatile unsigned sink = sum;
  (void)sink;
  return 0;
}
