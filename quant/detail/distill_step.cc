#include "quant/detail/distill_step.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/blas_threads.h"
#include "common/vector_math.h"
#include "quant/detail/product_kmeans.h"

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

// Candidates per task of the score GEMMs: fixed, so that the split (and with it every rounding)
// does not depend on the thread count.
constexpr size_t kColumnBlock = 512;

size_t Blocks(size_t n, size_t block) { return (n + block - 1) / block; }

// Scores of queries against rows x[j0, j1) under the metric, into columns [j0, j1) of `out`
// (b rows of ldo floats).
void ScoreBlock(Metric metric, const float* q, const float* qn, size_t b, const float* x, size_t j0, size_t j1,
                size_t d, float* out, size_t ldo) {
  Gemm(false, true, b, j1 - j0, d, 1.0f, q, d, x + j0 * d, d, 0.0f, out + j0, ldo);
  if (metric != Metric::kL2) return;
  for (size_t j = j0; j < j1; ++j) {
    const float xn = SquaredNorm(x + j * d, d);
    for (size_t i = 0; i < b; ++i) out[i * ldo + j] = 2 * out[i * ldo + j] - qn[i] - xn;
  }
}

// Scores [b x c] of queries against rows `x` under the metric, for each of `sets` row sets at
// once (teacher and student share the queries), in blocks of candidates over the threads.
void Scores(Metric metric, const float* q, size_t b, const float* const* x, float* const* out, size_t sets, size_t c,
            size_t d) {
  std::vector<float> qn(b);
  for (size_t i = 0; i < b; ++i) qn[i] = SquaredNorm(q + i * d, d);
  const size_t blocks = Blocks(c, kColumnBlock);
  const auto tasks = static_cast<std::ptrdiff_t>(blocks * sets);
#pragma omp parallel for schedule(dynamic, 1)
  for (std::ptrdiff_t task = 0; task < tasks; ++task) {
    const size_t set = static_cast<size_t>(task) / blocks, j0 = static_cast<size_t>(task) % blocks * kColumnBlock;
    ScoreBlock(metric, q, qn.data(), b, x[set], j0, std::min(c, j0 + kColumnBlock), d, out[set], c);
  }
}

// Given dL/dS [b x c] for S = score(q, y), writes dL/dy [c x d] into grad_y (overwritten), in
// blocks of rows of y over the threads.
void ScoreBackward(Metric metric, const float* g, const float* q, size_t b, const float* y, size_t c, size_t d,
                   float* grad_y) {
  // IP: dS_ij/dy_j = q_i  -> grad_y = G^T Q.   L2: dS_ij/dy_j = 2(q_i - y_j) -> 2 G^T Q - 2 (colsum G) y.
  const float scale = metric == Metric::kL2 ? 2.0f : 1.0f;
  const auto blocks = static_cast<std::ptrdiff_t>(Blocks(c, kColumnBlock));
#pragma omp parallel for schedule(dynamic, 1)
  for (std::ptrdiff_t block = 0; block < blocks; ++block) {
    const size_t j0 = static_cast<size_t>(block) * kColumnBlock, j1 = std::min(c, j0 + kColumnBlock);
    Gemm(true, false, j1 - j0, d, b, scale, g + j0, c, q, d, 0.0f, grad_y + j0 * d, d);
    if (metric != Metric::kL2) continue;
    float colsum[kColumnBlock] = {};
    for (size_t i = 0; i < b; ++i)
      for (size_t j = j0; j < j1; ++j) colsum[j - j0] += g[i * c + j];
    for (size_t j = j0; j < j1; ++j) cblas_saxpy(static_cast<int>(d), -2.0f * colsum[j - j0], y + j * d, 1, grad_y + j * d, 1);
  }
}

void Softmax(const float* x, size_t n, float* out) {
  const float mx = *std::max_element(x, x + n);
  float sum = 0;
  for (size_t i = 0; i < n; ++i) sum += out[i] = std::exp(x[i] - mx);
  const float inv = 1.0f / sum;
  for (size_t i = 0; i < n; ++i) out[i] *= inv;
}

// Mean ListNet over rows; writes dL/dS (already including 1/tau and 1/b) into grad. Rows run on
// the threads; their losses are summed in row order afterwards (the same sum whatever the split).
double ListNetRows(const float* teacher, const float* student, size_t b, size_t c, float tau, float* grad,
                   std::vector<double>* row_loss) {
  row_loss->resize(b);
#pragma omp parallel
  {
    std::vector<float> t(c), s(c);
#pragma omp for schedule(static)
    for (std::ptrdiff_t is = 0; is < static_cast<std::ptrdiff_t>(b); ++is) {
      const auto i = static_cast<size_t>(is);
      for (size_t j = 0; j < c; ++j) {
        t[j] = teacher[i * c + j] / tau;
        s[j] = student[i * c + j] / tau;
      }
      (*row_loss)[i] = ListNet(t.data(), s.data(), c, grad + i * c);
      for (size_t j = 0; j < c; ++j) grad[i * c + j] /= tau * static_cast<float>(b);
    }
  }
  double total = 0;
  for (double loss : *row_loss) total += loss;
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
  SingleThreadedBlas blas;  // the loops below call BLAS from every OpenMP thread
  ws->threads.resize(static_cast<size_t>(std::max(1, omp_get_max_threads())));
  const auto subspaces = static_cast<std::ptrdiff_t>(M);

  // Residuals to the fixed lists, and their squared norms per subspace.
  float* resid = Buffer(ws->resid, c * d);
  float* rnorm = Buffer(ws->rnorm, c * M);
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t js = 0; js < static_cast<std::ptrdiff_t>(c); ++js) {
    const auto j = static_cast<size_t>(js);
    const float* x = in.docs + j * d;
    const float* cl = centroids + size_t{in.lists[j]} * d;
    for (size_t k = 0; k < d; ++k) resid[j * d + k] = x[k] - cl[k];
    for (size_t m = 0; m < M; ++m) rnorm[j * M + m] = SquaredNorm(resid + j * d + m * ds, ds);
  }

  // Forward, a subspace per task: hard codes (nearest codeword) and reconstructions x^ = c_l + C[k].
  ws->code.resize(c * M);
  float* recon = Buffer(ws->recon, c * d);
  float* cnorm = Buffer(ws->cnorm, M * K);
#pragma omp parallel for schedule(dynamic, 1)
  for (std::ptrdiff_t ms = 0; ms < subspaces; ++ms) {
    const auto m = static_cast<size_t>(ms);
    float* dots = Buffer(ws->threads[static_cast<size_t>(omp_get_thread_num())].dots, c * K);
    const float* C = books.pq.data() + m * K * ds;
    float* cn = cnorm + m * K;
    for (size_t k = 0; k < K; ++k) cn[k] = SquaredNorm(C + k * ds, ds);
    Gemm(false, true, c, K, ds, 1.0f, resid + m * ds, d, C, ds, 0.0f, dots, K);
    for (size_t j = 0; j < c; ++j) {
      // argmin ||r - C_k||^2 = argmax 2<r, C_k> - ||C_k||^2
      const size_t best = NearestCodeword(dots + j * K, cn, K);
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
  {
    const float* rows[] = {in.docs, recon};
    float* scores[] = {teacher, s_pq};
    Scores(p.geometry(), in.queries, b, rows, scores, 2, c, d);
    Scores(p.geometry(), in.queries, b, &centroids, &coarse, 1, L, d);
  }
  for (size_t i = 0; i < b; ++i)
    for (size_t j = 0; j < c; ++j) s_ivf[i * c + j] = coarse[i * L + in.lists[j]];
  out->loss_ivf = ListNetRows(teacher, s_ivf, b, c, in.tau, g_ivf, &ws->row_loss);
  out->loss_pq = ListNetRows(teacher, s_pq, b, c, in.tau, g_pq, &ws->row_loss);

  // IVF backward: dL/dS summed per (query, list), then to the centroids.
  std::fill_n(coarse, b * L, 0.0f);
  for (size_t i = 0; i < b; ++i)
    for (size_t j = 0; j < c; ++j) coarse[i * L + in.lists[j]] += g_ivf[i * c + j];
  out->grad_centroids_ivf.resize(books.centroids.size());
  ScoreBackward(p.geometry(), coarse, in.queries, b, centroids, L, d, out->grad_centroids_ivf.data());

  // PQ backward to the reconstructions.
  float* g_recon = Buffer(ws->g_recon, c * d);
  ScoreBackward(p.geometry(), g_pq, in.queries, b, recon, c, d, g_recon);

  // Straight-through backward into the PQ codebooks, a subspace per task, with g the subspace's
  // part of dL/dx^ and p = softmax_k(-||r - C_k||^2 / tau_code) (recomputed here rather than kept
  // from the forward pass: M x c x K floats would be hundreds of MB):
  //   direct:  dL/dC_k* += g                       (forward uses the hard codeword)
  //   softmax: dL/dp_k = <g, C_k>;  dz_k = p_k (dL/dp_k - sum_i p_i dL/dp_i) / tau_code
  //            z_k = -||r - C_k||^2  =>  dL/dC_k += dz_k * 2 (r - C_k)
  out->grad_pq.assign(books.pq.size(), 0.0f);
  const float inv_tau_code = 1.0f / in.tau_code;
  constexpr size_t kRowBlock = 64;
#pragma omp parallel for schedule(dynamic, 1)
  for (std::ptrdiff_t ms = 0; ms < subspaces; ++ms) {
    const auto m = static_cast<size_t>(ms);
    StepWorkspace::Subspace& t = ws->threads[static_cast<size_t>(omp_get_thread_num())];
    float* dots = Buffer(t.dots, c * K);
    float* dp = Buffer(t.dp, c * K);
    float* dz_colsum = Buffer(t.dz_colsum, K);
    float* dzr = Buffer(t.dzr, K * ds);
    const float* C = books.pq.data() + m * K * ds;
    const float* cn = cnorm + m * K;
    float* G = out->grad_pq.data() + m * K * ds;
    Gemm(false, true, c, K, ds, 1.0f, resid + m * ds, d, C, ds, 0.0f, dots, K);
    Gemm(false, true, c, K, ds, 1.0f, g_recon + m * ds, d, C, ds, 0.0f, dp, K);
    // z, p = softmax(z) and dz in place in `dots`, a block of rows at a time.
    for (size_t j0 = 0; j0 < c; j0 += kRowBlock) {
      const size_t j1 = std::min(c, j0 + kRowBlock);
      for (size_t j = j0; j < j1; ++j) {
        const float rn = rnorm[j * M + m];
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
      for (size_t k = 0; k < ds; ++k) G[best * ds + k] += g[k];
    }
    // sum_j dz_jk 2 (r_j - C_k) = 2 (dz^T R)_k - 2 (sum_j dz_jk) C_k
    Gemm(true, false, K, ds, c, 1.0f, dots, K, resid + m * ds, d, 0.0f, dzr, ds);
    for (size_t k = 0; k < K; ++k)
      for (size_t u = 0; u < ds; ++u) G[k * ds + u] += 2 * dzr[k * ds + u] - 2 * dz_colsum[k] * C[k * ds + u];
  }
}

}  // namespace m3vdb::quant::detail
