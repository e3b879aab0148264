// safetensors: u64 little-endian header length N, N bytes of JSON
// {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}, then the
// data; offsets are relative to the end of the header.
#include <nlohmann/json.hpp>

#include <cstdint>

#include "embedder/detail/checkpoint_files.h"

namespace m3vdb::embedder {

Result<TensorFile> ReadSafetensors(const std::string& path) {
  TensorFile out;
  M3VDB_ASSIGN_OR_RETURN(out.file, MappedFile::Open(path));
  const uint8_t* data = out.file->data();
  size_t size = out.file->size();
  auto bad = [&](const std::string& why) { return Status::Corruption(path + ": " + why); };
  if (size < 8) return bad("file too short for a safetensors header");
  uint64_t n = 0;
  for (int k = 7; k >= 0; --k) n = (n << 8) | data[k];
  if (n > size - 8) return bad("header length " + std::to_string(n) + " exceeds the file");
  auto header = nlohmann::json::parse(data + 8, data + 8 + n, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object()) return bad("header is not a JSON object");
  const uint8_t* base = data + 8 + n;
  size_t data_size = size - 8 - n;
  for (const auto& item : header.items()) {
    const std::string& name = item.key();  // (not a structured binding: clang 14 cannot capture one)
    const auto& spec = item.value();
    if (name == "__metadata__") continue;
    auto key_bad = [&](const std::string& why) { return bad("tensor '" + name + "': " + why); };
    if (!spec.is_object() || !spec.contains("dtype") || !spec["dtype"].is_string() ||
        !spec.contains("shape") || !spec["shape"].is_array() || !spec.contains("data_offsets") ||
        !spec["data_offsets"].is_array() || spec["data_offsets"].size() != 2)
      return key_bad("malformed entry");
    TensorRef t;
    t.dtype_name = spec["dtype"].get<std::string>();
    if (t.dtype_name == "F32") t.dtype = DType::kF32;
    else if (t.dtype_name == "F16") t.dtype = DType::kF16;
    else if (t.dtype_name == "BF16") t.dtype = DType::kBF16;
    else if (t.dtype_name == "I64") t.dtype = DType::kI64;
    uint64_t numel = 1;
    for (const auto& d : spec["shape"]) {
      if (!d.is_number_unsigned()) return key_bad("bad shape");
      const uint64_t dim = d.get<uint64_t>();
      if (dim > static_cast<uint64_t>(INT64_MAX) || __builtin_mul_overflow(numel, dim, &numel))
        return key_bad("shape overflows");
      t.shape.push_back(static_cast<int64_t>(dim));
    }
    const auto& off = spec["data_offsets"];
    if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned()) return key_bad("bad data_offsets");
    uint64_t begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
    if (begin > end || end > data_size) return key_bad("data_offsets out of range");
    size_t elem = DTypeSize(t.dtype);
    uint64_t bytes = 0;
    if (elem != 0 && (__builtin_mul_overflow(numel, elem, &bytes) || bytes != end - begin))
      return key_bad("data size does not match shape and dtype");
    t.data = base + begin;
    t.nbytes = end - begin;
    out.tensors[name] = std::move(t);
  }
  return out;
}

}  // namespace m3vdb::embedder
