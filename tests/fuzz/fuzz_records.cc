// Fuzz target: the stored key/value decoders (storage/records.h, storage/keys.h). The first
// byte picks the record kind, the rest is the stored value (or key). Invariants: a corrupt
// value is a Corruption status naming the record, never a crash; a value that decodes
// re-encodes to bytes that decode to the same record.
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "storage/keys.h"
#include "storage/records.h"
#include "tests/fuzz/fuzz_support.h"

using namespace m3vdb;
using namespace m3vdb::storage;

namespace {

void ExpectCorruption(const Status& s, const char* what) {
  if (s.ok()) return;
  if (s.code() != StatusCode::kCorruption) fuzz::Fail(std::string(what) + ": error is not Corruption: " + s.ToString());
  if (s.message().empty()) fuzz::Fail(std::string(what) + ": Corruption without a message");
}

bool SameFloats(const std::vector<float>& a, const std::vector<float>& b) {
  // Bitwise: NaN payloads must survive a round trip too.
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t kind = data[0] % 9;
  std::string_view value(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (kind) {
    case 0: {
      CatalogRecord r;
      Status s = DecodeCatalog(value, &r);
      ExpectCorruption(s, "catalog");
      if (s.ok()) {
        CatalogRecord again;
        if (!DecodeCatalog(EncodeCatalog(r), &again).ok() || EncodeCatalog(again) != EncodeCatalog(r))
          fuzz::Fail("catalog does not round-trip");
      }
      break;
    }
    case 1: {
      DocRecord r;
      Status s = DecodeDoc(value, &r);
      ExpectCorruption(s, "doc");
      if (s.ok()) {
        DocRecord again;
        if (!DecodeDoc(EncodeDoc(r.text, r.metadata_json), &again).ok() || again.text != r.text ||
            again.metadata_json != r.metadata_json)
          fuzz::Fail("doc does not round-trip");
      }
      break;
    }
    case 2: {
      std::vector<float> v;
      Status s = DecodeDense(value, &v);
      ExpectCorruption(s, "dense");
      if (s.ok()) {
        std::vector<float> again;
        if (!DecodeDense(EncodeDense(v), &again).ok() || !SameFloats(v, again)) fuzz::Fail("dense does not round-trip");
      }
      break;
    }
    case 3: {
      std::vector<int32_t> idx;
      std::vector<float> val;
      Status s = DecodeSparse(value, &idx, &val);
      ExpectCorruption(s, "sparse");
      if (s.ok()) {
        if (idx.size() != val.size()) fuzz::Fail("sparse indices and values differ in length");
        std::vector<int32_t> idx2;
        std::vector<float> val2;
        if (!DecodeSparse(EncodeSparse(idx, val), &idx2, &val2).ok() || idx2 != idx || !SameFloats(val, val2))
          fuzz::Fail("sparse does not round-trip");
      }
      break;
    }
    case 4: {
      std::vector<uint16_t> halves;
      uint32_t rows = 0, width = 0;
      Status s = DecodeColbertHalves(value, &halves, &rows, &width);
      ExpectCorruption(s, "colbert");
      if (s.ok() && halves.size() != static_cast<uint64_t>(rows) * width) fuzz::Fail("colbert size is not rows x width");
      break;
    }
    case 5: {
      std::vector<float> v;
      uint32_t rows = 0, width = 0;
      Status s = DecodeColbert(value, &v, &rows, &width);
      ExpectCorruption(s, "colbert");
      if (s.ok() && v.size() != static_cast<uint64_t>(rows) * width) fuzz::Fail("colbert size is not rows x width");
      break;
    }
    case 6: {
      CodeRecord r;
      Status s = DecodeCode(value, &r);
      ExpectCorruption(s, "code");
      if (s.ok()) {
        CodeRecord again;
        const std::string enc = EncodeCode(r.generation, r.list, reinterpret_cast<const uint8_t*>(r.code.data()), r.code.size());
        if (!DecodeCode(enc, &again).ok() || again.generation != r.generation || again.list != r.list || again.code != r.code)
          fuzz::Fail("code does not round-trip");
      }
      break;
    }
    case 7: {
      uint64_t u = 0;
      Status s = DecodeU64(value, &u);
      ExpectCorruption(s, "u64");
      uint64_t again = 0;
      if (s.ok() && (!DecodeU64(EncodeU64(u), &again).ok() || again != u)) fuzz::Fail("u64 does not round-trip");
      break;
    }
    default: {
      uint64_t cid = 0, iid = 0;
      if (ParseDocKey(value, &cid, &iid) && DocKey(cid, iid) != value) fuzz::Fail("doc key does not round-trip");
      break;
    }
  }
  return 0;
}
