// Readers for float32 vector files: `.fvecs` (per row: int32 dimension, then that many floats)
// and `.npy` (NumPy format 1.0-3.0, dtype <f4, C order, 2-D). Errors name the file and what is
// wrong with it.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "tools/fashion_mnist.h"

namespace m3vdb::tools {

// Reads the file by its extension (.fvecs or .npy).
Result<Matrix> ReadVectors(const std::string& path);
Result<Matrix> ReadFvecs(const std::string& path);
Result<Matrix> ReadNpy(const std::string& path);

// Streams the rows of a .fvecs or .npy file without holding the file in memory; the header
// (and, for .fvecs, the file size) is checked at Open. One owner, not thread-safe.
class VectorFileReader {
 public:
  static Result<std::unique_ptr<VectorFileReader>> Open(const std::string& path);
  ~VectorFileReader();
  VectorFileReader(const VectorFileReader&) = delete;
  VectorFileReader& operator=(const VectorFileReader&) = delete;

  size_t rows() const { return rows_; }
  size_t dim() const { return dim_; }
  // Continues at row `row` (<= rows()).
  Status Seek(uint64_t row);
  // Appends the next row (dim() floats) to `out`; false after the last row.
  Result<bool> Next(std::vector<float>* out);
  uint64_t row() const { return row_; }  // rows returned so far (after Seek: its argument)

 private:
  VectorFileReader() = default;
  std::string path_;
  FILE* file_ = nullptr;
  bool fvecs_ = false;
  size_t rows_ = 0, dim_ = 0, data_offset_ = 0;
  uint64_t row_ = 0;
};

// Writes `m` as .npy (format 1.0, <f4) or .fvecs, by extension (used by tests and tools).
Status WriteVectors(const std::string& path, const Matrix& m);

}  // namespace m3vdb::tools
