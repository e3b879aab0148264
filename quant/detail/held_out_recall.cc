#include "quant/detail/held_out_recall.h"

#include <cblas.h>

#include <algorithm>
#include <numeric>
#include <utility>
#include <vector>

namespace m3vdb::quant::detail {
namespace {

// Scores [rows x cols] of queries `a` against reconstructions `b` under the geometry, up to a
// per-row constant (-||a||^2 is left out for L2: it does not change a row's ranking).
void RankScores(Metric geometry, const float* a, size_t rows, const float* b, size_t cols, size_t d, float* out) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows), static_cast<int>(cols),
              static_cast<int>(d), 1.0f, a, static_cast<int>(d), b, static_cast<int>(d), 0.0f, out,
              static_cast<int>(cols));
  if (geometry != Metric::kL2) return;
  std::vector<float> norms(cols);
  for (size_t j = 0; j < cols; ++j) norms[j] = cblas_sdot(static_cast<int>(d), b + j * d, 1, b + j * d, 1);
  for (size_t i = 0; i < rows; ++i)
    for (size_t j = 0; j < cols; ++j) out[i * cols + j] = 2 * out[i * cols + j] - norms[j];
}

}  // namespace

double HeldOutRecall(const Codebooks& books, const float* xr, size_t n, const float* qr, size_t nq,
                     const int64_t* exclude, const uint32_t* truth, size_t k, size_t nprobe) {
  if (nq == 0 || k == 0) return 0;
  const IvfPqParams& p = books.params;
  const Metric geometry = p.geometry();
  const size_t d = p.dim, L = p.nlist, cs = p.code_size();
  nprobe = std::clamp<size_t>(nprobe, 1, L);

  // The index after training: nearest lists, codes re-encoded.
  const std::vector<float> centroid_norms = books.CentroidNorms();
  std::vector<uint32_t> lists(n);
  std::vector<uint8_t> codes(n * cs);
  constexpr size_t kEncodeBlock = 4096;  // EncodeWithLists' scratch grows with the block
  for (size_t b = 0; b < n; b += kEncodeBlock) {
    const size_t nb = std::min(kEncodeBlock, n - b);
    books.Assign(xr + b * d, nb, lists.data() + b, centroid_norms.data());
    books.EncodeWithLists(xr + b * d, nb, lists.data() + b, codes.data() + b * cs);
  }

  // Each query's probed lists.
  std::vector<float> coarse(nq * L);
  books.CoarseScores(qr, nq, coarse.data(), centroid_norms.data());
  std::vector<uint8_t> probed(nq * L, 0);
  std::vector<uint32_t> order(L);
  for (size_t i = 0; i < nq; ++i) {
    const float* row = coarse.data() + i * L;
    std::iota(order.begin(), order.end(), 0u);
    std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(nprobe), order.end(),
                      [row](uint32_t a, uint32_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
    for (size_t r = 0; r < nprobe; ++r) probed[i * L + order[r]] = 1;
  }

  // Quantized top-k per query (a min-heap of (score, doc)), documents decoded a block at a time.
  using Entry = std::pair<float, uint32_t>;
  std::vector<std::vector<Entry>> heaps(nq);
  constexpr size_t kScoreBlock = 2048;
  std::vector<float> recon(kScoreBlock * d), scores(nq * kScoreBlock);
  for (size_t b = 0; b < n; b += kScoreBlock) {
    const size_t nb = std::min(kScoreBlock, n - b);
    for (size_t j = 0; j < nb; ++j) books.Decode(lists[b + j], codes.data() + (b + j) * cs, recon.data() + j * d);
    RankScores(geometry, qr, nq, recon.data(), nb, d, scores.data());
#pragma omp parallel for schedule(static)
    for (std::ptrdiff_t is = 0; is < static_cast<std::ptrdiff_t>(nq); ++is) {
      const auto i = static_cast<size_t>(is);
      auto& heap = heaps[i];
      const float* row = scores.data() + i * nb;
      for (size_t j = 0; j < nb; ++j) {
        const auto doc = static_cast<uint32_t>(b + j);
        if (!probed[i * L + lists[doc]] || (exclude && exclude[i] == static_cast<int64_t>(doc))) continue;
        const Entry e{row[j], doc};
        if (heap.size() < k) {
          heap.push_back(e);
          std::push_heap(heap.begin(), heap.end(), std::greater<>());
        } else if (e.first > heap.front().first) {
          std::pop_heap(heap.begin(), heap.end(), std::greater<>());
          heap.back() = e;
          std::push_heap(heap.begin(), heap.end(), std::greater<>());
        }
      }
    }
  }
  size_t found = 0;
  for (size_t i = 0; i < nq; ++i) {
    const uint32_t* t = truth + i * k;
    for (const Entry& e : heaps[i]) found += std::find(t, t + k, e.second) != t + k;
  }
  return static_cast<double>(found) / static_cast<double>(nq * k);
}

}  // namespace m3vdb::quant::detail
