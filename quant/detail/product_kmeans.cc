#include "quant/detail/product_kmeans.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "common/blas_threads.h"

namespace m3vdb::quant::detail {
namespace {

constexpr size_t kRowBlock = 4096;
constexpr float kSplit = 1.0f / 1024;  // how far apart the two halves of a split cluster start

// The nearest centroid C[k] (ksub x dsub) of every row's sub-vector in subspace s, into codes;
// returns the summed squared error.
double AssignSubspace(const float* x, size_t n, const ProductLayout& layout, size_t s, const float* C, uint8_t* codes,
                      std::vector<float>* dots) {
  const size_t d = layout.d, ds = layout.dsub(), K = layout.ksub;
  std::vector<float> cnorm(K);
  for (size_t k = 0; k < K; ++k) cnorm[k] = SquaredNorm(C + k * ds, ds);
  dots->resize(kRowBlock * K);
  double err = 0;
  for (size_t r0 = 0; r0 < n; r0 += kRowBlock) {
    const size_t nb = std::min(kRowBlock, n - r0);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(nb), static_cast<int>(K),
                static_cast<int>(ds), 1.0f, x + r0 * d + s * ds, static_cast<int>(d), C, static_cast<int>(ds), 0.0f,
                dots->data(), static_cast<int>(K));
    for (size_t i = 0; i < nb; ++i) {
      const float* row = dots->data() + i * K;
      const size_t best = NearestCodeword(row, cnorm.data(), K);
      codes[r0 + i] = static_cast<uint8_t>(best);
      const float xn = SquaredNorm(x + (r0 + i) * d + s * ds, ds);
      err += std::max(0.0f, xn - (2 * row[best] - cnorm[best]));
    }
  }
  return err;
}

// Every empty cluster takes half of the largest one: its centroid, moved apart by kSplit.
void SplitEmpty(float* C, std::vector<size_t>& counts, size_t ds) {
  for (size_t k = 0; k < counts.size(); ++k) {
    if (counts[k] > 0) continue;
    const size_t big = static_cast<size_t>(std::max_element(counts.begin(), counts.end()) - counts.begin());
    for (size_t t = 0; t < ds; ++t) {
      const float sign = t % 2 == 0 ? 1.0f : -1.0f, v = C[big * ds + t];
      C[k * ds + t] = v * (1 + sign * kSplit);
      C[big * ds + t] = v * (1 - sign * kSplit);
    }
    counts[k] = counts[big] / 2;
    counts[big] -= counts[k];
  }
}

}  // namespace

size_t NearestCodeword(const float* dots, const float* cnorm, size_t K) {
  constexpr size_t kLanes = 8;
  float value[kLanes];
  uint32_t index[kLanes] = {};
  std::fill_n(value, kLanes, -std::numeric_limits<float>::infinity());
  const size_t full = K / kLanes * kLanes;
  for (size_t k = 0; k < full; k += kLanes) {
    for (size_t l = 0; l < kLanes; ++l) {
      const float z = 2 * dots[k + l] - cnorm[k + l];
      const bool better = z > value[l];
      value[l] = better ? z : value[l];
      index[l] = better ? static_cast<uint32_t>(k + l) : index[l];
    }
  }
  size_t best = 0;
  float best_z = -std::numeric_limits<float>::infinity();
  for (size_t l = 0; l < kLanes && l < full; ++l)
    if (value[l] > best_z || (value[l] == best_z && index[l] < best)) best_z = value[l], best = index[l];
  for (size_t k = full; k < K; ++k) {
    const float z = 2 * dots[k] - cnorm[k];
    if (z > best_z) best_z = z, best = k;
  }
  return best;
}

double ProductKMeans(const float* x, size_t n, const ProductLayout& layout, int iterations, bool init, uint64_t seed,
                     float* centroids) {
  const size_t d = layout.d, ds = layout.dsub(), K = layout.ksub, m = layout.m;
  SingleThreadedBlas blas;  // the subspaces below call BLAS from every OpenMP thread
  std::vector<double> errors(m, 0.0);
#pragma omp parallel
  {
    std::vector<float> dots;
    std::vector<uint8_t> codes(n);
    std::vector<double> sums(K * ds);
    std::vector<size_t> counts(K);
#pragma omp for schedule(dynamic, 1)
    for (std::ptrdiff_t ss = 0; ss < static_cast<std::ptrdiff_t>(m); ++ss) {
      const auto s = static_cast<size_t>(ss);
      float* C = centroids + s * K * ds;
      if (init) {  // ksub distinct rows (partial Fisher-Yates)
        std::mt19937_64 rng(seed + s);
        std::vector<size_t> rows(n);
        std::iota(rows.begin(), rows.end(), size_t{0});
        for (size_t k = 0; k < K; ++k) {
          std::uniform_int_distribution<size_t> pick(k, n - 1);
          std::swap(rows[k], rows[pick(rng)]);
          std::copy_n(x + rows[k] * d + s * ds, ds, C + k * ds);
        }
      }
      for (int it = 0; it < std::max(iterations, 1); ++it) {
        errors[s] = AssignSubspace(x, n, layout, s, C, codes.data(), &dots);
        if (iterations == 0) break;
        std::fill(sums.begin(), sums.end(), 0.0);
        std::fill(counts.begin(), counts.end(), size_t{0});
        for (size_t i = 0; i < n; ++i) {
          const size_t k = codes[i];
          ++counts[k];
          const float* v = x + i * d + s * ds;
          for (size_t t = 0; t < ds; ++t) sums[k * ds + t] += v[t];
        }
        for (size_t k = 0; k < K; ++k)
          if (counts[k] > 0)
            for (size_t t = 0; t < ds; ++t) C[k * ds + t] = static_cast<float>(sums[k * ds + t] / counts[k]);
        SplitEmpty(C, counts, ds);
      }
    }
  }
  return std::accumulate(errors.begin(), errors.end(), 0.0) / static_cast<double>(n);
}

double ProductReconstruct(const float* x, size_t n, const ProductLayout& layout, const float* centroids, float* out) {
  const size_t d = layout.d, ds = layout.dsub(), K = layout.ksub, m = layout.m;
  SingleThreadedBlas blas;
  std::vector<double> errors(m, 0.0);
#pragma omp parallel
  {
    std::vector<float> dots;
    std::vector<uint8_t> codes(n);
#pragma omp for schedule(dynamic, 1)
    for (std::ptrdiff_t ss = 0; ss < static_cast<std::ptrdiff_t>(m); ++ss) {
      const auto s = static_cast<size_t>(ss);
      const float* C = centroids + s * K * ds;
      errors[s] = AssignSubspace(x, n, layout, s, C, codes.data(), &dots);
      for (size_t i = 0; i < n; ++i) std::copy_n(C + size_t{codes[i]} * ds, ds, out + i * d + s * ds);
    }
  }
  return std::accumulate(errors.begin(), errors.end(), 0.0) / static_cast<double>(n);
}

}  // namespace m3vdb::quant::detail
