// Streams the lines of a text file, plain or gzip-compressed (zlib detects which), with the
// position of each line so that a reader can stop and later continue exactly where it was.
// Memory is one buffer plus the longest line, whatever the file size. One owner, not
// thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "m3vdb/status.h"

namespace m3vdb::tools {

class LineReader {
 public:
  // NotFound when the file cannot be opened.
  static Result<std::unique_ptr<LineReader>> Open(const std::string& path);
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // Continues at a position returned by `offset()`/`line()` earlier. For a compressed file
  // this decompresses up to `offset` (zlib cannot jump in a gzip stream).
  Status Seek(uint64_t offset, uint64_t line);

  // The next line without its "\n" (and "\r\n"); false at the end of the file. IOError when
  // the file cannot be read or is a damaged gzip stream.
  Result<bool> Next(std::string* line);

  // Uncompressed byte offset just past the last line returned, and its 1-based number.
  uint64_t offset() const { return offset_; }
  uint64_t line() const { return line_; }
  // Bytes of the file itself read so far and the file's size (compressed for .gz): progress.
  uint64_t file_position() const;
  uint64_t file_size() const { return file_size_; }

 private:
  LineReader() = default;
  Status Fill();

  std::string path_;
  void* file_ = nullptr;  // gzFile
  uint64_t file_size_ = 0;
  std::string buffer_;
  size_t pos_ = 0;        // first unconsumed byte of buffer_
  bool eof_ = false;
  uint64_t offset_ = 0, line_ = 0;
};

}  // namespace m3vdb::tools
