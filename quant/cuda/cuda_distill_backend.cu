// The Distill-VQ step on CUDA (cuda_distill_backend.h). Per step the batch (queries, candidate
// documents, their lists) and the current codebooks are uploaded, the forward and backward pass
// of detail/distill_step.cc run on the device, and the two gradients and the per-query losses
// are downloaded. Device buffers grow to the largest batch seen and are reused.
//
// Layouts (all row-major, as on the CPU): queries b x d, documents/centroid rows/residuals/
// reconstructions c x d, score matrices b x c, `mk` and `soft` one c x K matrix per subspace
// (index (m * c + j) * K + k), codes one row of c per subspace (m * c + j), codebooks M x K x ds.
// cuBLAS is column-major: a row-major matrix is its transpose there, so row-major
// C = op(A) op(B) is issued as C^T = op(B)^T op(A)^T, i.e. with the operands swapped.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "common/gpu.h"
#include "quant/cuda/cuda_distill_backend.h"

namespace m3vdb::quant {
namespace {

constexpr int kThreads = 256;     // block size of the row kernels (a multiple of 32)
constexpr int kCodeChunk = 2048;  // codes staged in shared memory per pass of PqGradients
constexpr unsigned kFullMask = 0xffffffffu;

unsigned Blocks(size_t n, int threads) { return static_cast<unsigned>((n + threads - 1) / threads); }

// Sum over the block, returned to every thread. blockDim.x is a multiple of 32; `shared` holds 32.
__device__ float BlockSum(float v, float* shared) {
  for (int o = 16; o > 0; o /= 2) v += __shfl_down_sync(kFullMask, v, o);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  __syncthreads();  // a previous call may still be reading `shared`
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  float total = 0;
  for (int w = 0; w < static_cast<int>(blockDim.x / 32); ++w) total += shared[w];
  return total;
}

__device__ float BlockMax(float v, float* shared) {
  for (int o = 16; o > 0; o /= 2) v = fmaxf(v, __shfl_down_sync(kFullMask, v, o));
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  float m = shared[0];
  for (int w = 1; w < static_cast<int>(blockDim.x / 32); ++w) m = fmaxf(m, shared[w]);
  return m;
}

__device__ bool Better(float v, int i, float bv, int bi) { return v > bv || (v == bv && i < bi); }

// Largest value over the block and its index, ties to the lowest index (as the CPU's first-max
// loop); the result is returned to every thread.
__device__ void BlockArgMax(float* v, int* i, float* sv, int* si) {
  for (int o = 16; o > 0; o /= 2) {
    const float ov = __shfl_down_sync(kFullMask, *v, o);
    const int oi = __shfl_down_sync(kFullMask, *i, o);
    if (Better(ov, oi, *v, *i)) *v = ov, *i = oi;
  }
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  __syncthreads();
  if (lane == 0) sv[warp] = *v, si[warp] = *i;
  __syncthreads();
  *v = sv[0];
  *i = si[0];
  for (int w = 1; w < static_cast<int>(blockDim.x / 32); ++w)
    if (Better(sv[w], si[w], *v, *i)) *v = sv[w], *i = si[w];
}

// cent[j] = centroids[lists[j]], resid[j] = x[j] - cent[j]; one block per document.
__global__ void GatherResidual(const float* x, const float* centroids, const uint32_t* lists, int d, float* cent,
                               float* resid) {
  const size_t row = blockIdx.x * static_cast<size_t>(d);
  const float* c = centroids + lists[blockIdx.x] * static_cast<size_t>(d);
  for (int t = threadIdx.x; t < d; t += blockDim.x) {
    cent[row + t] = c[t];
    resid[row + t] = x[row + t] - c[t];
  }
}

// out[r] = ||x[r]||^2 for `rows` contiguous rows of `cols`; one warp per row.
__global__ void RowSqNorms(const float* x, size_t rows, int cols, float* out) {
  const size_t r = (blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (r >= rows) return;  // the whole warp leaves together
  float s = 0;
  for (int t = lane; t < cols; t += 32) {
    const float v = x[r * cols + t];
    s += v * v;
  }
  for (int o = 16; o > 0; o /= 2) s += __shfl_down_sync(kFullMask, s, o);
  if (lane == 0) out[r] = s;
}

// Block r = m * c + j: z_k = -||r_jm - C_mk||^2 = -(||r_jm||^2 - 2 <r_jm, C_mk> + ||C_mk||^2) from the
// GEMM's dots; hard code argmax_k z_k (forward), soft assignment softmax_k(z_k / tau_code)
// (backward), and the reconstruction's sub-vector cent + C_m[code]. Dynamic shared memory: K floats.
__global__ void Assign(const float* dots, const float* resid_norms, const float* code_norms, const float* pq,
                       const float* cent, size_t c, int M, int K, int ds, float tau_code, float* soft, uint8_t* codes,
                       float* recon) {
  extern __shared__ float z[];
  __shared__ float sv[32];
  __shared__ int si[32];
  const size_t r = blockIdx.x;
  const int m = static_cast<int>(r / c);
  const size_t j = r % c;
  const float rn = resid_norms[j * M + m];
  float best_v = -INFINITY;
  int best_i = 0x7fffffff;
  for (int k = threadIdx.x; k < K; k += blockDim.x) {
    const float v = -(rn - 2 * dots[r * K + k] + code_norms[m * K + k]);
    z[k] = v;
    if (v > best_v) best_v = v, best_i = k;  // ascending k: the first maximum of this thread's share
  }
  BlockArgMax(&best_v, &best_i, sv, si);
  const float mx = best_v / tau_code;
  float sum = 0;
  for (int k = threadIdx.x; k < K; k += blockDim.x) sum += expf(z[k] / tau_code - mx);
  const float inv = 1.0f / BlockSum(sum, sv);
  for (int k = threadIdx.x; k < K; k += blockDim.x) soft[r * K + k] = expf(z[k] / tau_code - mx) * inv;
  if (threadIdx.x == 0) codes[m * c + j] = static_cast<uint8_t>(best_i);
  const size_t d = static_cast<size_t>(M) * ds, off = j * d + static_cast<size_t>(m) * ds;
  const float* word = pq + (static_cast<size_t>(m) * K + best_i) * ds;
  for (int t = threadIdx.x; t < ds; t += blockDim.x) recon[off + t] = cent[off + t] + word[t];
}

// L2 scores from dot products: s[i][j] = 2 s[i][j] - ||q_i||^2 - ||y_j||^2 = -||q_i - y_j||^2.
__global__ void L2FromDots(float* s, const float* qn, const float* yn, size_t b, size_t c) {
  const size_t idx = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x;
  if (idx < b * c) s[idx] = 2 * s[idx] - qn[idx / c] - yn[idx % c];
}

// ListNet of query row blockIdx.x over c candidates, scores divided by tau here:
// loss = -sum_j softmax(t)_j log softmax(s)_j, grad_j = (softmax(s)_j - softmax(t)_j) * grad_scale.
__global__ void ListNetRows(const float* teacher, const float* student, size_t c, float tau, float grad_scale,
                            float* grad, float* loss) {
  __shared__ float shared[32];
  const float* t = teacher + blockIdx.x * c;
  const float* s = student + blockIdx.x * c;
  float* g = grad + blockIdx.x * c;
  float mt = -INFINITY, ms = -INFINITY;
  for (size_t j = threadIdx.x; j < c; j += blockDim.x) {
    mt = fmaxf(mt, t[j] / tau);
    ms = fmaxf(ms, s[j] / tau);
  }
  mt = BlockMax(mt, shared);
  ms = BlockMax(ms, shared);
  float st = 0, ss = 0;
  for (size_t j = threadIdx.x; j < c; j += blockDim.x) {
    st += expf(t[j] / tau - mt);
    ss += expf(s[j] / tau - ms);
  }
  st = BlockSum(st, shared);
  ss = BlockSum(ss, shared);
  const float lse = logf(ss) + ms;
  float l = 0;
  for (size_t j = threadIdx.x; j < c; j += blockDim.x) {
    const float pt = expf(t[j] / tau - mt) / st, ps = expf(s[j] / tau - ms) / ss;
    l -= pt * (s[j] / tau - lse);
    g[j] = (ps - pt) * grad_scale;
  }
  l = BlockSum(l, shared);
  if (threadIdx.x == 0) loss[blockIdx.x] = l;
}

// out[m][k] = sum_j in[m][j][k] over `batches` row-major rows x cols matrices; one thread per
// (m, k), rows summed in order.
__global__ void ColumnSums(const float* in, size_t batches, size_t rows, size_t cols, float* out) {
  const size_t idx = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x;
  if (idx >= batches * cols) return;
  const float* p = in + (idx / cols) * rows * cols + idx % cols;
  float s = 0;
  for (size_t j = 0; j < rows; ++j) s += p[j * cols];
  out[idx] = s;
}

// y[j] += alpha * w[j] * x[j] for rows of d.
__global__ void ScaleRowsAdd(float* y, const float* w, const float* x, float alpha, size_t rows, int d) {
  const size_t idx = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x;
  if (idx < rows * d) y[idx] += alpha * w[idx / d] * x[idx];
}

// out[l] = sum of g[j] over the batch documents j of list l, in ascending j (`order`, `offsets`:
// the documents grouped by list); one block per list, empty lists get zeros.
__global__ void SumByList(const float* g, const uint32_t* order, const uint32_t* offsets, int d, float* out) {
  const size_t l = blockIdx.x;
  for (int t = threadIdx.x; t < d; t += blockDim.x) {
    float s = 0;
    for (uint32_t u = offsets[l]; u < offsets[l + 1]; ++u) s += g[static_cast<size_t>(order[u]) * d + t];
    out[l * d + t] = s;
  }
}

// Softmax backward in place: dz_k = p_k (dp_k - sum_i p_i dp_i) / tau_code; one block per (m, j).
__global__ void SoftmaxBackward(const float* soft, float* dp, int K, float inv_tau_code) {
  __shared__ float shared[32];
  const float* p = soft + blockIdx.x * static_cast<size_t>(K);
  float* g = dp + blockIdx.x * static_cast<size_t>(K);
  float s = 0;
  for (int k = threadIdx.x; k < K; k += blockDim.x) s += p[k] * g[k];
  s = BlockSum(s, shared);
  for (int k = threadIdx.x; k < K; k += blockDim.x) g[k] = p[k] * (g[k] - s) * inv_tau_code;
}

// Gradient of codeword (m, k), one block each:
//   straight-through direct term  sum_{j: code_jm = k} g_recon[j]_m    (documents in ascending order)
//   softmax term                  2 (dz_m^T R_m)_k - 2 (sum_j dz_jmk) C_mk   (dzr and colsum given)
__global__ void PqGradients(const uint8_t* codes, const float* g_recon, const float* dzr, const float* dz_colsum,
                            const float* pq, size_t c, int M, int K, int ds, float* grad) {
  __shared__ uint8_t chunk[kCodeChunk];
  const int m = static_cast<int>(blockIdx.x / K), k = static_cast<int>(blockIdx.x % K);
  const size_t d = static_cast<size_t>(M) * ds, word = (static_cast<size_t>(m) * K + k) * ds;
  for (int t0 = 0; t0 < ds; t0 += blockDim.x) {
    const int t = t0 + threadIdx.x;
    float acc = 0;
    for (size_t j0 = 0; j0 < c; j0 += kCodeChunk) {
      const size_t n = c - j0 < kCodeChunk ? c - j0 : kCodeChunk;
      __syncthreads();  // the previous chunk is no longer read
      for (size_t u = threadIdx.x; u < n; u += blockDim.x) chunk[u] = codes[m * c + j0 + u];
      __syncthreads();
      if (t < ds)
        for (size_t u = 0; u < n; ++u)
          if (chunk[u] == k) acc += g_recon[(j0 + u) * d + static_cast<size_t>(m) * ds + t];
    }
    if (t < ds) grad[word + t] = acc + (2 * dzr[word + t] - 2 * dz_colsum[m * K + k] * pq[word + t]);
  }
}

// A device array that grows on demand (contents are not kept when it grows).
template <class T>
class DeviceArray {
 public:
  DeviceArray() = default;
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  ~DeviceArray() { cudaFree(p_); }
  cudaError_t Reserve(size_t n) {
    n = std::max<size_t>(n, 1);
    if (n <= capacity_) return cudaSuccess;
    cudaFree(p_);
    p_ = nullptr;
    capacity_ = 0;
    cudaError_t e = cudaMalloc(&p_, n * sizeof(T));
    if (e == cudaSuccess) capacity_ = n;
    return e;
  }
  T* get() const { return p_; }

 private:
  T* p_ = nullptr;
  size_t capacity_ = 0;
};

Status CudaError(const char* what, cudaError_t e) {
  cudaGetLastError();  // clear a non-sticky error so the next step starts clean
  if (e == cudaErrorMemoryAllocation) return Status::ResourceExhausted(std::string("Distill-VQ on CUDA: ") + what + ": out of device memory");
  return Status::Internal(std::string("Distill-VQ on CUDA: ") + what + ": " + cudaGetErrorString(e));
}

Status CublasError(const char* what, cublasStatus_t s) {
  return Status::Internal(std::string("Distill-VQ on CUDA: ") + what + " failed (cuBLAS status " + std::to_string(s) +
                          ")");
}

#define M3VDB_CUDA_TRY(expr)                               \
  do {                                                     \
    const cudaError_t m3vdb_e = (expr);                    \
    if (m3vdb_e != cudaSuccess) return CudaError(#expr, m3vdb_e); \
  } while (0)
#define M3VDB_CUBLAS_TRY(expr)                                           \
  do {                                                                   \
    const cublasStatus_t m3vdb_s = (expr);                               \
    if (m3vdb_s != CUBLAS_STATUS_SUCCESS) return CublasError(#expr, m3vdb_s); \
  } while (0)

// The launch status of the kernel just queued (its execution errors surface at the download).
Status Launched(const char* kernel) {
  const cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? Status::OK() : CudaError(kernel, e);
}

template <class T>
cudaError_t Upload(DeviceArray<T>* dst, const T* src, size_t n) {
  cudaError_t e = dst->Reserve(n);
  if (e != cudaSuccess || n == 0) return e;
  return cudaMemcpy(dst->get(), src, n * sizeof(T), cudaMemcpyHostToDevice);
}

class CudaDistillBackend final : public DistillBackend {
 public:
  ~CudaDistillBackend() override {
    if (handle_ != nullptr) cublasDestroy(handle_);
  }
  const char* name() const override { return "cuda"; }

  Status Init() {
    M3VDB_CUBLAS_TRY(cublasCreate(&handle_));
    // FP32 GEMMs: the default math mode does not lower SGEMM to TF32, so the step matches the
    // CPU backend to float rounding.
    M3VDB_CUBLAS_TRY(cublasSetMathMode(handle_, CUBLAS_DEFAULT_MATH));
    return Status::OK();
  }

  Status Step(const Codebooks& books, const Batch& batch, Gradients* out) override {
    std::lock_guard<std::mutex> lock(mu_);
    const IvfPqParams& p = books.params;
    const size_t d = p.dim, M = p.m, K = p.ksub(), ds = p.dsub(), L = p.nlist, b = batch.b, c = batch.c;
    if (b == 0 || c == 0) return Status::InvalidArgument("Distill-VQ step: empty batch");
    if (K > 256) return Status::InvalidArgument("Distill-VQ on CUDA: more than 256 codewords per sub-quantizer");
    if (M == 0 || M * ds != d || books.centroids.size() != L * d || books.pq.size() != M * K * ds)
      return Status::InvalidArgument("Distill-VQ step: codebook sizes do not match their parameters");
    if (!(batch.tau > 0) || !(batch.tau_code > 0))
      return Status::InvalidArgument("Distill-VQ step: temperatures must be > 0");

    // The batch's documents grouped by list (ascending within a list), for the centroid gradient.
    std::vector<uint32_t> offsets(L + 1, 0), order(c);
    for (size_t j = 0; j < c; ++j) {
      if (batch.lists[j] >= L) return Status::InvalidArgument("Distill-VQ step: a document's list is out of range");
      ++offsets[batch.lists[j] + 1];
    }
    for (size_t l = 0; l < L; ++l) offsets[l + 1] += offsets[l];
    {
      std::vector<uint32_t> fill(offsets.begin(), offsets.end() - 1);
      for (size_t j = 0; j < c; ++j) order[fill[batch.lists[j]]++] = static_cast<uint32_t>(j);
    }

    M3VDB_CUDA_TRY(Upload(&q_, batch.queries, b * d));
    M3VDB_CUDA_TRY(Upload(&x_, batch.docs, c * d));
    M3VDB_CUDA_TRY(Upload(&lists_, batch.lists, c));
    M3VDB_CUDA_TRY(Upload(&order_, order.data(), c));
    M3VDB_CUDA_TRY(Upload(&offsets_, offsets.data(), L + 1));
    M3VDB_CUDA_TRY(Upload(&centroids_, books.centroids.data(), L * d));
    M3VDB_CUDA_TRY(Upload(&pq_, books.pq.data(), M * K * ds));
    for (DeviceArray<float>* a : {&cent_, &resid_, &recon_, &g_recon_, &g_cent_}) M3VDB_CUDA_TRY(a->Reserve(c * d));
    for (DeviceArray<float>* a : {&mk_, &soft_}) M3VDB_CUDA_TRY(a->Reserve(M * c * K));
    for (DeviceArray<float>* a : {&teacher_, &s_ivf_, &s_pq_, &g_ivf_, &g_pq_}) M3VDB_CUDA_TRY(a->Reserve(b * c));
    M3VDB_CUDA_TRY(codes_.Reserve(M * c));
    M3VDB_CUDA_TRY(code_norms_.Reserve(M * K));
    M3VDB_CUDA_TRY(resid_norms_.Reserve(c * M));
    M3VDB_CUDA_TRY(qn_.Reserve(b));
    for (DeviceArray<float>* a : {&yn_, &colsum_}) M3VDB_CUDA_TRY(a->Reserve(c));
    M3VDB_CUDA_TRY(dz_colsum_.Reserve(M * K));
    M3VDB_CUDA_TRY(dzr_.Reserve(M * K * ds));
    M3VDB_CUDA_TRY(grad_pq_.Reserve(M * K * ds));
    M3VDB_CUDA_TRY(grad_cent_.Reserve(L * d));
    M3VDB_CUDA_TRY(loss_.Reserve(2 * b));

    const int id = static_cast<int>(d), iK = static_cast<int>(K), ids = static_cast<int>(ds), iM = static_cast<int>(M);
    const int ib = static_cast<int>(b), ic = static_cast<int>(c);
    const float one = 1.0f, zero = 0.0f;

    // Forward: residuals, codes, soft assignments, reconstructions.
    GatherResidual<<<static_cast<unsigned>(c), kThreads>>>(x_.get(), centroids_.get(), lists_.get(), id, cent_.get(),
                                                           resid_.get());
    M3VDB_RETURN_IF_ERROR(Launched("GatherResidual"));
    RowSqNorms<<<Blocks(M * K * 32, kThreads), kThreads>>>(pq_.get(), M * K, ids, code_norms_.get());
    M3VDB_RETURN_IF_ERROR(Launched("RowSqNorms"));
    RowSqNorms<<<Blocks(c * M * 32, kThreads), kThreads>>>(resid_.get(), c * M, ids, resid_norms_.get());
    M3VDB_RETURN_IF_ERROR(Launched("RowSqNorms"));
    // mk[m] (c x K) = R_m (c x ds, ld d) C_m^T.
    M3VDB_CUBLAS_TRY(cublasSgemmStridedBatched(handle_, CUBLAS_OP_T, CUBLAS_OP_N, iK, ic, ids, &one, pq_.get(), ids,
                                               static_cast<long long>(K * ds), resid_.get(), id,
                                               static_cast<long long>(ds), &zero, mk_.get(), iK,
                                               static_cast<long long>(c * K), iM));
    Assign<<<static_cast<unsigned>(M * c), kThreads, K * sizeof(float)>>>(
        mk_.get(), resid_norms_.get(), code_norms_.get(), pq_.get(), cent_.get(), c, iM, iK, ids, batch.tau_code,
        soft_.get(), codes_.get(), recon_.get());
    M3VDB_RETURN_IF_ERROR(Launched("Assign"));

    // Scores and ListNet losses.
    const bool l2 = p.geometry() == Metric::kL2;
    if (l2) {
      RowSqNorms<<<Blocks(b * 32, kThreads), kThreads>>>(q_.get(), b, id, qn_.get());
      M3VDB_RETURN_IF_ERROR(Launched("RowSqNorms"));
    }
    M3VDB_RETURN_IF_ERROR(Scores(l2, x_.get(), ib, ic, id, teacher_.get()));
    M3VDB_RETURN_IF_ERROR(Scores(l2, cent_.get(), ib, ic, id, s_ivf_.get()));
    M3VDB_RETURN_IF_ERROR(Scores(l2, recon_.get(), ib, ic, id, s_pq_.get()));
    const float grad_scale = 1.0f / (batch.tau * static_cast<float>(b));
    ListNetRows<<<static_cast<unsigned>(b), kThreads>>>(teacher_.get(), s_ivf_.get(), c, batch.tau, grad_scale,
                                                        g_ivf_.get(), loss_.get());
    M3VDB_RETURN_IF_ERROR(Launched("ListNetRows"));
    ListNetRows<<<static_cast<unsigned>(b), kThreads>>>(teacher_.get(), s_pq_.get(), c, batch.tau, grad_scale,
                                                        g_pq_.get(), loss_.get() + b);
    M3VDB_RETURN_IF_ERROR(Launched("ListNetRows"));

    // Backward to the reconstructions and to the centroid rows, then per list.
    M3VDB_RETURN_IF_ERROR(ScoreBackward(l2, g_pq_.get(), ib, recon_.get(), ic, id, g_recon_.get()));
    M3VDB_RETURN_IF_ERROR(ScoreBackward(l2, g_ivf_.get(), ib, cent_.get(), ic, id, g_cent_.get()));
    SumByList<<<static_cast<unsigned>(L), kThreads>>>(g_cent_.get(), order_.get(), offsets_.get(), id,
                                                      grad_cent_.get());
    M3VDB_RETURN_IF_ERROR(Launched("SumByList"));

    // Straight-through backward into the codebooks: dp[m] = G_m C_m^T (into mk), dz = softmax
    // backward of dp, dzr[m] = dz_m^T R_m, column sums of dz, then one block per codeword.
    M3VDB_CUBLAS_TRY(cublasSgemmStridedBatched(handle_, CUBLAS_OP_T, CUBLAS_OP_N, iK, ic, ids, &one, pq_.get(), ids,
                                               static_cast<long long>(K * ds), g_recon_.get(), id,
                                               static_cast<long long>(ds), &zero, mk_.get(), iK,
                                               static_cast<long long>(c * K), iM));
    SoftmaxBackward<<<static_cast<unsigned>(M * c), kThreads>>>(soft_.get(), mk_.get(), iK, 1.0f / batch.tau_code);
    M3VDB_RETURN_IF_ERROR(Launched("SoftmaxBackward"));
    M3VDB_CUBLAS_TRY(cublasSgemmStridedBatched(handle_, CUBLAS_OP_N, CUBLAS_OP_T, ids, iK, ic, &one, resid_.get(), id,
                                               static_cast<long long>(ds), mk_.get(), iK,
                                               static_cast<long long>(c * K), &zero, dzr_.get(), ids,
                                               static_cast<long long>(K * ds), iM));
    ColumnSums<<<Blocks(M * K, kThreads), kThreads>>>(mk_.get(), M, c, K, dz_colsum_.get());
    M3VDB_RETURN_IF_ERROR(Launched("ColumnSums"));
    const int word_threads = std::clamp((ids + 31) / 32 * 32, 32, kThreads);
    PqGradients<<<static_cast<unsigned>(M * K), word_threads>>>(codes_.get(), g_recon_.get(), dzr_.get(),
                                                                dz_colsum_.get(), pq_.get(), c, iM, iK, ids,
                                                                grad_pq_.get());
    M3VDB_RETURN_IF_ERROR(Launched("PqGradients"));

    // Download (cudaMemcpy waits for the kernels and reports their errors).
    std::vector<float> loss(2 * b);
    out->grad_pq.resize(M * K * ds);
    out->grad_centroids_ivf.resize(L * d);
    M3VDB_CUDA_TRY(cudaMemcpy(loss.data(), loss_.get(), 2 * b * sizeof(float), cudaMemcpyDeviceToHost));
    M3VDB_CUDA_TRY(cudaMemcpy(out->grad_pq.data(), grad_pq_.get(), M * K * ds * sizeof(float), cudaMemcpyDeviceToHost));
    M3VDB_CUDA_TRY(cudaMemcpy(out->grad_centroids_ivf.data(), grad_cent_.get(), L * d * sizeof(float),
                              cudaMemcpyDeviceToHost));
    double ivf = 0, pq = 0;
    for (size_t i = 0; i < b; ++i) {
      ivf += loss[i];
      pq += loss[b + i];
    }
    out->loss_ivf = ivf / static_cast<double>(b);
    out->loss_pq = pq / static_cast<double>(b);
    return Status::OK();
  }

 private:
  // s (b x c) = score(q, y) under the metric: Q Y^T, and for L2 2 Q Y^T - ||q||^2 - ||y||^2
  // (qn_ holds the query norms).
  Status Scores(bool l2, const float* y, int b, int c, int d, float* s) {
    const float one = 1.0f, zero = 0.0f;
    M3VDB_CUBLAS_TRY(cublasSgemm(handle_, CUBLAS_OP_T, CUBLAS_OP_N, c, b, d, &one, y, d, q_.get(), d, &zero, s, c));
    if (!l2) return Status::OK();
    RowSqNorms<<<Blocks(static_cast<size_t>(c) * 32, kThreads), kThreads>>>(y, static_cast<size_t>(c), d, yn_.get());
    M3VDB_RETURN_IF_ERROR(Launched("RowSqNorms"));
    const size_t n = static_cast<size_t>(b) * c;
    L2FromDots<<<Blocks(n, kThreads), kThreads>>>(s, qn_.get(), yn_.get(), static_cast<size_t>(b),
                                                   static_cast<size_t>(c));
    M3VDB_RETURN_IF_ERROR(Launched("L2FromDots"));
    return Status::OK();
  }

  // Given dL/dS (b x c) for S = score(q, y), writes dL/dy (c x d): IP G^T Q; L2 2 G^T Q - 2 colsum(G)_j y_j.
  Status ScoreBackward(bool l2, const float* g, int b, const float* y, int c, int d, float* grad_y) {
    const float scale = l2 ? 2.0f : 1.0f, zero = 0.0f;
    M3VDB_CUBLAS_TRY(
        cublasSgemm(handle_, CUBLAS_OP_N, CUBLAS_OP_T, d, c, b, &scale, q_.get(), d, g, c, &zero, grad_y, d));
    if (!l2) return Status::OK();
    ColumnSums<<<Blocks(static_cast<size_t>(c), kThreads), kThreads>>>(g, 1, static_cast<size_t>(b),
                                                                       static_cast<size_t>(c), colsum_.get());
    M3VDB_RETURN_IF_ERROR(Launched("ColumnSums"));
    const size_t n = static_cast<size_t>(c) * d;
    ScaleRowsAdd<<<Blocks(n, kThreads), kThreads>>>(grad_y, colsum_.get(), y, -2.0f, static_cast<size_t>(c), d);
    M3VDB_RETURN_IF_ERROR(Launched("ScaleRowsAdd"));
    return Status::OK();
  }

  std::mutex mu_;
  cublasHandle_t handle_ = nullptr;
  DeviceArray<float> q_, x_, centroids_, pq_, cent_, resid_, recon_, g_recon_, g_cent_, mk_, soft_, teacher_, s_ivf_,
      s_pq_, g_ivf_, g_pq_, code_norms_, resid_norms_, qn_, yn_, colsum_, dz_colsum_, dzr_, grad_pq_, grad_cent_,
      loss_;
  DeviceArray<uint32_t> lists_, order_, offsets_;
  DeviceArray<uint8_t> codes_;
};

}  // namespace

Result<std::unique_ptr<DistillBackend>> CreateCudaDistillBackend() {
  if (!GpuAvailable()) return Status::Unavailable("no usable CUDA device: " + ProbeGpu().reason);
  auto backend = std::make_unique<CudaDistillBackend>();
  M3VDB_RETURN_IF_ERROR(backend->Init());
  return std::unique_ptr<DistillBackend>(std::move(backend));
}

}  // namespace m3vdb::quant
