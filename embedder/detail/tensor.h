// A borrowed view of one tensor inside a mapped checkpoint file, and the table of them a
// checkpoint reader produces. Data is contiguous, row-major, little-endian.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "embedder/detail/mapped_file.h"
#include "m3vdb/status.h"

namespace m3vdb::embedder {

enum class DType { kF32, kF16, kBF16, kI64, kOther };

struct TensorRef {
  DType dtype = DType::kOther;
  std::string dtype_name;       // as the file spells it ("F16", "HalfStorage", ...)
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;  // points into the mapped file
  size_t nbytes = 0;

  size_t numel() const;
};

size_t DTypeSize(DType dtype);  // 0 for kOther

// The tensors of one checkpoint file; keeps the mapping alive.
struct TensorFile {
  std::unique_ptr<MappedFile> file;
  std::map<std::string, TensorRef> tensors;
};

// Converts a floating-point tensor (F32, F16, BF16) to float32. `out` has room for numel().
// InvalidArgument naming `what` for any other dtype.
Status ToFloat(const TensorRef& t, const std::string& what, float* out);

}  // namespace m3vdb::embedder
