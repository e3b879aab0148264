// A tiny deterministic random source (SplitMix64) whose output is the same on every platform and
// standard library, so that two processes (a test and a helper it spawns) can derive identical
// documents from a seed.
#pragma once

#include <cstdint>

namespace m3vdb::test {

class SeededRandom {
 public:
  explicit SeededRandom(uint64_t seed) : state_(seed) {}

  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n); n > 0.
  uint64_t Below(uint64_t n) { return Next() % n; }
  // Uniform in [lo, hi).
  double Uniform(double lo, double hi) {
    return lo + (hi - lo) * static_cast<double>(Next() >> 11) * (1.0 / 9007199254740992.0);
  }
  // An integer multiple of 1/256 in [-1, 1]: exactly representable in fp16.
  float Half() { return static_cast<float>(static_cast<int>(Below(513)) - 256) / 256.0f; }

 private:
  uint64_t state_;
};

}  // namespace m3vdb::test
