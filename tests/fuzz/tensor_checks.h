// The invariants both checkpoint-reader fuzz targets check on what a reader returned: every
// tensor lies inside the file and its bytes can be read (ASan checks every byte touched); a
// tensor of a known dtype holds exactly shape-product elements (no overflow) and converts to
// float32.
#pragma once

#include <cstdint>
#include <vector>

#include "embedder/detail/checkpoint_files.h"
#include "tests/fuzz/fuzz_support.h"

namespace m3vdb::fuzz {

template <class Checkpoint>
void CheckTensors(const Checkpoint& read) {
  const uint8_t* begin = read.file->data();
  const uint8_t* end = begin + read.file->size();
  unsigned sum = 0;
  for (const auto& [name, t] : read.tensors) {
    if (t.nbytes > 0 && (t.data < begin || t.data + t.nbytes > end)) Fail("tensor outside the file: " + name);
    for (size_t i = 0; i < t.nbytes; ++i) sum += t.data[i];
    const size_t elem = embedder::DTypeSize(t.dtype);
    if (elem == 0) continue;
    size_t n = 1;
    bool overflow = false;
    for (int64_t d : t.shape) overflow |= d < 0 || __builtin_mul_overflow(n, static_cast<size_t>(d), &n);
    size_t bytes = 0;
    overflow |= __builtin_mul_overflow(n, elem, &bytes);
    if (overflow || bytes != t.nbytes) Fail("tensor '" + name + "': shape does not match its bytes");
    if (t.dtype != embedder::DType::kI64) {
      std::vector<float> out(n);
      if (!embedder::ToFloat(t, name, out.data()).ok()) Fail("ToFloat refused a float tensor");
    }
  }
  volatile unsigned sink = sum;
  (void)sink;
}

}  // namespace m3vdb::fuzz
