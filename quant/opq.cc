#include "quant/opq.h"

#include <cblas.h>

#include <algorithm>
#include <random>
#include <string>

#include "quant/detail/product_kmeans.h"

extern "C" {
void dgesvd_(const char* jobu, const char* jobvt, const int* m, const int* n, double* a, const int* lda, double* s,
             double* u, const int* ldu, double* vt, const int* ldvt, double* work, const int* lwork, int* info);
void dgeqrf_(const int* m, const int* n, double* a, const int* lda, double* tau, double* work, const int* lwork,
             int* info);
void dorgqr_(const int* m, const int* n, const int* k, double* a, const int* lda, const double* tau, double* work,
             const int* lwork, int* info);
}

namespace m3vdb::quant {
namespace {

// A column-major d x d orthogonal matrix as the row-major float rotation.
std::vector<float> RowMajor(const std::vector<double>& col, size_t d) {
  std::vector<float> a(d * d);
  for (size_t i = 0; i < d; ++i)
    for (size_t j = 0; j < d; ++j) a[i * d + j] = static_cast<float>(col[i + j * d]);
  return a;
}

// The Q of a QR factorization of a Gaussian matrix: a random rotation.
Result<std::vector<float>> RandomRotation(size_t d, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> g;
  std::vector<double> a(d * d), tau(d);
  for (double& v : a) v = g(rng);
  const int n = static_cast<int>(d);
  int info = 0, lwork = -1;
  double size = 0;
  dgeqrf_(&n, &n, a.data(), &n, tau.data(), &size, &lwork, &info);
  std::vector<double> work(static_cast<size_t>(size) + 1);
  lwork = static_cast<int>(work.size());
  dgeqrf_(&n, &n, a.data(), &n, tau.data(), work.data(), &lwork, &info);
  if (info == 0) dorgqr_(&n, &n, &n, a.data(), &n, tau.data(), work.data(), &lwork, &info);
  if (info != 0) return Status::Internal("OPQ: LAPACK QR failed (info " + std::to_string(info) + ")");
  return RowMajor(a, d);
}

// argmin over orthogonal A of ||X A^T - Y||_F given Z = X^T Y (row-major d x d): with
// Z = U S V^T, A = V U^T (tr(A Z) is largest when V^T A U = I).
Result<std::vector<float>> Procrustes(const std::vector<float>& z, size_t d) {
  std::vector<double> a(d * d), s(d), u(d * d), vt(d * d);
  for (size_t i = 0; i < d; ++i)
    for (size_t j = 0; j < d; ++j) a[i + j * d] = z[i * d + j];
  const int n = static_cast<int>(d);
  int info = 0, lwork = -1;
  double size = 0;
  dgesvd_("A", "A", &n, &n, a.data(), &n, s.data(), u.data(), &n, vt.data(), &n, &size, &lwork, &info);
  std::vector<double> work(static_cast<size_t>(size) + 1);
  lwork = static_cast<int>(work.size());
  dgesvd_("A", "A", &n, &n, a.data(), &n, s.data(), u.data(), &n, vt.data(), &n, work.data(), &lwork, &info);
  if (info != 0) return Status::Internal("OPQ: LAPACK SVD failed (info " + std::to_string(info) + ")");
  // V U^T = (V^T)^T U^T, column-major.
  cblas_dgemm(CblasColMajor, CblasTrans, CblasTrans, n, n, n, 1.0, vt.data(), n, u.data(), n, 0.0, a.data(), n);
  return RowMajor(a, d);
}

}  // namespace

Result<std::vector<float>> TrainOpqRotation(const float* x, size_t n, size_t d, size_t m, size_t ksub,
                                            const OpqOptions& options) {
  if (d == 0 || m == 0 || d % m != 0)
    return Status::InvalidArgument("OPQ: " + std::to_string(m) + " subspaces do not divide dimension " +
                                   std::to_string(d));
  if (ksub == 0 || ksub > 256) return Status::InvalidArgument("OPQ: ksub must be 1..256, got " + std::to_string(ksub));
  if (n < ksub)
    return Status::InvalidArgument("OPQ needs at least " + std::to_string(ksub) + " vectors, got " + std::to_string(n));
  if (options.iterations < 1 || options.first_kmeans_iterations < 1 || options.kmeans_iterations < 1)
    return Status::InvalidArgument("OPQ: iteration counts must be >= 1");

  // The training sample (every vector, or max_train_points of them in their original order),
  // centered: a rotation learned on a large common offset (non-negative pixels, say) spends the
  // codebooks on the offset. The rotation is then applied to the vectors as they are.
  size_t ns = n;
  std::vector<size_t> rows(n);
  for (size_t i = 0; i < n; ++i) rows[i] = i;
  if (n > options.max_train_points && options.max_train_points >= ksub) {
    ns = options.max_train_points;
    std::mt19937_64 rng(options.seed);
    for (size_t i = 0; i < ns; ++i) std::swap(rows[i], rows[std::uniform_int_distribution<size_t>(i, n - 1)(rng)]);
    std::sort(rows.begin(), rows.begin() + static_cast<std::ptrdiff_t>(ns));
  }
  std::vector<double> mean(d, 0.0);
  for (size_t i = 0; i < ns; ++i)
    for (size_t j = 0; j < d; ++j) mean[j] += x[rows[i] * d + j];
  for (double& v : mean) v /= static_cast<double>(ns);
  std::vector<float> sample(ns * d);
  for (size_t i = 0; i < ns; ++i)
    for (size_t j = 0; j < d; ++j) sample[i * d + j] = static_cast<float>(x[rows[i] * d + j] - mean[j]);
  x = sample.data();

  M3VDB_ASSIGN_OR_RETURN(std::vector<float> rotation, RandomRotation(d, options.seed + 1));
  const detail::ProductLayout layout{d, m, ksub};
  std::vector<float> xr(ns * d), recon(ns * d), pq(m * ksub * layout.dsub()), z(d * d);
  const int di = static_cast<int>(d), ni = static_cast<int>(ns);
  for (int it = 0; it < options.iterations; ++it) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, ni, di, di, 1.0f, x, di, rotation.data(), di, 0.0f, xr.data(),
                di);
    detail::ProductKMeans(xr.data(), ns, layout, it == 0 ? options.first_kmeans_iterations : options.kmeans_iterations,
                          it == 0, options.seed + 2, pq.data());
    const double error = detail::ProductReconstruct(xr.data(), ns, layout, pq.data(), recon.data());
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, di, di, ni, 1.0f, x, di, recon.data(), di, 0.0f, z.data(), di);
    M3VDB_ASSIGN_OR_RETURN(rotation, Procrustes(z, d));
    if (options.on_iteration) options.on_iteration(it + 1, options.iterations, error);
  }
  return rotation;
}

}  // namespace m3vdb::quant
