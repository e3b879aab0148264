// Index of a zip archive whose members are stored uncompressed, as torch.save writes them
// (PyTorch's zip container: `<name>/data.pkl`, `<name>/data/<key>`, ...). Zip64 records are
// understood; a compressed or encrypted member is an error when it is looked up.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "m3vdb/status.h"

namespace m3vdb::embedder {

struct ZipMember {
  const uint8_t* data = nullptr;  // into the caller's buffer
  size_t size = 0;
  uint16_t method = 0;            // 0 = stored
};

// Reads the central directory of the archive in [data, data+size). `path` names the file in
// errors. Corruption when the bytes are not a well-formed zip archive.
Result<std::map<std::string, ZipMember>> ReadZipDirectory(const uint8_t* data, size_t size,
                                                          const std::string& path);

}  // namespace m3vdb::embedder
