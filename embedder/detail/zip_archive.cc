#include "embedder/detail/zip_archive.h"

#include <cstring>

namespace m3vdb::embedder {
namespace {

uint64_t Le(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

constexpr uint32_t kEocd = 0x06054b50, kEocd64 = 0x06064b50, kEocd64Locator = 0x07064b50;
constexpr uint32_t kCentral = 0x02014b50, kLocal = 0x04034b50;

}  // namespace

Result<std::map<std::string, ZipMember>> ReadZipDirectory(const uint8_t* data, size_t size,
                                                          const std::string& path) {
  auto bad = [&](const std::string& why) {
    return Status::Corruption(path + ": not a valid torch zip archive (" + why + ")");
  };
  if (size < 22) return bad("file too short");
  // The end-of-central-directory record is in the last 22 + 65535 bytes.
  size_t eocd = size;
  size_t lowest = size > 22 + 65535 ? size - 22 - 65535 : 0;
  for (size_t i = size - 22 + 1; i-- > lowest;) {
    if (Le(data + i, 4) == kEocd) { eocd = i; break; }
  }
  if (eocd == size) return bad("no end of central directory");
  uint64_t count = Le(data + eocd + 10, 2);
  uint64_t dir_size = Le(data + eocd + 12, 4);
  uint64_t dir_offset = Le(data + eocd + 16, 4);
  if (eocd >= 20 && Le(data + eocd - 20, 4) == kEocd64Locator) {
    uint64_t rec = Le(data + eocd - 20 + 8, 8);
    if (rec > size || size - rec < 56 || Le(data + rec, 4) != kEocd64) return bad("bad zip64 record");
    count = Le(data + rec + 32, 8);
    dir_size = Le(data + rec + 40, 8);
    dir_offset = Le(data + rec + 48, 8);
  }
  if (dir_offset > size || dir_size > size - dir_offset) return bad("central directory out of range");

  std::map<std::string, ZipMember> members;
  size_t pos = dir_offset;
  for (uint64_t n = 0; n < count; ++n) {
    if (size - pos < 46 || Le(data + pos, 4) != kCentral) return bad("bad central directory entry");
    uint16_t method = static_cast<uint16_t>(Le(data + pos + 10, 2));
    uint64_t comp_size = Le(data + pos + 20, 4);
    uint64_t local = Le(data + pos + 42, 4);
    size_t name_len = Le(data + pos + 28, 2), extra_len = Le(data + pos + 30, 2);
    size_t comment_len = Le(data + pos + 32, 2);
    if (size - pos - 46 < name_len + extra_len + comment_len) return bad("entry out of range");
    std::string name(reinterpret_cast<const char*>(data + pos + 46), name_len);
    // Zip64 extended information: present fields follow in a fixed order.
    const uint8_t* extra = data + pos + 46 + name_len;
    for (size_t e = 0; e + 4 <= extra_len;) {
      uint16_t id = static_cast<uint16_t>(Le(extra + e, 2));
      size_t len = Le(extra + e + 2, 2);
      if (e + 4 + len > extra_len) return bad("bad extra field in " + name);
      if (id == 0x0001) {
        const uint8_t* f = extra + e + 4;
        size_t left = len;
        uint64_t uncomp = Le(data + pos + 24, 4);
        auto take = [&](uint64_t& v) {
          if (v == 0xFFFFFFFFu && left >= 8) { v = Le(f, 8); f += 8; left -= 8; }
        };
        take(uncomp);
        take(comp_size);
        take(local);
      }
      e += 4 + len;
    }
    if (local > size || size - local < 30 || Le(data + local, 4) != kLocal) return bad("bad local header of " + name);
    size_t start = local + 30 + Le(data + local + 26, 2) + Le(data + local + 28, 2);
    if (start > size || comp_size > size - start) return bad("member " + name + " out of range");
    members[name] = ZipMember{data + start, static_cast<size_t>(comp_size), method};
    pos += 46 + name_len + extra_len + comment_len;
  }
  return members;
}

}  // namespace m3vdb::embedder
