#include "tools/vector_io.h"

#include <cstdio>
#include <cstring>
#include <memory>
#include <regex>

namespace m3vdb::tools {
namespace {

struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<FILE, FileCloser>;

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Result<std::string> ReadAll(const std::string& path) {
  File f(std::fopen(path.c_str(), "rb"));
  if (!f) return Status::NotFound("cannot open " + path);
  std::string bytes;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f.get())) > 0) bytes.append(buf, n);
  if (std::ferror(f.get())) return Status::IOError("cannot read " + path);
  return bytes;
}

// Parses a .npy header at the start of `bytes`; sets rows, cols and where the data starts.
Status ParseNpyHeader(const std::string& path, const std::string& bytes, size_t* rows, size_t* cols, size_t* data_at) {
  if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0) return Status::InvalidArgument(path + " is not a .npy file");
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t header_len, offset;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) | (static_cast<size_t>(static_cast<unsigned char>(bytes[9])) << 8);
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) return Status::InvalidArgument(path + ": truncated header");
    uint32_t len;
    std::memcpy(&len, bytes.data() + 8, 4);
    header_len = len;
    offset = 12;
  } else {
    return Status::InvalidArgument(path + ": unsupported .npy version " + std::to_string(major));
  }
  if (bytes.size() < offset + header_len) return Status::InvalidArgument(path + ": truncated header");
  const std::string header = bytes.substr(offset, header_len);
  std::smatch match;
  if (!std::regex_search(header, match, std::regex("'descr'\\s*:\\s*'([^']*)'")) || match[1] != "<f4")
    return Status::InvalidArgument(path + ": dtype must be float32 ('<f4'), header: " + header);
  if (std::regex_search(header, match, std::regex("'fortran_order'\\s*:\\s*True")))
    return Status::InvalidArgument(path + ": Fortran-ordered arrays are not supported");
  if (!std::regex_search(header, match, std::regex("'shape'\\s*:\\s*\\(\\s*(\\d+)\\s*,\\s*(\\d+)\\s*\\)")))
    return Status::InvalidArgument(path + ": shape must be 2-D (rows, dim), header: " + header);
  *rows = std::stoull(match[1]);
  *cols = std::stoull(match[2]);
  *data_at = offset + header_len;
  return Status::OK();
}

}  // namespace

Result<Matrix> ReadVectors(const std::string& path) {
  if (EndsWith(path, ".fvecs")) return ReadFvecs(path);
  if (EndsWith(path, ".npy")) return ReadNpy(path);
  return Status::InvalidArgument(path + ": unknown vector file type (expected .fvecs or .npy)");
}

Result<Matrix> ReadFvecs(const std::string& path) {
  M3VDB_ASSIGN_OR_RETURN(std::string bytes, ReadAll(path));
  Matrix m;
  size_t pos = 0;
  while (pos < bytes.size()) {
    int32_t dim;
    if (bytes.size() - pos < 4) return Status::InvalidArgument(path + ": truncated row header at byte " + std::to_string(pos));
    std::memcpy(&dim, bytes.data() + pos, 4);
    if (dim <= 0 || dim > (1 << 20))
      return Status::InvalidArgument(path + ": row " + std::to_string(m.rows) + " has dimension " + std::to_string(dim));
    if (m.rows == 0) m.cols = static_cast<size_t>(dim);
    if (static_cast<size_t>(dim) != m.cols)
      return Status::InvalidArgument(path + ": row " + std::to_string(m.rows) + " has dimension " +
                                     std::to_string(dim) + ", row 0 has " + std::to_string(m.cols));
    pos += 4;
    if (bytes.size() - pos < m.cols * 4) return Status::InvalidArgument(path + ": row " + std::to_string(m.rows) + " is truncated");
    const size_t at = m.data.size();
    m.data.resize(at + m.cols);
    std::memcpy(m.data.data() + at, bytes.data() + pos, m.cols * 4);
    pos += m.cols * 4;
    ++m.rows;
  }
  if (m.rows == 0) return Status::InvalidArgument(path + " holds no vectors");
  return m;
}

Result<Matrix> ReadNpy(const std::string& path) {
  M3VDB_ASSIGN_OR_RETURN(std::string bytes, ReadAll(path));
  Matrix m;
  size_t data_at = 0;
  M3VDB_RETURN_IF_ERROR(ParseNpyHeader(path, bytes, &m.rows, &m.cols, &data_at));
  if (bytes.size() - data_at != m.rows * m.cols * 4)
    return Status::InvalidArgument(path + ": holds " + std::to_string(bytes.size() - data_at) + " data bytes, shape needs " +
                                   std::to_string(m.rows * m.cols * 4));
  m.data.resize(m.rows * m.cols);
  std::memcpy(m.data.data(), bytes.data() + data_at, m.data.size() * 4);
  return m;
}

Result<std::unique_ptr<VectorFileReader>> VectorFileReader::Open(const std::string& path) {
  const bool fvecs = EndsWith(path, ".fvecs");
  if (!fvecs && !EndsWith(path, ".npy"))
    return Status::InvalidArgument(path + ": unknown vector file type (expected .fvecs or .npy)");
  std::unique_ptr<VectorFileReader> r(new VectorFileReader());
  r->path_ = path;
  r->fvecs_ = fvecs;
  r->file_ = std::fopen(path.c_str(), "rb");
  if (!r->file_) return Status::NotFound("cannot open " + path);
  if (std::fseek(r->file_, 0, SEEK_END) != 0) return Status::IOError("cannot seek in " + path);
  const long size_long = std::ftell(r->file_);
  if (size_long < 0) return Status::IOError("cannot seek in " + path);
  const size_t size = static_cast<size_t>(size_long);
  std::rewind(r->file_);
  if (fvecs) {
    int32_t dim = 0;
    if (size < 4 || std::fread(&dim, 4, 1, r->file_) != 1) return Status::InvalidArgument(path + " holds no vectors");
    if (dim <= 0 || dim > (1 << 20)) return Status::InvalidArgument(path + ": row 0 has dimension " + std::to_string(dim));
    r->dim_ = static_cast<size_t>(dim);
    const size_t row_bytes = 4 + 4 * r->dim_;
    if (size % row_bytes != 0)
      return Status::InvalidArgument(path + ": size " + std::to_string(size) + " is not a multiple of the row size " +
                                     std::to_string(row_bytes) + " (dimension " + std::to_string(dim) +
                                     "): truncated, or rows of different dimensions");
    r->rows_ = size / row_bytes;
  } else {
    std::string head(std::min<size_t>(size, 1 << 16), '\0');
    if (std::fread(head.data(), 1, head.size(), r->file_) != head.size()) return Status::IOError("cannot read " + path);
    M3VDB_RETURN_IF_ERROR(ParseNpyHeader(path, head, &r->rows_, &r->dim_, &r->data_offset_));
    if (r->dim_ == 0 || size - r->data_offset_ != r->rows_ * r->dim_ * 4)
      return Status::InvalidArgument(path + ": holds " + std::to_string(size - r->data_offset_) +
                                     " data bytes, shape needs " + std::to_string(r->rows_ * r->dim_ * 4));
  }
  if (r->rows_ == 0) return Status::InvalidArgument(path + " holds no vectors");
  M3VDB_RETURN_IF_ERROR(r->Seek(0));
  return r;
}

VectorFileReader::~VectorFileReader() {
  if (file_) std::fclose(file_);
}

Status VectorFileReader::Seek(uint64_t row) {
  if (row > rows_) return Status::InvalidArgument(path_ + ": row " + std::to_string(row) + " is past the end");
  const size_t row_bytes = fvecs_ ? 4 + 4 * dim_ : 4 * dim_;
  if (std::fseek(file_, static_cast<long>(data_offset_ + row * row_bytes), SEEK_SET) != 0)
    return Status::IOError("cannot seek in " + path_);
  row_ = row;
  return Status::OK();
}

Result<bool> VectorFileReader::Next(std::vector<float>* out) {
  if (row_ >= rows_) return false;
  if (fvecs_) {
    int32_t dim = 0;
    if (std::fread(&dim, 4, 1, file_) != 1) return Status::IOError("cannot read " + path_);
    if (static_cast<size_t>(dim) != dim_)
      return Status::InvalidArgument(path_ + ": row " + std::to_string(row_) + " has dimension " + std::to_string(dim) +
                                     ", row 0 has " + std::to_string(dim_));
  }
  const size_t at = out->size();
  out->resize(at + dim_);
  if (std::fread(out->data() + at, 4, dim_, file_) != dim_) return Status::IOError("cannot read " + path_);
  ++row_;
  return true;
}

Status WriteVectors(const std::string& path, const Matrix& m) {
  File f(std::fopen(path.c_str(), "wb"));
  if (!f) return Status::IOError("cannot create " + path);
  bool ok = true;
  if (EndsWith(path, ".npy")) {
    std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(m.rows) + ", " +
                         std::to_string(m.cols) + "), }";
    while ((10 + header.size() + 1) % 64 != 0) header += ' ';
    header += '\n';
    const uint16_t len = static_cast<uint16_t>(header.size());
    ok &= std::fwrite("\x93NUMPY\x01\x00", 1, 8, f.get()) == 8;
    ok &= std::fwrite(&len, 2, 1, f.get()) == 1;
    ok &= std::fwrite(header.data(), 1, header.size(), f.get()) == header.size();
    ok &= std::fwrite(m.data.data(), 4, m.data.size(), f.get()) == m.data.size();
  } else if (EndsWith(path, ".fvecs")) {
    const int32_t dim = static_cast<int32_t>(m.cols);
    for (size_t i = 0; i < m.rows && ok; ++i) {
      ok &= std::fwrite(&dim, 4, 1, f.get()) == 1;
      ok &= std::fwrite(m.row(i), 4, m.cols, f.get()) == m.cols;
    }
  } else {
    return Status::InvalidArgument(path + ": unknown vector file type (expected .fvecs or .npy)");
  }
  if (!ok) return Status::IOError("cannot write " + path);
  return Status::OK();
}

}  // namespace m3vdb::tools
