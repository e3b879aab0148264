#include "quant/codebooks.h"

#include <cblas.h>

#include <algorithm>
#include <cstring>
#include <limits>

namespace m3vdb::quant {
namespace {

constexpr uint8_t kCodebooksVersion = 1;

// Squared norms of `rows` vectors of width `w`.
void RowNorms(const float* x, size_t rows, size_t w, float* out) {
  for (size_t i = 0; i < rows; ++i) out[i] = cblas_sdot(static_cast<int>(w), x + i * w, 1, x + i * w, 1);
}

}  // namespace

Status IvfPqParams::Validate() const {
  if (dim == 0) return Status::InvalidArgument("index dim must be > 0");
  if (nlist == 0) return Status::InvalidArgument("index nlist must be > 0");
  if (m == 0 || dim % m != 0)
    return Status::InvalidArgument("index m (" + std::to_string(m) + ") must divide the dimension (" +
                                   std::to_string(dim) + ")");
  if (nbits != 8) return Status::InvalidArgument("index nbits must be 8, got " + std::to_string(nbits));
  return Status::OK();
}

Status Codebooks::Validate() const {
  M3VDB_RETURN_IF_ERROR(params.Validate());
  const size_t d = params.dim;
  if (!rotation.empty() && rotation.size() != d * d) return Status::Corruption("codebooks rotation has the wrong size");
  if (centroids.size() != size_t{params.nlist} * d) return Status::Corruption("codebooks centroids have the wrong size");
  if (pq.size() != size_t{params.ksub()} * d) return Status::Corruption("codebooks PQ table has the wrong size");
  return Status::OK();
}

void Codebooks::Rotate(const float* x, size_t n, float* out) const {
  const size_t d = params.dim;
  if (rotation.empty()) {
    if (n > 0) std::memcpy(out, x, n * d * sizeof(float));
    return;
  }
  // out[n x d] = x[n x d] * R^T
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(n), static_cast<int>(d), static_cast<int>(d),
              1.0f, x, static_cast<int>(d), rotation.data(), static_cast<int>(d), 0.0f, out, static_cast<int>(d));
}

std::vector<float> Codebooks::CentroidNorms() const {
  std::vector<float> cn(params.nlist);
  RowNorms(centroids.data(), params.nlist, params.dim, cn.data());
  return cn;
}

void Codebooks::CoarseScores(const float* xr, size_t n, float* out, const float* centroid_norms) const {
  const size_t d = params.dim, L = params.nlist;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(n), static_cast<int>(L), static_cast<int>(d),
              1.0f, xr, static_cast<int>(d), centroids.data(), static_cast<int>(d), 0.0f, out, static_cast<int>(L));
  if (params.geometry() == Metric::kL2) {  // -||x - c||^2 up to the constant ||x||^2
    std::vector<float> computed;
    if (!centroid_norms) centroid_norms = (computed = CentroidNorms()).data();
    for (size_t i = 0; i < n; ++i)
      for (size_t l = 0; l < L; ++l) out[i * L + l] = 2 * out[i * L + l] - centroid_norms[l];
  }
}

void Codebooks::Assign(const float* xr, size_t n, uint32_t* lists, const float* centroid_norms) const {
  const size_t d = params.dim, L = params.nlist, block = 1024;
  std::vector<float> computed;
  if (!centroid_norms) centroid_norms = (computed = CentroidNorms()).data();
  std::vector<float> dots(std::min(n, block) * L);
  for (size_t b = 0; b < n; b += block) {
    const size_t nb = std::min(block, n - b);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(nb), static_cast<int>(L),
                static_cast<int>(d), 1.0f, xr + b * d, static_cast<int>(d), centroids.data(), static_cast<int>(d),
                0.0f, dots.data(), static_cast<int>(L));
    for (size_t i = 0; i < nb; ++i) {
      // argmin ||x - c||^2 = argmax (2 <x, c> - ||c||^2); ties to the smaller list.
      const float* row = dots.data() + i * L;
      size_t arg = 0;
      float best = -std::numeric_limits<float>::infinity();
      for (size_t l = 0; l < L; ++l) {
        const float s = 2 * row[l] - centroid_norms[l];
        if (s > best) {
          best = s;
          arg = l;
        }
      }
      lists[b + i] = static_cast<uint32_t>(arg);
    }
  }
}

void Codebooks::Encode(const float* x, size_t n, uint32_t* lists, uint8_t* codes) const {
  const size_t d = params.dim, block = 1024;
  const std::vector<float> norms = CentroidNorms();
  std::vector<float> xr(std::min(n, block) * d);
  for (size_t b = 0; b < n; b += block) {
    const size_t nb = std::min(block, n - b);
    Rotate(x + b * d, nb, xr.data());
    Assign(xr.data(), nb, lists + b, norms.data());
    EncodeWithLists(xr.data(), nb, lists + b, codes + b * params.code_size());
  }
}

void Codebooks::EncodeWithLists(const float* xr, size_t n, const uint32_t* lists, uint8_t* codes) const {
  const size_t d = params.dim, M = params.m, K = params.ksub(), ds = params.dsub();
  std::vector<float> residual(n * d), sub(n * ds), dots(n * K), cnorm(K);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < d; ++j) residual[i * d + j] = xr[i * d + j] - centroids[size_t{lists[i]} * d + j];
  for (size_t m = 0; m < M; ++m) {
    const float* C = pq.data() + m * K * ds;
    RowNorms(C, K, ds, cnorm.data());
    // dots[n x K] = r_m * C_m^T; argmin ||r - c||^2 = argmin (||c||^2 - 2 <r, c>)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(n), static_cast<int>(K),
                static_cast<int>(ds), 1.0f, residual.data() + m * ds, static_cast<int>(d), C, static_cast<int>(ds),
                0.0f, dots.data(), static_cast<int>(K));
    for (size_t i = 0; i < n; ++i) {
      const float* row = dots.data() + i * K;
      float best = std::numeric_limits<float>::infinity();
      size_t arg = 0;
      for (size_t k = 0; k < K; ++k) {
        const float dist = cnorm[k] - 2 * row[k];
        if (dist < best) {
          best = dist;
          arg = k;
        }
      }
      codes[i * M + m] = static_cast<uint8_t>(arg);
    }
  }
}

void Codebooks::Decode(uint32_t list, const uint8_t* code, float* out) const {
  const size_t d = params.dim, K = params.ksub(), ds = params.dsub();
  for (size_t m = 0; m < params.m; ++m) {
    const float* c = pq.data() + (m * K + code[m]) * ds;
    for (size_t j = 0; j < ds; ++j) out[m * ds + j] = centroids[size_t{list} * d + m * ds + j] + c[j];
  }
}

std::string Codebooks::Serialize() const {
  std::string out;
  auto put = [&out](const void* p, size_t n) { out.append(static_cast<const char*>(p), n); };
  out.push_back(static_cast<char>(kCodebooksVersion));
  // The flags byte: bit 0 OPQ rotation, bit 1 unit_norm.
  const uint8_t metric = params.metric == Metric::kL2 ? 1 : 0,
                opq = (rotation.empty() ? 0 : 1) | (params.unit_norm ? 2 : 0);
  put(&generation, 8);
  put(&params.dim, 4);
  put(&metric, 1);
  put(&params.nlist, 4);
  put(&params.m, 4);
  put(&params.nbits, 4);
  put(&opq, 1);
  put(&params.seed, 8);
  put(rotation.data(), rotation.size() * 4);
  put(centroids.data(), centroids.size() * 4);
  put(pq.data(), pq.size() * 4);
  return out;
}

Result<Codebooks> Codebooks::Parse(std::string_view in) {
  Codebooks b;
  size_t pos = 0;
  auto get = [&](void* p, size_t n) {
    if (in.size() - pos < n) return false;
    if (n > 0) std::memcpy(p, in.data() + pos, n);  // p is null for an empty table
    pos += n;
    return true;
  };
  uint8_t version = 0, metric = 0, opq = 0;
  if (!get(&version, 1)) return Status::Corruption("codebooks record is empty");
  if (version != kCodebooksVersion)
    return Status::Corruption("codebooks record has unknown version " + std::to_string(version));
  if (!get(&b.generation, 8) || !get(&b.params.dim, 4) || !get(&metric, 1) || !get(&b.params.nlist, 4) ||
      !get(&b.params.m, 4) || !get(&b.params.nbits, 4) || !get(&opq, 1) || !get(&b.params.seed, 8))
    return Status::Corruption("codebooks header is truncated");
  if (metric > 1 || opq > 3 || (metric == 1 && (opq & 2)))
    return Status::Corruption("codebooks header has an unknown metric or flag");
  b.params.metric = metric ? Metric::kL2 : Metric::kInnerProduct;
  b.params.unit_norm = (opq & 2) != 0;
  opq &= 1;
  b.params.opq = opq;
  Status valid = b.params.Validate();
  if (!valid.ok()) return Status::Corruption("codebooks header: " + valid.message());
  const size_t d = b.params.dim;
  // In 128 bits: with 32-bit dim and nlist the table sizes can exceed 64 bits, and a wrapped
  // product must not match a short record.
  using U128 = unsigned __int128;
  const U128 expect = (opq ? U128{d} * d : 0) + U128{b.params.nlist} * d + U128{b.params.ksub()} * d;
  if (U128{in.size() - pos} != expect * 4) return Status::Corruption("codebooks record has the wrong size");
  b.rotation.resize(opq ? d * d : 0);
  b.centroids.resize(size_t{b.params.nlist} * d);
  b.pq.resize(size_t{b.params.ksub()} * d);
  get(b.rotation.data(), b.rotation.size() * 4);
  get(b.centroids.data(), b.centroids.size() * 4);
  get(b.pq.data(), b.pq.size() * 4);
  return b;
}

}  // namespace m3vdb::quant
