#include "quant/detail/distill_step.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/vector_math.h"

namespace m3vdb::quant::detail {
namespace {

// C = A * B^T (or A^T * B^T etc.), row-major, with leading dimensions so that a subspace's
// columns of a c x d matrix can be used in place.
void Gemm(bool trans_a, bool trans_b, size_t m, size_t n, size_t k, float alpha, const float* a, size_t lda,
          const float* b, size_t ldb, float beta, float* c, size_t ldc) {
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), alpha, a, static_cast<int>(lda), b,
              static_cast<int>(ldb), beta, c, static_cast<int>(ldc));
}

float SquaredNorm(const float* x, size_t n) {
  float s = 0;
#pragma omp simd reduction(+ : s)
  for (size_t i = 0; i < n; ++i) s += x[i] * x[i];
  return s;
}

// Scores [b x c] of queries against rows `x` under the metric.
void Scores(Metric metric, const float* q, size_t b, const float* x, size_t c, size_t d, float* out) {
  Gemm(false, true, b, c, d, 1.0f, q, d, x, d, 0.0f, out, c);
  if (metric != Metric::kL2) return;
  std::vector<float> qn(b), xn(c);
  for (size_t i = 0; i < b; ++i) qn[i] = SquaredNorm(q + i * d, d);
  for (size_t j = 0; j < c; ++j) xn[j] = SquaredNorm(x + j * d, d);
  for (size_t i = 0; i < b; ++i)
    for (size_t j = 0; j < c; ++j) out[i * c + j] = 2 * out[i * c + j] - qn[i] - xn[j];
}

// Given dL/dS [b x c] for S = score(q, y), writes dL/dy [c x d] into grad_y (overwritten).
void ScoreBackward(Metric metric, const float* g, const float* q, size_t b, const float* y, size_t c, size_t d,
                   float* grad_y) {
  // IP: dS_ij/dy_j = q_i  -> grad_y = G^T Q.   L2: dS_ij/dy_j = 2(q_i - y_j) -> 2 G^T Q - 2 (colsum G) y.
  const float scale = metric == Metric::kL2 ? 2.0f : 1.0f;
  Gemm(true, false, c, d, b, scale, g, c, q, d, 0.0f, grad_y, d);
  if (metric != Metric::kL2) return;
  for (size_t j = 0; j < c; ++j) {
    float colsum = 0;
    for (size_t i = 0; i < b; ++i) colsum += g[i * c + j];
    cblas_saxpy(static_cast<int>(d), -2.0f * colsum, y + j * d, 1, grad_y + j * d, 1);
  }
}

void Softmax(const float* x, size_t n, float* out) {
  const float mx = *std::max_element(x, x + n);
  float sum = 0;
  for (size_t i = 0; i < n; ++i) sum += out[i] = std::exp(x[i] - mx);
  const float inv = 1.0f / sum;
  for (size_t i = 0; i < n; ++i) out[i] *= inv;
}

// Mean ListNet over rows; writes dL/dS (already including 1/tau and 1/b) into grad.
double ListNetRows(const float* teacher, const float* student, size_t b, size_t c, float tau, float* grad) {
  std::vector<float> t(c), s(c);
  double total = 0;
  for (size_t i = 0; i < b; ++i) {
    for (size_t j = 0; j < c; ++j) {
      t[j] = teacher[i * c + j] / tau;
      s[j] = student[i * c + j] / tau;
    }
    total += ListNet(t.data(), s.data(), c, grad + i * c);
    for (size_t j = 0; j < c; ++j) grad[i * c + j] /= tau * static_cast<float>(b);
  }
  return total / b;
}

// Grows a buffer without initialising it (its contents are always overwritten before use).
float* Buffer(std::vector<float>& v, size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}

}  // namespace

double ListNet(const float* teacher, const float* student, size_t n, float* grad_student) {
  std::vector<float> pt(n), ps(n);
  Softmax(teacher, n, pt.data());
  Softmax(student, n, ps.data());
  // L = -sum_j pt_j log ps_j (log-softmax computed stably); dL/ds_j = ps_j - pt_j.
  const float mx = *std::max_element(student, student + n);
  double lse = 0;
  for (size_t j = 0; j < n; ++j) lse += std::exp(double{student[j]} - mx);
  lse = std::log(lse) + mx;
  double loss = 0;
  for (size_t j = 0; j < n; ++j) {
    loss -= pt[j] * (student[j] - lse);
    grad_student[j] = ps[j] - pt[j];
  }
  return loss;
}

void DistillStep(const Codebooks& books, const StepInput& in, StepOutput* out) {
  StepWorkspace ws;
  DistillStep(books, in, out, &ws);
}

void DistillStep(const Codebooks& books, const StepInput& in, StepOutput* out, StepWorkspace* ws) {
  const IvfPqParams& p = books.params;
  const size_t d = p.dim, M = p.m, K = p.ksub(), ds = p.dsub(), b = in.b, c = in.c, L = p.nlist;
  const float* centroids = books.centroids.data();

  // Residuals to the fixed lists.
  float* resid = Buffer(ws->resid, c * d);
  for (size_t j = 0; j < c; ++j) {
    const float* x = in.docs + j * d;
    const float* cl = centroids + size_t{in.lists[j]} * d;
    for (size_t k = 0; k < d; ++k) resid[j * d + k] = x[k] - cl[k];
  }

  // Forward: hard codes (nearest codeword per subspace) and reconstructions x^ = c_l + C[k].
  ws->code.resize(c * M);
  float* recon = Buffer(ws->recon, c * d);
  float* dots = Buffer(ws->dots, c * K);
  float* cnorm = Buffer(ws->cnorm, M * K);
  for (size_t m = 0; m < M; ++m) {
    const float* C = books.pq.data() + m * K * ds;
    for (size_t k = 0; k < K; ++k) cnorm[m * K + k] = SquaredNorm(C + k * ds, ds);
    Gemm(false, true, c, K, ds, 1.0f, resid + m * ds, d, C, ds, 0.0f, dots, K);
#pragma omp parallel for schedule(static)
    for (std::ptrdiff_t js = 0; js < static_cast<std::ptrdiff_t>(c); ++js) {
      const auto j = static_cast<size_t>(js);
      // argmin ||r - C_k||^2 = argmax 2<r, C_k> - ||C_k||^2
      float* row = dots + j * K;
      const float* cn = cnorm + m * K;
      float best_z = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : best_z)
      for (size_t k = 0; k < K; ++k) {
        row[k] = 2 * row[k] - cn[k];
        best_z = std::max(best_z, row[k]);
      }
      size_t best = 0;
      while (best + 1 < K && row[best] != best_z) ++best;
      ws->code[j * M + m] = static_cast<uint8_t>(best);
      const float* cl = centroids + size_t{in.lists[j]} * d + m * ds;
      for (size_t t = 0; t < ds; ++t) recon[j * d + m * ds + t] = cl[t] + C[best * ds + t];
    }
  }

  // Scores and ListNet losses. The IVF student only depends on a document's list, so it is
  // scored against the nlist centroids and gathered.
  float* teacher = Buffer(ws->teacher, b * c);
  float* s_pq = Buffer(ws->s_pq, b * c);
  float* s_ivf = Buffer(ws->s_ivf, b * c);
  float* g_pq = Buffer(ws->g_pq, b * c);
  float* g_ivf = Buffer(ws->g_ivf, b * c);
  float* coarse = Buffer(ws->coarse, b * L);
  Scores(p.geometry(), in.queries, b, in.docs, c, d, teacher);
  Scores(p.geometry(), in.queries, b, recon, c, d, s_pq);
  Scores(p.geometry(), in.queries, b, centroids, L, d, coarse);
  for (size_t i = 0; i < b; ++i)
    for (size_t j = 0; j < c; ++j) s_ivf[i * c + j] = coarse[i * L + in.lists[j]];
  out->loss_ivf = ListNetRows(teacher, s_ivf, b, c, in.tau, g_ivf);
  out->loss_pq = ListNetRows(teacher, s_pq, b, c, in.tau, g_pq);

  // IVF backward: dL/dS summed per (query, list), then to the centroids.
  std::fill_n(coarse, b * L, 0.0f);
  for (size_t i = 0; i < b; ++i)
    for (size_t j = 0; j < c; ++j) coarse[i * L + in.lists[j]] += g_ivf[i * c + j];
  out->grad_centroids_ivf.resize(books.centroids.size());
  ScoreBackward(p.geometry(), coarse, in.queries, b, centroids, L, d, out->grad_centroids_ivf.data());

  // PQ backward to the reconstructions.
  float* g_recon = Buffer(ws->g_recon, c * d);
  ScoreBackward(p.geometry(), g_pq, in.queries, b, recon, c, d, g_recon);

  // Straight-through backward into the PQ codebooks, per subspace, with g the subspace's part of
  // dL/dx^ and p = softmax_k(-||r - C_k||^2 / tau_code) (recomputed here rather than kept from the
  // forward pass: M x c x K floats would be hundreds of MB):
  //   direct:  dL/dC_k* += g                       (forward uses the hard codeword)
  //   softmax: dL/dp_k = <g, C_k>;  dz_k = p_k (dL/dp_k - sum_i p_i dL/dp_i) / tau_code
  //            z_k = -||r - C_k||^2  =>  dL/dC_k += dz_k * 2 (r - C_k)
  out->grad_pq.assign(books.pq.size(), 0.0f);
  float* dp = Buffer(ws->dp, c * K);
  float* dz_colsum = Buffer(ws->dz_colsum, K);
  float* dzr = Buffer(ws->dzr, K * ds);
  const float inv_tau_code = 1.0f / in.tau_code;
  constexpr size_t kRowBlock = 64;
  const auto blocks = static_cast<std::ptrdiff_t>((c + kRowBlock - 1) / kRowBlock);
  for (size_t m = 0; m < M; ++m) {
    const float* C = books.pq.data() + m * K * ds;
    const float* cn = cnorm + m * K;
    float* G = out->grad_pq.data() + m * K * ds;
    Gemm(false, true, c, K, ds, 1.0f, resid + m * ds, d, C, ds, 0.0f, dots, K);
    Gemm(false, true, c, K, ds, 1.0f, g_recon + m * ds, d, C, ds, 0.0f, dp, K);
    // Rows are independent: z, p = softmax(z) and dz in place in `dots`, a block of rows per task.
#pragma omp parallel for schedule(static)
    for (std::ptrdiff_t block = 0; block < blocks; ++block) {
      const size_t j0 = static_cast<size_t>(block) * kRowBlock, j1 = std::min(c, j0 + kRowBlock);
      for (size_t j = j0; j < j1; ++j) {
        const float rn = SquaredNorm(resid + j * d + m * ds, ds);
        float* row = dots + j * K;
        for (size_t k = 0; k < K; ++k) row[k] = (2 * row[k] - rn - cn[k]) * inv_tau_code;
      }
      SoftmaxRows(dots + j0 * K, j1 - j0, K);
      for (size_t j = j0; j < j1; ++j) {
        float* row = dots + j * K;
        const float* dpj = dp + j * K;
        float mean = 0;
#pragma omp simd reduction(+ : mean)
        for (size_t k = 0; k < K; ++k) mean += row[k] * dpj[k];
        for (size_t k = 0; k < K; ++k) row[k] = row[k] * (dpj[k] - mean) * inv_tau_code;
      }
    }
    std::fill_n(dz_colsum, K, 0.0f);
    for (size_t j = 0; j < c; ++j) {
      const float* row = dots + j * K;
      for (size_t k = 0; k < K; ++k) dz_colsum[k] += row[k];
      const size_t best = ws->code[j * M + m];
      const float* g = g_recon + j * d + m * ds;
      for (size_t t = 0; t < ds; ++t) G[best * ds + t] += g[t];
    }
    // sum_j dz_jk 2 (r_j - C_k) = 2 (dz^T R)_k - 2 (sum_j dz_jk) C_k
    Gemm(true, false, K, ds, c, 1.0f, dots, K, resid + m * ds, d, 0.0f, dzr, ds);
    for (size_t k = 0; k < K; ++k)
      for (size_t t = 0; t < ds; ++t) G[k * ds + t] += 2 * dzr[k * ds + t] - 2 * dz_colsum[k] * C[k * ds + t];
  }
}

}  // namespace m3vdb::quant::detail
