// Reader for the IDX files of Fashion-MNIST as Debian's dataset-fashion-mnist ships them
// (gzip-compressed idx3-ubyte images, 28x28 unsigned bytes per image).
#pragma once

#include <string>
#include <vector>

#include "m3vdb/status.h"

namespace m3vdb::tools {

inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

struct Matrix {
  std::vector<float> data;  // rows x cols, row-major
  size_t rows = 0, cols = 0;
  const float* row(size_t i) const { return data.data() + i * cols; }
};

// Reads an idx3-ubyte(.gz) image file; pixels become floats in [0, 1].
Result<Matrix> ReadIdxImages(const std::string& path);

// L2-normalizes every row in place (rows of zeros stay zero).
void NormalizeRows(Matrix* m);

}  // namespace m3vdb::tools
