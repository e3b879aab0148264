#include "tools/line_reader.h"

#include <zlib.h>

#include <filesystem>

namespace m3vdb::tools {
namespace {
constexpr size_t kChunk = 1 << 20;
}

Result<std::unique_ptr<LineReader>> LineReader::Open(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return Status::NotFound("cannot open " + path + ": " + ec.message());
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) return Status::NotFound("cannot open " + path);
  gzbuffer(f, 1 << 18);
  std::unique_ptr<LineReader> r(new LineReader());
  r->path_ = path;
  r->file_ = f;
  r->file_size_ = size;
  return r;
}

LineReader::~LineReader() {
  if (file_) gzclose(static_cast<gzFile>(file_));
}

uint64_t LineReader::file_position() const {
  const z_off_t at = gzoffset(static_cast<gzFile>(file_));
  return at < 0 ? 0 : static_cast<uint64_t>(at);
}

Status LineReader::Seek(uint64_t offset, uint64_t line) {
  if (gzseek(static_cast<gzFile>(file_), static_cast<z_off_t>(offset), SEEK_SET) < 0)
    return Status::IOError(path_ + ": cannot seek to byte " + std::to_string(offset));
  buffer_.clear();
  pos_ = 0;
  eof_ = false;
  offset_ = offset;
  line_ = line;
  return Status::OK();
}

Status LineReader::Fill() {
  buffer_.erase(0, pos_);
  pos_ = 0;
  const size_t at = buffer_.size();
  buffer_.resize(at + kChunk);
  const int n = gzread(static_cast<gzFile>(file_), buffer_.data() + at, kChunk);
  if (n < 0) {
    int code = 0;
    const char* message = gzerror(static_cast<gzFile>(file_), &code);
    return Status::IOError(path_ + ": cannot read: " + (message ? message : "unknown error"));
  }
  buffer_.resize(at + static_cast<size_t>(n));
  if (n == 0) {
    int code = 0;
    gzerror(static_cast<gzFile>(file_), &code);
    if (code != Z_OK && code != Z_BUF_ERROR) return Status::IOError(path_ + ": damaged gzip stream");
    if (code == Z_BUF_ERROR) return Status::IOError(path_ + ": gzip stream ends early (truncated file)");
    eof_ = true;
  }
  return Status::OK();
}

Result<bool> LineReader::Next(std::string* line) {
  size_t scanned = pos_;
  for (;;) {
    const size_t nl = buffer_.find('\n', scanned);
    if (nl != std::string::npos) {
      size_t end = nl;
      if (end > pos_ && buffer_[end - 1] == '\r') --end;
      line->assign(buffer_, pos_, end - pos_);
      offset_ += nl + 1 - pos_;
      pos_ = nl + 1;
      ++line_;
      return true;
    }
    if (eof_) {
      if (pos_ == buffer_.size()) return false;
      line->assign(buffer_, pos_, buffer_.size() - pos_);  // last line without "\n"
      offset_ += buffer_.size() - pos_;
      pos_ = buffer_.size();
      ++line_;
      return true;
    }
    scanned = buffer_.size() - pos_;
    M3VDB_RETURN_IF_ERROR(Fill());
  }
}

}  // namespace m3vdb::tools
