#include "tools/fashion_mnist.h"

#include <zlib.h>

#include <cmath>

namespace m3vdb::tools {
namespace {

uint32_t BigEndian32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

}  // namespace

Result<Matrix> ReadIdxImages(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");  // reads plain files too
  if (!f) return Status::NotFound("cannot open " + path);
  std::vector<unsigned char> bytes;
  unsigned char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) bytes.insert(bytes.end(), buf, buf + n);
  const bool failed = n < 0;
  gzclose(f);
  if (failed) return Status::IOError("cannot decompress " + path);
  if (bytes.size() < 16 || BigEndian32(bytes.data()) != 0x00000803)
    return Status::InvalidArgument(path + " is not an idx3-ubyte image file");
  Matrix m;
  m.rows = BigEndian32(bytes.data() + 4);
  m.cols = size_t{BigEndian32(bytes.data() + 8)} * BigEndian32(bytes.data() + 12);
  if (bytes.size() != 16 + m.rows * m.cols)
    return Status::InvalidArgument(path + " has " + std::to_string(bytes.size()) + " bytes, header promises " +
                                   std::to_string(16 + m.rows * m.cols));
  m.data.resize(m.rows * m.cols);
  for (size_t i = 0; i < m.data.size(); ++i) m.data[i] = bytes[16 + i] / 255.0f;
  return m;
}

void NormalizeRows(Matrix* m) {
  for (size_t i = 0; i < m->rows; ++i) {
    float* r = m->data.data() + i * m->cols;
    double s = 0;
    for (size_t j = 0; j < m->cols; ++j) s += double{r[j]} * r[j];
    if (s == 0) continue;
    const float inv = static_cast<float>(1.0 / std::sqrt(s));
    for (size_t j = 0; j < m->cols; ++j) r[j] *= inv;
  }
}

}  // namespace m3vdb::tools
