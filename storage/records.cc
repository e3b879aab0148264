#include "storage/records.h"

#include <bit>
#include <cstring>

#include "common/half.h"

namespace m3vdb::storage {
namespace {

static_assert(std::endian::native == std::endian::little, "m3vdb stores little-endian values");

constexpr uint8_t kRecordVersion = 1;

template <class T>
void AppendRaw(std::string* out, const T& v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof v);
}
void AppendBytes(std::string* out, const void* data, size_t n) {
  out->append(static_cast<const char*>(data), n);
}

// Reads fixed-size fields from a value, remembering whether it ran past the end.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  template <class T>
  bool Read(T* v) {
    if (in_.size() - pos_ < sizeof(T)) return false;
    std::memcpy(v, in_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  bool ReadBytes(void* dst, size_t n) {
    if (in_.size() - pos_ < n) return false;
    if (n > 0) std::memcpy(dst, in_.data() + pos_, n);  // dst may be null when n == 0
    pos_ += n;
    return true;
  }
  bool ReadString(std::string* s) {
    uint32_t n;
    if (!Read(&n) || in_.size() - pos_ < n) return false;
    s->assign(in_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  size_t remaining() const { return in_.size() - pos_; }

 private:
  std::string_view in_;
  size_t pos_ = 0;
};

Status CheckVersion(Reader& r, const char* kind) {
  uint8_t version;
  if (!r.Read(&version)) return Status::Corruption(std::string(kind) + " record is empty");
  if (version != kRecordVersion)
    return Status::Corruption(std::string(kind) + " record has unknown version " + std::to_string(version));
  return Status::OK();
}

Status Truncated(const char* kind) { return Status::Corruption(std::string(kind) + " record is truncated"); }
Status Trailing(const char* kind) { return Status::Corruption(std::string(kind) + " record has trailing bytes"); }

}  // namespace

constexpr uint8_t kCatalogVersion = 3;

std::string EncodeCatalog(const CatalogRecord& r) {
  std::string out;
  out.push_back(static_cast<char>(kCatalogVersion));
  AppendRaw(&out, r.collection_id);
  AppendRaw(&out, r.dense_dim);
  AppendRaw(&out, r.metric);
  uint8_t flags = (r.sparse ? 1 : 0) | (r.colbert ? 2 : 0) | (r.model ? 4 : 0);
  AppendRaw(&out, flags);
  AppendRaw(&out, r.colbert_dim);
  const uint8_t index_flags = (r.index_opq ? 1 : 0) | (r.index_distill ? 2 : 0);
  AppendRaw(&out, r.index_nlist);
  AppendRaw(&out, r.index_m);
  AppendRaw(&out, index_flags);
  AppendRaw(&out, r.index_epochs);
  AppendRaw(&out, r.index_nprobe);
  AppendRaw(&out, r.index_train_threshold);
  return out;
}

Status DecodeCatalog(std::string_view value, CatalogRecord* r) {
  Reader in(value);
  uint8_t version;
  if (!in.Read(&version)) return Status::Corruption("catalog record is empty");
  if (version < 1 || version > kCatalogVersion)
    return Status::Corruption("catalog record has unknown version " + std::to_string(version));
  uint8_t flags;
  if (!in.Read(&r->collection_id) || !in.Read(&r->dense_dim) || !in.Read(&r->metric) ||
      !in.Read(&flags) || !in.Read(&r->colbert_dim))
    return Truncated("catalog");
  if (version >= 2) {
    uint8_t index_flags;
    if (!in.Read(&r->index_nlist) || !in.Read(&r->index_m) || !in.Read(&index_flags) ||
        !in.Read(&r->index_epochs) || !in.Read(&r->index_nprobe) || !in.Read(&r->index_train_threshold))
      return Truncated("catalog");
    if (index_flags > 3) return Status::Corruption("catalog record has an unknown index flag");
    r->index_opq = index_flags & 1;
    r->index_distill = index_flags & 2;
  }
  if (in.remaining() != 0) return Trailing("catalog");
  const uint8_t known_flags = version >= 3 ? 7 : 3;  // bit 2 (model) since version 3
  if (r->metric > 1 || flags > known_flags) return Status::Corruption("catalog record has an unknown metric or flag");
  r->sparse = flags & 1;
  r->colbert = flags & 2;
  r->model = flags & 4;
  return Status::OK();
}

std::string EncodeDoc(std::string_view text, std::string_view metadata_json) {
  std::string out;
  out.reserve(9 + text.size() + metadata_json.size());
  out.push_back(static_cast<char>(kRecordVersion));
  AppendRaw(&out, static_cast<uint32_t>(text.size()));
  out.append(text);
  AppendRaw(&out, static_cast<uint32_t>(metadata_json.size()));
  out.append(metadata_json);
  return out;
}

Status DecodeDoc(std::string_view value, DocRecord* r) {
  Reader in(value);
  M3VDB_RETURN_IF_ERROR(CheckVersion(in, "doc"));
  if (!in.ReadString(&r->text) || !in.ReadString(&r->metadata_json)) return Truncated("doc");
  if (in.remaining() != 0) return Trailing("doc");
  return Status::OK();
}

std::string EncodeDense(std::span<const float> v) {
  std::string out;
  out.reserve(5 + v.size_bytes());
  out.push_back(static_cast<char>(kRecordVersion));
  AppendRaw(&out, static_cast<uint32_t>(v.size()));
  AppendBytes(&out, v.data(), v.size_bytes());
  return out;
}

Status DecodeDense(std::string_view value, std::vector<float>* v) {
  Reader in(value);
  M3VDB_RETURN_IF_ERROR(CheckVersion(in, "dense"));
  uint32_t dim;
  if (!in.Read(&dim) || in.remaining() != size_t{dim} * sizeof(float)) return Truncated("dense");
  v->resize(dim);
  if (!in.ReadBytes(v->data(), size_t{dim} * sizeof(float))) return Truncated("dense");
  return Status::OK();
}

std::string EncodeSparse(std::span<const int32_t> indices, std::span<const float> values) {
  std::string out;
  out.reserve(5 + indices.size_bytes() + values.size_bytes());
  out.push_back(static_cast<char>(kRecordVersion));
  AppendRaw(&out, static_cast<uint32_t>(indices.size()));
  AppendBytes(&out, indices.data(), indices.size_bytes());
  AppendBytes(&out, values.data(), values.size_bytes());
  return out;
}

Status DecodeSparse(std::string_view value, std::vector<int32_t>* indices, std::vector<float>* values) {
  Reader in(value);
  M3VDB_RETURN_IF_ERROR(CheckVersion(in, "sparse"));
  uint32_t n;
  if (!in.Read(&n) || in.remaining() != size_t{n} * 8) return Truncated("sparse");
  indices->resize(n);
  values->resize(n);
  if (!in.ReadBytes(indices->data(), size_t{n} * 4) || !in.ReadBytes(values->data(), size_t{n} * 4))
    return Truncated("sparse");
  return Status::OK();
}

std::string EncodeColbert(std::span<const float> data, uint32_t rows, uint32_t width) {
  std::string out;
  out.reserve(9 + data.size() * 2);
  out.push_back(static_cast<char>(kRecordVersion));
  AppendRaw(&out, rows);
  AppendRaw(&out, width);
  for (float f : data) AppendRaw(&out, FloatToHalf(f));
  return out;
}

Status DecodeColbertHalves(std::string_view value, std::vector<uint16_t>* halves, uint32_t* rows,
                           uint32_t* width) {
  Reader in(value);
  M3VDB_RETURN_IF_ERROR(CheckVersion(in, "colbert"));
  if (!in.Read(rows) || !in.Read(width)) return Truncated("colbert");
  const uint64_t n = uint64_t{*rows} * *width;  // < 2^64: two 32-bit factors
  if (in.remaining() % 2 != 0 || in.remaining() / 2 != n) return Truncated("colbert");
  halves->resize(n);
  if (!in.ReadBytes(halves->data(), n * 2)) return Truncated("colbert");
  return Status::OK();
}

Status DecodeColbert(std::string_view value, std::vector<float>* data, uint32_t* rows, uint32_t* width) {
  std::vector<uint16_t> halves;
  M3VDB_RETURN_IF_ERROR(DecodeColbertHalves(value, &halves, rows, width));
  data->resize(halves.size());
  HalvesToFloats(halves.data(), halves.size(), data->data());
  return Status::OK();
}

std::string EncodeCode(uint64_t generation, uint32_t list, const uint8_t* code, size_t m) {
  std::string out;
  out.reserve(13 + m);
  out.push_back(static_cast<char>(kRecordVersion));
  AppendRaw(&out, generation);
  AppendRaw(&out, list);
  AppendBytes(&out, code, m);
  return out;
}

Status DecodeCode(std::string_view value, CodeRecord* r) {
  Reader in(value);
  M3VDB_RETURN_IF_ERROR(CheckVersion(in, "code"));
  if (!in.Read(&r->generation) || !in.Read(&r->list)) return Truncated("code");
  r->code.resize(in.remaining());
  if (!in.ReadBytes(r->code.data(), r->code.size())) return Truncated("code");
  return Status::OK();
}

std::string EncodeU64(uint64_t value) {
  std::string out;
  AppendRaw(&out, value);
  return out;
}

Status DecodeU64(std::string_view value, uint64_t* out) {
  if (value.size() != 8) return Status::Corruption("counter record is not 8 bytes");
  std::memcpy(out, value.data(), 8);
  return Status::OK();
}

}  // namespace m3vdb::storage
