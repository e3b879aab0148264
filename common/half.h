// IEEE-754 binary16 <-> binary32 conversion (round to nearest even), used for stored ColBERT
// vectors. Portable bit manipulation: no F16C requirement, identical results on every CPU.
#pragma once

#include <cstddef>
#include <cstdint>

namespace m3vdb {

uint16_t FloatToHalf(float value);
float HalfToFloat(uint16_t bits);

// Converts n values; `out` has room for n.
void FloatsToHalves(const float* in, size_t n, uint16_t* out);
void HalvesToFloats(const uint16_t* in, size_t n, float* out);

}  // namespace m3vdb
