// Value encoding (format version 1, docs/formats.md). Every value starts with a one-byte record
// version; numbers are little-endian. Decoders check the version and every length against the
// value's size and return Corruption (naming the record kind) instead of reading past the end.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "m3vdb/status.h"

namespace m3vdb::storage {

inline constexpr uint32_t kFormatVersion = 1;  // value of meta/format_version

struct CatalogRecord {
  uint64_t collection_id = 0;
  uint32_t dense_dim = 0;
  uint8_t metric = 0;        // 0 = inner product, 1 = L2
  bool sparse = false;
  bool colbert = false;
  uint32_t colbert_dim = 0;  // resolved width (never 0 when colbert)
  bool model = false;        // embeds text with the database's model (record version 3)
  // Learned-index settings (record version 2; version-1 records decode to these defaults).
  uint32_t index_nlist = 256;
  uint32_t index_m = 0;
  bool index_opq = false;
  bool index_distill = true;
  int32_t index_epochs = 4;
  int32_t index_nprobe = 16;
  uint64_t index_train_threshold = 0;
};
std::string EncodeCatalog(const CatalogRecord& record);
Status DecodeCatalog(std::string_view value, CatalogRecord* record);

struct DocRecord {
  std::string text;
  std::string metadata_json;
};
std::string EncodeDoc(std::string_view text, std::string_view metadata_json);
Status DecodeDoc(std::string_view value, DocRecord* record);

std::string EncodeDense(std::span<const float> vector);
Status DecodeDense(std::string_view value, std::vector<float>* vector);

std::string EncodeSparse(std::span<const int32_t> indices, std::span<const float> values);
Status DecodeSparse(std::string_view value, std::vector<int32_t>* indices, std::vector<float>* values);

// ColBERT: rows x width floats, stored as fp16.
std::string EncodeColbert(std::span<const float> data, uint32_t rows, uint32_t width);
Status DecodeColbertHalves(std::string_view value, std::vector<uint16_t>* halves, uint32_t* rows,
                           uint32_t* width);
Status DecodeColbert(std::string_view value, std::vector<float>* data, uint32_t* rows, uint32_t* width);

// codes: the IVF list and PQ code of one document under codebook generation `generation`.
struct CodeRecord {
  uint64_t generation = 0;
  uint32_t list = 0;
  std::string code;  // m bytes
};
std::string EncodeCode(uint64_t generation, uint32_t list, const uint8_t* code, size_t m);
Status DecodeCode(std::string_view value, CodeRecord* record);

std::string EncodeU64(uint64_t value);
Status DecodeU64(std::string_view value, uint64_t* out);

}  // namespace m3vdb::storage
