// The encoder layers on CUDA: weights copied to the device once; per call the packed batch is
// uploaded, run through the layers (cuBLAS for every GEMM, kernels below for bias, LayerNorm,
// GELU and softmax) and downloaded. Attention runs per sequence over groups of heads so that
// at most ~256 Mi scores exist at once. One call at a time per backend (a mutex).
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <mutex>
#include <string>
#include <vector>

#include "embedder/cuda/cuda_encoder.h"

namespace m3vdb::embedder {
namespace {

__global__ void BiasRows(float* y, const float* b, size_t rows, int n) {
  size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x;
  if (i < rows * n) y[i] = b[i % n];
}

__global__ void Gelu(float* x, size_t n) {
  size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x;
  if (i < n) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

__device__ float BlockSum(float v, float* shared) {
  for (int o = 16; o > 0; o /= 2) v += __shfl_down_sync(0xffffffffu, v, o);
  int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  float total = 0;
  for (int w = 0; w < (blockDim.x + 31) / 32; ++w) total += shared[w];
  return total;
}

__device__ float BlockMax(float v, float* shared) {
  for (int o = 16; o > 0; o /= 2) v = fmaxf(v, __shfl_down_sync(0xffffffffu, v, o));
  int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  float m = shared[0];
  for (int w = 1; w < (blockDim.x + 31) / 32; ++w) m = fmaxf(m, shared[w]);
  return m;
}

// x[row] = LayerNorm(x[row] + add[row]); one block per row.
__global__ void AddLayerNorm(float* x, const float* add, const float* g, const float* b, int n, float eps) {
  __shared__ float shared[32];
  float* row = x + blockIdx.x * static_cast<size_t>(n);
  const float* a = add ? add + blockIdx.x * static_cast<size_t>(n) : nullptr;
  float sum = 0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    if (a) row[i] += a[i];
    sum += row[i];
  }
  float mean = BlockSum(sum, shared) / n;
  float var = 0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) var += (row[i] - mean) * (row[i] - mean);
  float inv = rsqrtf(BlockSum(var, shared) / n + eps);
  for (int i = threadIdx.x; i < n; i += blockDim.x) row[i] = (row[i] - mean) * inv * g[i] + b[i];
}

// Row softmax in place; one block per row.
__global__ void Softmax(float* s, int n) {
  __shared__ float shared[32];
  float* row = s + blockIdx.x * static_cast<size_t>(n);
  float m = -INFINITY;
  for (int i = threadIdx.x; i < n; i += blockDim.x) m = fmaxf(m, row[i]);
  m = BlockMax(m, shared);
  float sum = 0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    row[i] = __expf(row[i] - m);
    sum += row[i];
  }
  float inv = 1.0f / BlockSum(sum, shared);
  for (int i = threadIdx.x; i < n; i += blockDim.x) row[i] *= inv;
}

struct DeviceLinear {
  float* w = nullptr;
  float* b = nullptr;
  int out = 0, in = 0;
};

struct DeviceLayer {
  DeviceLinear q, k, v, o, f1, f2;
  float *ln1_g, *ln1_b, *ln2_g, *ln2_b;
};

class CudaEncoder final : public EncoderBackend {
 public:
  explicit CudaEncoder(const ModelConfig& c) : config_(c) {}
  ~CudaEncoder() override {
    for (float* p : allocations_) cudaFree(p);
    if (handle_ != nullptr) cublasDestroy(handle_);
  }
  std::string_view name() const override { return "cuda"; }

  Status Init(const ModelWeights& m) {
    if (cublasCreate(&handle_) != CUBLAS_STATUS_SUCCESS) return Status::Unavailable("cublasCreate failed");
    for (const LayerWeights& l : m.layers) {
      DeviceLayer d;
      M3VDB_ASSIGN_OR_RETURN(d.q, Upload(l.q));
      M3VDB_ASSIGN_OR_RETURN(d.k, Upload(l.k));
      M3VDB_ASSIGN_OR_RETURN(d.v, Upload(l.v));
      M3VDB_ASSIGN_OR_RETURN(d.o, Upload(l.attn_out));
      M3VDB_ASSIGN_OR_RETURN(d.f1, Upload(l.ffn_in));
      M3VDB_ASSIGN_OR_RETURN(d.f2, Upload(l.ffn_out));
      const int h = config_.hidden;
      M3VDB_ASSIGN_OR_RETURN(d.ln1_g, Copy(l.attn_ln.gamma, h));
      M3VDB_ASSIGN_OR_RETURN(d.ln1_b, Copy(l.attn_ln.beta, h));
      M3VDB_ASSIGN_OR_RETURN(d.ln2_g, Copy(l.ffn_ln.gamma, h));
      M3VDB_ASSIGN_OR_RETURN(d.ln2_b, Copy(l.ffn_ln.beta, h));
      layers_.push_back(d);
    }
    return Status::OK();
  }

  Status Run(float* x, std::span<const size_t> offsets, WorkerTeam&) const override {
    std::lock_guard<std::mutex> lock(mu_);
    const size_t t = offsets.back(), h = config_.hidden, f = config_.ffn;
    size_t max_len = 0;
    for (size_t s = 0; s + 1 < offsets.size(); ++s) max_len = std::max(max_len, offsets[s + 1] - offsets[s]);
    const size_t max_scores = size_t{256} << 20;
    size_t group = std::clamp<size_t>(max_scores / std::max<size_t>(1, max_len * max_len), 1, config_.heads);
    Buffers buf;
    Status s = buf.Alloc({t * h, t * h, t * h, t * h, t * h, t * f, group * max_len * max_len});
    if (!s.ok()) return s;
    float *dx = buf.p[0], *q = buf.p[1], *k = buf.p[2], *v = buf.p[3], *ctx = buf.p[4], *ffn = buf.p[5],
          *scores = buf.p[6];
    if (cudaMemcpy(dx, x, t * h * 4, cudaMemcpyHostToDevice) != cudaSuccess) return Error("upload");
    for (const DeviceLayer& l : layers_) {
      Linear(dx, t, l.q, q);
      Linear(dx, t, l.k, k);
      Linear(dx, t, l.v, v);
      Attention(q, k, v, ctx, scores, offsets, group);
      Linear(ctx, t, l.o, q);
      AddLayerNorm<<<static_cast<unsigned>(t), 256>>>(dx, q, l.ln1_g, l.ln1_b, static_cast<int>(h), config_.eps);
      Linear(dx, t, l.f1, ffn);
      Gelu<<<static_cast<unsigned>((t * f + 255) / 256), 256>>>(ffn, t * f);
      Linear(ffn, t, l.f2, q);
      AddLayerNorm<<<static_cast<unsigned>(t), 256>>>(dx, q, l.ln2_g, l.ln2_b, static_cast<int>(h), config_.eps);
    }
    if (cudaMemcpy(x, dx, t * h * 4, cudaMemcpyDeviceToHost) != cudaSuccess) return Error("download");
    return Status::OK();
  }

 private:
  struct Buffers {
    std::vector<float*> p;
    ~Buffers() {
      for (float* q : p) cudaFree(q);
    }
    Status Alloc(std::initializer_list<size_t> sizes) {
      for (size_t n : sizes) {
        float* q = nullptr;
        if (cudaMalloc(&q, std::max<size_t>(n, 1) * 4) != cudaSuccess)
          return Status::ResourceExhausted("cuda encoder: out of device memory");
        p.push_back(q);
      }
      return Status::OK();
    }
  };

  static Status Error(const char* what) {
    return Status::Internal(std::string("cuda encoder: ") + what + ": " + cudaGetErrorString(cudaGetLastError()));
  }

  Result<float*> Copy(const float* host, size_t n) {
    float* d = nullptr;
    if (cudaMalloc(&d, n * 4) != cudaSuccess) return Status::ResourceExhausted("cuda encoder: weights do not fit");
    allocations_.push_back(d);
    if (cudaMemcpy(d, host, n * 4, cudaMemcpyHostToDevice) != cudaSuccess) return Error("weight upload");
    return d;
  }

  Result<DeviceLinear> Upload(const embedder::Linear& l) {
    DeviceLinear d{nullptr, nullptr, l.out, l.in};
    M3VDB_ASSIGN_OR_RETURN(d.w, Copy(l.w, static_cast<size_t>(l.out) * l.in));
    M3VDB_ASSIGN_OR_RETURN(d.b, Copy(l.b, static_cast<size_t>(l.out)));
    return d;
  }

  // Row-major y[m, out] = x[m, in] W^T + b; in cuBLAS's column-major terms y^T = W x^T.
  void Linear(const float* x, size_t m, const DeviceLinear& l, float* y) const {
    BiasRows<<<static_cast<unsigned>((m * l.out + 255) / 256), 256>>>(y, l.b, m, l.out);
    const float one = 1.0f;
    cublasSgemm(handle_, CUBLAS_OP_T, CUBLAS_OP_N, l.out, static_cast<int>(m), l.in, &one, l.w, l.in, x, l.in,
                &one, y, l.out);
  }

  void Attention(const float* q, const float* k, const float* v, float* ctx, float* scores,
                 std::span<const size_t> offsets, size_t group) const {
    const int h = config_.hidden, hd = config_.hidden / config_.heads;
    const float scale = 1.0f / sqrtf(static_cast<float>(hd)), one = 1.0f, zero = 0.0f;
    for (size_t s = 0; s + 1 < offsets.size(); ++s) {
      const int len = static_cast<int>(offsets[s + 1] - offsets[s]);
      const size_t base = offsets[s] * h;
      for (int h0 = 0; h0 < config_.heads; h0 += static_cast<int>(group)) {
        int count = std::min(static_cast<int>(group), config_.heads - h0);
        const size_t col = static_cast<size_t>(h0) * hd;
        // scores[head] (row-major [q, key]) = Q K^T * scale
        cublasSgemmStridedBatched(handle_, CUBLAS_OP_T, CUBLAS_OP_N, len, len, hd, &scale, k + base + col, h, hd,
                                  q + base + col, h, hd, &zero, scores, len,
                                  static_cast<long long>(len) * len, count);
        Softmax<<<static_cast<unsigned>(count * len), 256>>>(scores, len);
        // ctx[head] (row-major [q, hd], ld hidden) = P V
        cublasSgemmStridedBatched(handle_, CUBLAS_OP_N, CUBLAS_OP_N, hd, len, len, &one, v + base + col, h, hd,
                                  scores, len, static_cast<long long>(len) * len, &zero, ctx + base + col, h, hd,
                                  count);
      }
    }
  }

  ModelConfig config_;
  cublasHandle_t handle_ = nullptr;
  std::vector<float*> allocations_;
  std::vector<DeviceLayer> layers_;
  mutable std::mutex mu_;
};

}  // namespace

Result<std::unique_ptr<EncoderBackend>> CreateCudaEncoder(const ModelWeights& model) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    cudaGetLastError();
    return Status::Unavailable("no usable CUDA device");
  }
  auto encoder = std::make_unique<CudaEncoder>(model.config);
  M3VDB_RETURN_IF_ERROR(encoder->Init(model));
  return std::unique_ptr<EncoderBackend>(std::move(encoder));
}

}  // namespace m3vdb::embedder
