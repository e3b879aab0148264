#include <cblas.h>
#include <emmintrin.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <thread>

#include "index/dense_index.h"
#include "index/detail/dot_kernel.h"
#include "index/detail/int8_kernel.h"

namespace m3vdb::index {
namespace {

constexpr size_t kQueryBlock = 256;
constexpr size_t kDocBlock = 4096;
// Small batches: stored vectors per DotBlock call (its scores stay in L1/L2), and the fewest
// stored vectors worth a thread of their own.
constexpr size_t kSmallDocBlock = 512;
// int8-first search: stored vectors per Int8DotBlock call (a multiple of detail::kInt8Lanes; its
// sums, 8 x 4 bytes each, stay in L2).
constexpr size_t kQuantDocBlock = 2048;
constexpr size_t kMinDocsPerThread = 16384;

// int8-first search (SearchQuantizedFirst): the first pass may rescore in float32 at most this
// fraction of the documents (summed over the queries), else the float32 pass is taken. Past it
// the rescoring (random reads of whole vectors) would cost more than what the int8 pass saved.
constexpr size_t kMaxRescoreFraction = 16;  // 1/16
// Larger than any error bound the int8 path accepts (keeps 2*ip and the bounds finite), and
// larger than any approximate inner product it accepts.
constexpr float kMaxBound = 0x1p100f;
constexpr float kMaxApprox = 0x1p120f;

float SquaredNorm(const float* v, size_t dim) {
  return cblas_sdot(static_cast<int>(dim), v, 1, v, 1);
}

// The L2 score from an inner product, the one expression every path uses. It is nondecreasing in
// `ip` for fixed norms (each rounded float operation is monotone), and 2*ip is exact below
// overflow, so a contracted fma(2, ip, -norm) gives the same value as 2*ip - norm.
inline float L2Score(float ip, float norm, float query_norm) { return 2 * ip - norm - query_norm; }

thread_local size_t t_last_rescored = 0;

// |x| as bits: ordered like |x| for finite and infinite x, and above infinity's bits for NaN,
// so `AbsBits(x) >= AbsBits(limit)` means "not below limit" (integer compares vectorize).
inline uint32_t AbsBits(float x) { return std::bit_cast<uint32_t>(x) & 0x7fffffffu; }
const uint32_t kMaxBoundBits = AbsBits(kMaxBound);
const uint32_t kMaxApproxBits = AbsBits(kMaxApprox);

// Step 4-5 of the proof below for one query and nd documents: the score interval [low, high] of
// each document from its exact integer sum; nonzero when some bound or approximation is out of
// range (the float32 pass must answer then). Branch-free, so that it vectorizes (built for
// AVX-512 too, chosen at run time; FMA contraction only removes roundings, which the proof
// allows).
// (Not under the sanitizers: their instrumented ifunc resolver would run before their runtime
// is set up, as common/detail/vector_clones.h notes.)
#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define M3VDB_INTERVAL_CLONES target_clones("avx512f", "default"),
#else
#define M3VDB_INTERVAL_CLONES
#endif
__attribute__((M3VDB_INTERVAL_CLONES optimize("vect-cost-model=dynamic"))) int Intervals(
    bool l2, const int32_t* __restrict sum, const float* __restrict scale, const float* __restrict err,
    const float* __restrict norm, const float* __restrict sq_norm, float query_scale, detail::Int8QueryTerms tq,
    float query_norm, size_t nd, float* __restrict low, float* __restrict high) {
  uint32_t bad = 0;
  if (l2) {
    for (size_t r = 0; r < nd; ++r) {
      const float ip = detail::Int8Approx(sum[r], query_scale * scale[r]);
      const float bound = detail::Int8Bound(tq, err[r], norm[r]);
      bad |= (AbsBits(bound) >= kMaxBoundBits) | (AbsBits(ip) >= kMaxApproxBits);
      low[r] = L2Score(ip - bound, sq_norm[r], query_norm);
      high[r] = L2Score(ip + bound, sq_norm[r], query_norm);
    }
  } else {
    for (size_t r = 0; r < nd; ++r) {
      const float ip = detail::Int8Approx(sum[r], query_scale * scale[r]);
      const float bound = detail::Int8Bound(tq, err[r], norm[r]);
      bad |= (AbsBits(bound) >= kMaxBoundBits) | (AbsBits(ip) >= kMaxApproxBits);
      low[r] = ip - bound;
      high[r] = ip + bound;
    }
  }
  return bad;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Why int8-first search returns exactly what the float32 pass returns.
//
// Notation: q a query, x a stored vector (float32), both quantized by detail::QuantizeInt8 to a
// float scale and int8 elements (padding 0): q^ = s_q q8, x^ = s_x x8 (real vectors), e = x - x^,
// f = q - q^, n = padded_dim + 128, u = 2^-24, gamma = n u / (1 - n u) (Int8Gamma; n > 128, so
// gamma > 128 u), U = 2 n 2^-126 (Float32PassUnderflow), V = 2^-126 (1.0001 * 127^2 *
// padded_dim + 1) (Int8ApproxUnderflow). ip_f is the inner product the float32 pass computes for
// (q, x) (detail::DotBlock: the same value whichever block the pair is in), ip_a the one the int8
// pass computes, and s(ip) the score from an inner product (ip itself, or L2Score(ip, ||x||^2 as
// stored, ||q||^2 as computed for the query)). Nothing below depends on how q8, x8 and the
// scales were chosen, only on the norms of the errors e, f, which are measured.
//
// 1. Float32 accumulation of the products of m <= n terms in any order (any blocking, FMA or
//    not, any reduction tree) is within gamma * sum|a_i b_i| of the exact sum when nothing
//    underflows (Higham, Accuracy and Stability of Numerical Algorithms, 3.1); each of the at
//    most 2n operations can lose less than 2^-126 more by underflow or flush-to-zero. With
//    Cauchy-Schwarz: |ip_f - <q,x>| <= gamma ||q|| ||x|| + U. Should the float32 pass run with
//    denormals-are-zero, a subnormal x_i or q_i read as 0 moves ip_f by less than
//    2^-126 (||q||_1 + ||x||_1) <= 2^-126 (||q||_1 + sqrt(n) ||x||).
// 2. The int8 kernel (detail::Int8DotBlock, every instruction set) gives S = <q8, x8> exactly:
//    the kernels sum products of the stored bytes x8 + 128 (<= 255) and q8 and subtract
//    128 sum(q8); every value involved is below 255 * 127 * padded_dim < 2^31 (padded_dim <=
//    2^16), and int32 wrap-around arithmetic is exact for a result in range. Then ip_a =
//    detail::Int8Approx(S, t) = fl(fl(S) * t) with t = fl(s_q s_x). fl(S) = S (1 + d2) (|d2| <= u,
//    an integer does not underflow); t = s_q s_x (1 + d1) + h1, the value the next product uses
//    (|d1| <= u, |h1| < 2^-126: underflow, flush-to-zero, or a subnormal t read as 0); ip_a =
//    t fl(S) (1 + d3) + h3 likewise (d3 = h3 = 0 should the compiler fuse this product into the
//    subtraction of step 4: a single rounding there, which step 4 already counts). So
//    ip_a - <q^,x^> = s_q s_x S ((1+d1)(1+d2)(1+d3) - 1) + h1 fl(S) (1+d3) + h3, and as
//    |s_q s_x S| = |<q^,x^>| <= ||q^|| ||x^|| and |fl(S)| (1+d3) <= 1.0001 * 127^2 padded_dim:
//    |ip_a - <q^,x^>| <= 3.0001 u ||q^|| ||x^|| + V <= gamma ||q^|| ||x^|| + V.
// 3. <q,x> - <q^,x^> = <f, x> + <q^, e>, so |<q^,x^> - <q,x>| <= ||q^|| ||e|| + ||f|| ||x||.
//    Together: |ip_a - ip_f| <= B = c * a + d * b + A, with per document a = ||e|| + gamma ||x^||
//    and b = ||x|| (err_term_, norm_term_, computed in double at Add time and rounded up), and
//    per query c = ||q^||, d = ||f|| + gamma ||q|| + sqrt(n) 2^-126, A = U + V + 2^-126 ||q||_1
//    (rounded up; detail::Int8DocTermsOf / Int8QueryTermsOf).
// 4. The int8 pass computes B' = (1 + 2^-5) (c*a + d*b + A) in float32 (detail::Int8Bound; the
//    constant is exact): at most five roundings of nonnegative terms (fewer if contracted), so
//    B' >= (1 + 2^-5) (1 - u)^5 B >= 1.0312 B. It then takes lo = fl(ip_a - B') and hi =
//    fl(ip_a + B'). Each rounds by at most u (|ip_a| + B'); |ip_a| <= (1 + 4u) ||q^|| ||x^|| + V
//    and B >= c * a + A >= gamma ||q^|| ||x^|| + V >= 128 u ||q^|| ||x^|| + V, so u |ip_a| <=
//    B / 127, that rounding is below B / 127 + u B' < 0.0081 B, and lo <= ip_a - B <= ip_f <=
//    ip_a + B <= hi. (The same slack covers
//    the (1 + gamma) growth of the underflow terms through later additions.) The pass is only
//    used when every B' < 2^100 and every |ip_a| < 2^120, which keeps every quantity finite.
// 5. s is nondecreasing, so s(lo) <= s(ip_f) <= s(hi): the score the float32 pass gives every
//    document lies in [low, high] = [s(lo), s(hi)].
// 6. Per query let T be the k-th largest `low`. A document with high < T has a float32 score
//    below that of k other documents (each >= its low >= T), so it is not in the float32 top-k,
//    whatever the tie-breaking. (Split over threads, each range keeps its own k largest lows,
//    and drops early only documents whose high is below its range's current k-th largest low,
//    which is at most T.) The other documents (the candidates) are rescored with
//    detail::DotBlock and L2Score as in the float32 pass (the same float32 scores), in order of
//    decreasing high; once k are scored, a candidate whose high is below the k-th best of those
//    scores, and every candidate after it (high no larger), has a float32 score below k scored
//    documents' and is not in the top-k either, so the rescoring stops there. The top-k of the
//    scored documents (ties to the smaller id, TopK) is the float32 pass's top-k: the same ids
//    and the same scores.
// ---------------------------------------------------------------------------------------------

FlatDenseIndex::FlatDenseIndex(uint32_t dim, Metric metric)
    : dim_(dim),
      metric_(metric),
      padded_dim_(detail::Int8PaddedDim(dim)) {}

size_t FlatDenseIndex::memory_bytes() const {
  return data_.capacity() * sizeof(float) + norms_.capacity() * sizeof(float) +
         ids_.capacity() * sizeof(uint64_t) + slot_of_.size() * (sizeof(uint64_t) + sizeof(uint32_t) + 16) +
         codes_.capacity() * sizeof(uint8_t) + scale_.capacity() * sizeof(float) +
         err_term_.capacity() * sizeof(float) + norm_term_.capacity() * sizeof(float);
}

size_t FlatDenseIndex::last_rescored() { return t_last_rescored; }

void FlatDenseIndex::SetQuantized(size_t slot) {
  const float* x = data_.data() + slot * dim_;
  thread_local std::vector<int8_t> x8;
  x8.resize(padded_dim_);
  scale_[slot] = detail::QuantizeInt8(x, dim_, padded_dim_, x8.data());
  detail::StoreInt8Row(x8.data(), slot, padded_dim_, codes_.data());
  const detail::Int8DocTerms t = detail::Int8DocTermsOf(x, x8.data(), scale_[slot], dim_, padded_dim_);
  const bool was_unbounded = !std::isfinite(err_term_[slot]) || !std::isfinite(norm_term_[slot]);
  err_term_[slot] = t.err;
  norm_term_[slot] = std::isfinite(norms_[slot]) ? t.norm : std::numeric_limits<float>::infinity();
  const bool unbounded = !std::isfinite(err_term_[slot]) || !std::isfinite(norm_term_[slot]);
  unbounded_ += unbounded;
  unbounded_ -= was_unbounded;
}

void FlatDenseIndex::Reserve(size_t n) {
  ids_.reserve(n);
  norms_.reserve(n);
  data_.reserve(n * dim_);
  codes_.reserve((n + detail::kInt8Lanes - 1) / detail::kInt8Lanes * detail::Int8BlockBytes(padded_dim_));
  scale_.reserve(n);
  err_term_.reserve(n);
  norm_term_.reserve(n);
  slot_of_.reserve(n);
}

void FlatDenseIndex::Add(uint64_t id, std::span<const float> vector) {
  auto it = slot_of_.find(id);
  size_t slot;
  if (it != slot_of_.end()) {
    slot = it->second;
  } else {
    slot = ids_.size();
    ids_.push_back(id);
    norms_.push_back(0);
    data_.resize(data_.size() + dim_);
    if (slot % detail::kInt8Lanes == 0) codes_.resize(codes_.size() + detail::Int8BlockBytes(padded_dim_), 128);
    scale_.push_back(0);
    err_term_.push_back(0);
    norm_term_.push_back(0);
    slot_of_.emplace(id, static_cast<uint32_t>(slot));
  }
  std::memcpy(data_.data() + slot * dim_, vector.data(), dim_ * sizeof(float));
  norms_[slot] = SquaredNorm(vector.data(), dim_);
  SetQuantized(slot);
}

bool FlatDenseIndex::Remove(uint64_t id) {
  auto it = slot_of_.find(id);
  if (it == slot_of_.end()) return false;
  const size_t slot = it->second;
  const size_t last = ids_.size() - 1;
  slot_of_.erase(it);
  unbounded_ -= !std::isfinite(err_term_[slot]) || !std::isfinite(norm_term_[slot]);
  if (slot != last) {
    std::memcpy(data_.data() + slot * dim_, data_.data() + last * dim_, dim_ * sizeof(float));
    std::vector<int8_t> x8(padded_dim_);
    detail::LoadInt8Row(codes_.data(), last, padded_dim_, x8.data());
    detail::StoreInt8Row(x8.data(), slot, padded_dim_, codes_.data());
    scale_[slot] = scale_[last];
    norms_[slot] = norms_[last];
    err_term_[slot] = err_term_[last];
    norm_term_[slot] = norm_term_[last];
    ids_[slot] = ids_[last];
    slot_of_[ids_[slot]] = static_cast<uint32_t>(slot);
  }
  ids_.pop_back();
  norms_.pop_back();
  scale_.pop_back();
  err_term_.pop_back();
  norm_term_.pop_back();
  data_.resize(last * dim_);
  detail::ClearInt8Row(last, padded_dim_, codes_.data());
  if (last % detail::kInt8Lanes == 0) codes_.resize(codes_.size() - detail::Int8BlockBytes(padded_dim_));
  return true;
}

std::span<const float> FlatDenseIndex::Vector(uint64_t id) const {
  auto it = slot_of_.find(id);
  if (it == slot_of_.end()) return {};
  return {data_.data() + size_t{it->second} * dim_, dim_};
}

bool FlatDenseIndex::Score(std::span<const float> query, uint64_t id, float* score) const {
  std::optional<float> s;
  Score(query, std::span<const uint64_t>(&id, 1), &s);
  if (s) *score = *s;
  return s.has_value();
}

void FlatDenseIndex::Score(std::span<const float> query, std::span<const uint64_t> ids,
                           std::optional<float>* out) const {
  const float qn = metric_ == Metric::kL2 ? SquaredNorm(query.data(), dim_) : 0.0f;
  for (size_t i = 0; i < ids.size(); ++i) {
    auto it = slot_of_.find(ids[i]);
    if (it == slot_of_.end()) {
      out[i].reset();
      continue;
    }
    const float ip = cblas_sdot(static_cast<int>(dim_), query.data(), 1, data_.data() + size_t{it->second} * dim_, 1);
    out[i] = metric_ == Metric::kInnerProduct ? ip : L2Score(ip, norms_[it->second], qn);
  }
}

// Pushes one block of scores (`ips` holds <q, d> for queries [0, nq) x docs [d0, d0+nd), row
// q at ips + q*nd) into the selectors.
void FlatDenseIndex::PushBlock(const float* ips, size_t nq, size_t d0, size_t nd, const float* query_norms,
                               TopK* tops) const {
  for (size_t qi = 0; qi < nq; ++qi) {
    const float* row = ips + qi * nd;
    TopK& top = tops[qi];
    if (metric_ == Metric::kInnerProduct) {
      for (size_t j = 0; j < nd; ++j)
        if (row[j] >= top.threshold()) top.Push(ids_[d0 + j], row[j]);
    } else {
      const float qn = query_norms[qi];
      for (size_t j = 0; j < nd; ++j) {
        const float s = L2Score(row[j], norms_[d0 + j], qn);
        if (s >= top.threshold()) top.Push(ids_[d0 + j], s);
      }
    }
  }
}

std::vector<std::vector<ScoredId>> FlatDenseIndex::Search(std::span<const float> queries,
                                                          size_t num_queries, size_t k) const {
  std::vector<std::vector<ScoredId>> out(num_queries);
  const size_t n = ids_.size();
  if (n == 0 || k == 0) return out;
  std::vector<float> query_norms(num_queries, 0.0f);
  if (metric_ == Metric::kL2)
    for (size_t q = 0; q < num_queries; ++q) query_norms[q] = SquaredNorm(queries.data() + q * dim_, dim_);
  // int8 first, in groups of up to kDotGroup queries, whatever the batch size: one group of 8
  // costs 0.6-0.7 ms of CPU per query on Fashion-MNIST against 1.26 ms in the float32 GEMM
  // pass below at a batch of 1,000 (bench/dense_bench, docs/benchmarks.md). When the first group
  // finds the int8 pass not worth it (too many documents to rescore), the rest takes the float32
  // pass.
  size_t done = 0;
  t_last_rescored = 0;
  if (small_batch_path_ != SmallBatchPath::kFloat32) {
    size_t rescored = 0;
    std::vector<std::vector<ScoredId>> group;
    for (; done < num_queries; done += detail::kDotGroup) {
      const size_t nq = std::min(detail::kDotGroup, num_queries - done);
      group.assign(nq, {});
      if (!SearchQuantizedFirst(queries.data() + done * dim_, nq, k, query_norms.data() + done,
                                small_batch_path_ == SmallBatchPath::kQuantizedFirst, &group))
        break;
      rescored += t_last_rescored;
      std::move(group.begin(), group.end(), out.begin() + static_cast<std::ptrdiff_t>(done));
    }
    t_last_rescored = rescored;
    if (done >= num_queries) return out;
  }
  const size_t rest = num_queries - done;
  if (rest <= detail::kDotGroup) {
    std::vector<std::vector<ScoredId>> group(rest);
    SearchSmallBatch(queries.data() + done * dim_, rest, k, query_norms.data() + done, &group);
    std::move(group.begin(), group.end(), out.begin() + static_cast<std::ptrdiff_t>(done));
    return out;
  }

  std::vector<float> block(std::min(kQueryBlock, num_queries) * std::min(kDocBlock, n));
  for (size_t q0 = done; q0 < num_queries; q0 += kQueryBlock) {
    const size_t nq = std::min(kQueryBlock, num_queries - q0);
    std::vector<TopK> tops(nq, TopK(k));
    for (size_t d0 = 0; d0 < n; d0 += kDocBlock) {
      const size_t nd = std::min(kDocBlock, n - d0);
      // block[nq x nd] = Q[q0:q0+nq] * D[d0:d0+nd]^T
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(nq), static_cast<int>(nd),
                  static_cast<int>(dim_), 1.0f, queries.data() + q0 * dim_, static_cast<int>(dim_),
                  data_.data() + d0 * dim_, static_cast<int>(dim_), 0.0f, block.data(), static_cast<int>(nd));
      PushBlock(block.data(), nq, d0, nd, query_norms.data() + q0, tops.data());
    }
    for (size_t qi = 0; qi < nq; ++qi) out[q0 + qi] = tops[qi].Take();
  }
  return out;
}

// A few queries: one pass over the stored vectors computes every query's scores (DotBlock),
// split into contiguous ranges over as many threads as BLAS may use; each range keeps its own
// selectors, merged at the end. The result is the same top-k as one pass (ties go to the
// smaller id either way).
size_t FlatDenseIndex::ScanThreads() const {
  return std::clamp<size_t>(ids_.size() / kMinDocsPerThread, 1, std::max(1, openblas_get_num_threads()));
}

void FlatDenseIndex::SearchSmallBatch(const float* queries, size_t nq, size_t k, const float* query_norms,
                                      std::vector<std::vector<ScoredId>>* out) const {
  const size_t n = ids_.size();
  const size_t threads = ScanThreads();
  std::vector<std::vector<TopK>> tops(threads, std::vector<TopK>(nq, TopK(k)));
  auto scan = [&](size_t part) {
    const size_t begin = n * part / threads, end = n * (part + 1) / threads;
    std::vector<float> ips(nq * kSmallDocBlock);
    for (size_t d0 = begin; d0 < end; d0 += kSmallDocBlock) {
      const size_t nd = std::min(kSmallDocBlock, end - d0);
      detail::DotBlock(data_.data() + d0 * dim_, nd, dim_, queries, nq, ips.data());
      PushBlock(ips.data(), nq, d0, nd, query_norms, tops[part].data());
    }
  };
  std::vector<std::thread> helpers;
  for (size_t part = 1; part < threads; ++part) helpers.emplace_back(scan, part);
  scan(0);
  for (std::thread& t : helpers) t.join();
  for (size_t qi = 0; qi < nq; ++qi) {
    TopK merged(k);
    for (size_t part = 0; part < threads; ++part)
      for (const ScoredId& s : tops[part][qi].Take()) merged.Push(s.id, s.score);
    (*out)[qi] = merged.Take();
  }
}

// See the proof above the constructor. Pass 1 (threads over document ranges, like
// SearchSmallBatch): int8 inner products, each document's score interval [low, high], the k
// largest `low` of the range per query, and the (slot, high) of the documents whose high
// reaches the range's current k-th largest low (the final T, over all ranges, is at least
// that, so the others can never be candidates). Then the candidates (high >= T) and their
// float32 rescoring.
bool FlatDenseIndex::SearchQuantizedFirst(const float* queries, size_t nq, size_t k, const float* query_norms,
                                          bool force, std::vector<std::vector<ScoredId>>* out) const {
  const size_t n = ids_.size();
  const size_t pd = padded_dim_;
  if (unbounded_ > 0 || pd > detail::kInt8MaxPaddedDim) return false;
  if (!force && k * kMaxRescoreFraction > n) return false;  // would rescore more than the fraction anyway

  thread_local std::vector<int8_t> q8;
  q8.resize(nq * pd);
  detail::Int8QueryTerms terms[detail::kDotGroup];
  float qscale[detail::kDotGroup];
  for (size_t q = 0; q < nq; ++q) {
    qscale[q] = detail::QuantizeInt8(queries + q * dim_, dim_, pd, q8.data() + q * pd);
    terms[q] = detail::Int8QueryTermsOf(queries + q * dim_, q8.data() + q * pd, qscale[q], dim_, pd);
    if (!std::isfinite(terms[q].c) || !std::isfinite(terms[q].d) || !std::isfinite(terms[q].a)) return false;
  }

  const int8_t* qcodes = q8.data();  // thread_local: the helper threads must not name `q8`
  const size_t threads = ScanThreads();
  // lows[part][q]: min-heap of the k largest lows of that part's documents; kept[part][q]: the
  // (slot, high) that may still be candidates.
  std::vector<std::vector<std::vector<float>>> lows(threads, std::vector<std::vector<float>>(nq));
  std::vector<std::vector<std::vector<std::pair<uint32_t, float>>>> kept(
      threads, std::vector<std::vector<std::pair<uint32_t, float>>>(nq));
  std::vector<char> bad(threads, 0);
  const bool l2 = metric_ == Metric::kL2;
  // Ranges start at whole blocks of the int8 copy.
  auto block_start = [&](size_t part) {
    return part == threads ? n : n * part / threads / detail::kInt8Lanes * detail::kInt8Lanes;
  };
  const size_t block_bytes = detail::Int8BlockBytes(pd);
  auto scan = [&](size_t part) {
    const size_t begin = block_start(part), end = block_start(part + 1);
    std::vector<int32_t> sums(nq * kQuantDocBlock);
    std::vector<float> low(kQuantDocBlock), hi(kQuantDocBlock);
    bool overflow = false;
    for (size_t d0 = begin; d0 < end; d0 += kQuantDocBlock) {
      const size_t nd = std::min(kQuantDocBlock, end - d0);
      detail::Int8DotBlock(codes_.data() + d0 / detail::kInt8Lanes * block_bytes,
                           (nd + detail::kInt8Lanes - 1) / detail::kInt8Lanes, pd, qcodes, nq, sums.data(),
                           kQuantDocBlock);
      const float* sc = scale_.data() + d0;
      const float* at = err_term_.data() + d0;
      const float* bt = norm_term_.data() + d0;
      const float* nt = norms_.data() + d0;
      for (size_t q = 0; q < nq; ++q) {
        const int32_t* sum = sums.data() + q * kQuantDocBlock;
        const detail::Int8QueryTerms tq = terms[q];
        const float qn = query_norms[q], sq = qscale[q];
        overflow |= Intervals(l2, sum, sc, at, bt, nt, sq, tq, qn, nd, low.data(), hi.data()) != 0;
        // The k largest lows (a min-heap), and the documents whose high reaches the current k-th
        // largest low (the `t` of this range so far, at most the final T).
        std::vector<float>& heap = lows[part][q];
        std::vector<std::pair<uint32_t, float>>& keep = kept[part][q];
        size_t r = 0;
        for (; r < nd && heap.size() < k; ++r) {
          heap.push_back(low[r]);
          std::push_heap(heap.begin(), heap.end(), std::greater<>());
          keep.emplace_back(static_cast<uint32_t>(d0 + r), hi[r]);
        }
        float t = heap.empty() ? 0.0f : heap.front();
        while (r < nd) {
          // Most runs of 16 documents have every high below t (and low <= high): skip them.
          if (r + 16 <= nd) {
            const __m128 tv = _mm_set1_ps(t);
            const float* h = hi.data() + r;
            const __m128 any =
                _mm_or_ps(_mm_or_ps(_mm_cmpge_ps(_mm_loadu_ps(h), tv), _mm_cmpge_ps(_mm_loadu_ps(h + 4), tv)),
                          _mm_or_ps(_mm_cmpge_ps(_mm_loadu_ps(h + 8), tv), _mm_cmpge_ps(_mm_loadu_ps(h + 12), tv)));
            if (_mm_movemask_ps(any) == 0) {
              r += 16;
              continue;
            }
          }
          for (const size_t stop = std::min(r + 16, nd); r < stop; ++r) {
            if (low[r] > t) {
              std::pop_heap(heap.begin(), heap.end(), std::greater<>());
              heap.back() = low[r];
              std::push_heap(heap.begin(), heap.end(), std::greater<>());
              t = heap.front();
            }
            if (hi[r] >= t) keep.emplace_back(static_cast<uint32_t>(d0 + r), hi[r]);
          }
        }
      }
    }
    bad[part] = overflow;
  };
  std::vector<std::thread> helpers;
  for (size_t part = 1; part < threads; ++part) helpers.emplace_back(scan, part);
  scan(0);
  for (std::thread& t : helpers) t.join();
  if (std::find(bad.begin(), bad.end(), 1) != bad.end()) return false;

  // Candidates per query: (high, slot) of the documents whose high reaches the k-th largest low.
  std::vector<std::vector<std::pair<float, uint32_t>>> candidates(nq);
  size_t total = 0;
  for (size_t q = 0; q < nq; ++q) {
    std::vector<float> all;
    for (size_t part = 0; part < threads; ++part) all.insert(all.end(), lows[part][q].begin(), lows[part][q].end());
    float t = -std::numeric_limits<float>::infinity();
    if (all.size() >= k) {
      std::nth_element(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(k - 1), all.end(), std::greater<>());
      t = all[k - 1];
    }
    std::vector<std::pair<float, uint32_t>>& cand = candidates[q];
    for (size_t part = 0; part < threads; ++part)
      for (const auto& [slot, high] : kept[part][q])
        if (high >= t) cand.emplace_back(high, slot);
    total += cand.size();
    if (!force && total * kMaxRescoreFraction > nq * n) return false;
  }

  // Float32 rescoring, the same arithmetic as the float32 pass, in order of decreasing high,
  // stopping at the first candidate whose high is below the k-th best float32 score so far (step
  // 6 of the proof). The rows are scattered: the next candidate's row is prefetched while the
  // current one is scored.
  const size_t row_bytes = dim_ * sizeof(float);
  size_t rescored = 0;
  for (size_t q = 0; q < nq; ++q) {
    TopK top(k);
    const float* qv = queries + q * dim_;
    std::vector<std::pair<float, uint32_t>>& cand = candidates[q];
    std::sort(cand.begin(), cand.end(), std::greater<>());
    for (size_t i = 0; i < cand.size(); ++i) {
      if (cand[i].first < top.threshold()) break;
      if (i + 1 < cand.size()) {
        const char* next = reinterpret_cast<const char*>(data_.data() + size_t{cand[i + 1].second} * dim_);
        for (size_t b = 0; b < row_bytes; b += 64) __builtin_prefetch(next + b);
      }
      const uint32_t slot = cand[i].second;
      float ip;
      detail::DotBlock(data_.data() + size_t{slot} * dim_, 1, dim_, qv, 1, &ip);
      top.Push(ids_[slot], l2 ? L2Score(ip, norms_[slot], query_norms[q]) : ip);
      ++rescored;
    }
    (*out)[q] = top.Take();
  }
  t_last_rescored = rescored;
  return true;
}

}  // namespace m3vdb::index
