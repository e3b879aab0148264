// A read-only memory mapping of a whole file (RAII). Checkpoint readers hand out pointers into
// it, so the mapping must outlive every TensorRef made from it. Movable, not copyable.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "m3vdb/status.h"

namespace m3vdb::embedder {

class MappedFile {
 public:
  // NotFound when the file does not exist, IOError when it cannot be read or mapped.
  static Result<std::unique_ptr<MappedFile>> Open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile(std::string path, const uint8_t* data, size_t size)
      : path_(std::move(path)), data_(data), size_(size) {}
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace m3vdb::embedder
