#include "embedder/detail/tensor.h"

#include <cstring>

#include "common/half.h"

namespace m3vdb::embedder {

size_t TensorRef::numel() const {
  size_t n = 1;
  for (int64_t d : shape) n *= static_cast<size_t>(d);
  return n;
}

size_t DTypeSize(DType dtype) {
  switch (dtype) {
    case DType::kF32: return 4;
    case DType::kF16: return 2;
    case DType::kBF16: return 2;
    case DType::kI64: return 8;
    case DType::kOther: return 0;
  }
  return 0;
}

Status ToFloat(const TensorRef& t, const std::string& what, float* out) {
  size_t n = t.numel();
  switch (t.dtype) {
    case DType::kF32:
      std::memcpy(out, t.data, n * 4);
      return Status::OK();
    case DType::kF16: {
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, t.data + 2 * i, 2);
        out[i] = HalfToFloat(h);
      }
      return Status::OK();
    }
    case DType::kBF16: {
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, t.data + 2 * i, 2);
        uint32_t bits = static_cast<uint32_t>(h) << 16;
        std::memcpy(&out[i], &bits, 4);
      }
      return Status::OK();
    }
    default:
      return Status::InvalidArgument(what + ": unsupported tensor type " + t.dtype_name +
                                     " (expected float32, float16 or bfloat16)");
  }
}

}  // namespace m3vdb::embedder
