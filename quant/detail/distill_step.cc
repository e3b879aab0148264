#include "quant/detail/distill_step.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace m3vdb::quant::detail {
namespace {

void Gemm(bool trans_b, int m, int n, int k, const float* a, int lda, const float* b, int ldb, float* c, int ldc,
          float beta = 0.0f, bool trans_a = false) {
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n, k, 1.0f,
              a, lda, b, ldb, beta, c, ldc);
}

// Scores [b x c] of queries against rows `x` under the metric, and per-query row softmax inputs.
void Scores(Metric metric, const float* q, size_t b, const float* x, size_t c, size_t d, float* out) {
  Gemm(true, static_cast<int>(b), static_cast<int>(c), static_cast<int>(d), q, static_cast<int>(d), x,
       static_cast<int>(d), out, static_cast<int>(c));
  if (metric != Metric::kL2) return;
  std::vector<float> qn(b), xn(c);
  for (size_t i = 0; i < b; ++i) qn[i] = cblas_sdot(static_cast<int>(d), q + i * d, 1, q + i * d, 1);
  for (size_t j = 0; j < c; ++j) xn[j] = cblas_sdot(static_cast<int>(d), x + j * d, 1, x + j * d, 1);
  for (size_t i = 0; i < b; ++i)
    for (size_t j = 0; j < c; ++j) out[i * c + j] = 2 * out[i * c + j] - qn[i] - xn[j];
}

// Given dL/dS [b x c] for S = score(q, y), accumulates dL/dy [c x d] into grad_y.
void ScoreBackward(Metric metric, const float* g, const float* q, size_t b, const float* y, size_t c, size_t d,
                   float* grad_y) {
  // IP: dS_ij/dy_j = q_i  -> grad_y = G^T Q.   L2: dS_ij/dy_j = 2(q_i - y_j) -> 2 G^T Q - 2 (colsum G) y.
  const float scale = metric == Metric::kL2 ? 2.0f : 1.0f;
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, static_cast<int>(c), static_cast<int>(d), static_cast<int>(b),
              scale, g, static_cast<int>(c), q, static_cast<int>(d), 1.0f, grad_y, static_cast<int>(d));
  if (metric != Metric::kL2) return;
  for (size_t j = 0; j < c; ++j) {
    float colsum = 0;
    for (size_t i = 0; i < b; ++i) colsum += g[i * c + j];
    cblas_saxpy(static_cast<int>(d), -2.0f * colsum, y + j * d, 1, grad_y + j * d, 1);
  }
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

void Softmax(const float* x, size_t n, float* out) {
  const float mx = *std::max_element(x, x + n);
  double sum = 0;
  for (size_t i = 0; i < n; ++i) sum += out[i] = std::exp(x[i] - mx);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<float>(out[i] / sum);
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
  const IvfPqParams& p = books.params;
  const size_t d = p.dim, M = p.m, K = p.ksub(), ds = p.dsub(), b = in.b, c = in.c;

  // Forward: residuals, hard codes, soft assignments, reconstructions.
  std::vector<float> cent(c * d), resid(c * d), recon(c * d);
  for (size_t j = 0; j < c; ++j)
    for (size_t k = 0; k < d; ++k) {
      cent[j * d + k] = books.centroids[size_t{in.lists[j]} * d + k];
      resid[j * d + k] = in.docs[j * d + k] - cent[j * d + k];
    }
  std::vector<float> soft(M * c * K);    // p per (subspace, doc, codeword)
  std::vector<uint8_t> code(c * M);
  std::vector<float> dots(c * K), cnorm(K), z(K);
  for (size_t m = 0; m < M; ++m) {
    const float* C = books.pq.data() + m * K * ds;
    for (size_t k = 0; k < K; ++k) cnorm[k] = cblas_sdot(static_cast<int>(ds), C + k * ds, 1, C + k * ds, 1);
    Gemm(true, static_cast<int>(c), static_cast<int>(K), static_cast<int>(ds), resid.data() + m * ds,
         static_cast<int>(d), C, static_cast<int>(ds), dots.data(), static_cast<int>(K));
    for (size_t j = 0; j < c; ++j) {
      const float* r = resid.data() + j * d + m * ds;
      const float rn = cblas_sdot(static_cast<int>(ds), r, 1, r, 1);
      size_t best = 0;
      for (size_t k = 0; k < K; ++k) {
        z[k] = -(rn - 2 * dots[j * K + k] + cnorm[k]);  // -||r - C_k||^2
        if (z[k] > z[best]) best = k;
      }
      code[j * M + m] = static_cast<uint8_t>(best);
      for (size_t k = 0; k < K; ++k) z[k] /= in.tau_code;
      Softmax(z.data(), K, soft.data() + (m * c + j) * K);
      for (size_t t = 0; t < ds; ++t) recon[j * d + m * ds + t] = cent[j * d + m * ds + t] + C[best * ds + t];
    }
  }

  // Scores and ListNet losses.
  std::vector<float> teacher(b * c), s_ivf(b * c), s_pq(b * c), g_ivf(b * c), g_pq(b * c);
  Scores(p.metric, in.queries, b, in.docs, c, d, teacher.data());
  Scores(p.metric, in.queries, b, cent.data(), c, d, s_ivf.data());
  Scores(p.metric, in.queries, b, recon.data(), c, d, s_pq.data());
  out->loss_ivf = ListNetRows(teacher.data(), s_ivf.data(), b, c, in.tau, g_ivf.data());
  out->loss_pq = ListNetRows(teacher.data(), s_pq.data(), b, c, in.tau, g_pq.data());

  // Backward to the per-document reconstructions and centroids.
  std::vector<float> g_recon(c * d, 0.0f), g_cent_ivf(c * d, 0.0f);
  ScoreBackward(p.metric, g_pq.data(), in.queries, b, recon.data(), c, d, g_recon.data());
  ScoreBackward(p.metric, g_ivf.data(), in.queries, b, cent.data(), c, d, g_cent_ivf.data());

  out->grad_pq.assign(books.pq.size(), 0.0f);
  out->grad_centroids.assign(books.centroids.size(), 0.0f);
  out->grad_centroids_ivf.assign(books.centroids.size(), 0.0f);
  for (size_t j = 0; j < c; ++j) {
    float* gc = out->grad_centroids.data() + size_t{in.lists[j]} * d;
    float* gci = out->grad_centroids_ivf.data() + size_t{in.lists[j]} * d;
    for (size_t k = 0; k < d; ++k) {
      gc[k] += g_recon[j * d + k];  // x^ = c + r^: the PQ loss reaches the centroid directly
      gci[k] += g_cent_ivf[j * d + k];
    }
  }

  // Straight-through backward into the PQ codebooks, per subspace:
  //   direct:  dL/dC_k* += g                       (forward uses the hard codeword)
  //   softmax: dL/dp_k = <g, C_k>;  dz_k = p_k (dL/dp_k - sum_i p_i dL/dp_i) / tau_code
  //            z_k = -||r - C_k||^2  =>  dL/dC_k += dz_k * 2 (r - C_k)
  std::vector<float> gsub(c * ds), dp(c * K), dzr(K * ds);
  for (size_t m = 0; m < M; ++m) {
    const float* C = books.pq.data() + m * K * ds;
    float* G = out->grad_pq.data() + m * K * ds;
    for (size_t j = 0; j < c; ++j)
      for (size_t t = 0; t < ds; ++t) gsub[j * ds + t] = g_recon[j * d + m * ds + t];
    // dp[c x K] = gsub * C^T
    Gemm(true, static_cast<int>(c), static_cast<int>(K), static_cast<int>(ds), gsub.data(), static_cast<int>(ds), C,
         static_cast<int>(ds), dp.data(), static_cast<int>(K));
    std::vector<float> dz(c * K);
    std::vector<float> dz_colsum(K, 0.0f);
    for (size_t j = 0; j < c; ++j) {
      const float* pj = soft.data() + (m * c + j) * K;
      double mean = 0;
      for (size_t k = 0; k < K; ++k) mean += double{pj[k]} * dp[j * K + k];
      for (size_t k = 0; k < K; ++k) {
        dz[j * K + k] = pj[k] * static_cast<float>(dp[j * K + k] - mean) / in.tau_code;
        dz_colsum[k] += dz[j * K + k];
      }
      const size_t best = code[j * M + m];
      for (size_t t = 0; t < ds; ++t) G[best * ds + t] += gsub[j * ds + t];
    }
    // sum_j dz_jk 2 (r_j - C_k) = 2 (dz^T R)_k - 2 (sum_j dz_jk) C_k
    Gemm(false, static_cast<int>(K), static_cast<int>(ds), static_cast<int>(c), dz.data(), static_cast<int>(K),
         resid.data() + m * ds, static_cast<int>(d), dzr.data(), static_cast<int>(ds), 0.0f, /*trans_a=*/true);
    for (size_t k = 0; k < K; ++k)
      for (size_t t = 0; t < ds; ++t) G[k * ds + t] += 2 * dzr[k * ds + t] - 2 * dz_colsum[k] * C[k * ds + t];
  }
}

}  // namespace m3vdb::quant::detail
