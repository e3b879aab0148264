// The IVF-PQ code scan (index/detail/pq_scan) against the alternatives it was chosen over, on
// one list's worth of codes (the 60,000 Fashion-MNIST vectors over 256 lists, 16 lists probed):
//   - OneCode:     one code at a time (the straightforward loop),
//   - Avx2Gather:  eight codes per AVX2 gather of their bytes and of the table entries (the
//                  kernel m3vdb used before),
//   - RowGather:   one code per AVX2 gather of eight of its table entries.
// Each checks its sums against the shipped kernel before timing. Items = codes scored.
#include <benchmark/benchmark.h>
#include <immintrin.h>

#include <cmath>
#include <random>
#include <vector>

#include "index/detail/pq_scan.h"

namespace {

using Kernel = void (*)(const uint8_t*, size_t, size_t, const float*, float, float*);

void OneCode(const uint8_t* codes, size_t n, size_t m, const float* lut, float base, float* out) {
  for (size_t i = 0; i < n; ++i) {
    float s = base;
    for (size_t j = 0; j < m; ++j) s += lut[j * 256 + codes[i * m + j]];
    out[i] = s;
  }
}

__attribute__((target("avx2"))) void Avx2Gather(const uint8_t* codes, size_t n, size_t m, const float* lut,
                                                float base, float* out) {
  const __m256i rows = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(static_cast<int>(m)));
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 acc = _mm256_set1_ps(base);
    for (size_t j = 0; j < m; ++j) {
      const __m256i bytes = _mm256_i32gather_epi32(reinterpret_cast<const int*>(codes + i * m),
                                                   _mm256_add_epi32(rows, _mm256_set1_epi32(static_cast<int>(j))), 1);
      const __m256i idx = _mm256_add_epi32(_mm256_and_si256(bytes, _mm256_set1_epi32(0xff)),
                                           _mm256_set1_epi32(static_cast<int>(j * 256)));
      acc = _mm256_add_ps(acc, _mm256_i32gather_ps(lut, idx, 4));
    }
    _mm256_storeu_ps(out + i, acc);
  }
  OneCode(codes + i * m, n - i, m, lut, base, out + i);
}

__attribute__((target("avx2"))) void RowGather(const uint8_t* codes, size_t n, size_t m, const float* lut, float base,
                                               float* out) {
  const __m256i offsets = _mm256_setr_epi32(0, 256, 512, 768, 1024, 1280, 1536, 1792);
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* c = codes + i * m;
    __m256 acc = _mm256_setzero_ps();
    size_t j = 0;
    for (; j + 8 <= m; j += 8) {
      const __m256i idx =
          _mm256_add_epi32(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(c + j))), offsets);
      acc = _mm256_add_ps(acc, _mm256_i32gather_ps(lut + j * 256, idx, 4));
    }
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, acc);
    float s = base;
    for (float v : lanes) s += v;
    for (; j < m; ++j) s += lut[j * 256 + c[j]];
    out[i] = s;
  }
}

template <Kernel kKernel>
void BM_Scan(benchmark::State& state) {
  const size_t m = static_cast<size_t>(state.range(0)), n = 16 * 60000 / 256;
  std::mt19937 rng(7);
  std::vector<uint8_t> codes(n * m + 8);  // slack: the gather variants read a few bytes past the end
  for (auto& c : codes) c = static_cast<uint8_t>(rng());
  std::vector<float> lut(m * 256), out(n), want(n);
  std::uniform_real_distribution<float> u(0, 1);
  for (float& v : lut) v = u(rng);
  m3vdb::index::detail::ScanCodes(codes.data(), n, m, lut.data(), 0.5f, want.data());
  kKernel(codes.data(), n, m, lut.data(), 0.5f, out.data());
  for (size_t i = 0; i < n; ++i)
    if (std::abs(out[i] - want[i]) > 1e-3f) return state.SkipWithError("sums differ from the shipped kernel");
  if ((kKernel == Avx2Gather || kKernel == RowGather) && !__builtin_cpu_supports("avx2"))
    return state.SkipWithError("no AVX2");
  for (auto _ : state) {
    kKernel(codes.data(), n, m, lut.data(), 0.5f, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * n));
}

BENCHMARK(BM_Scan<m3vdb::index::detail::ScanCodes>)->Name("Shipped")->Arg(16)->Arg(28)->Arg(56);
BENCHMARK(BM_Scan<OneCode>)->Name("OneCode")->Arg(16)->Arg(28)->Arg(56);
BENCHMARK(BM_Scan<Avx2Gather>)->Name("Avx2Gather")->Arg(16)->Arg(28)->Arg(56);
BENCHMARK(BM_Scan<RowGather>)->Name("RowGather")->Arg(16)->Arg(28)->Arg(56);

}  // namespace

BENCHMARK_MAIN();
