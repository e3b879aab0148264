// Fuzz target: every JSON request body decoder of the HTTP API. The first byte picks the body
// kind (collection spec, document batch, search request), the rest is the body. Invariants:
// no crash or exception; a decoded document batch or collection encodes back to JSON.
#include <cstdint>
#include <string_view>

#include "net/detail/json_codec.h"
#include "tests/fuzz/fuzz_support.h"

using namespace m3vdb;
using namespace m3vdb::net::detail;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t kind = data[0] % 3;
  std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  auto json = ParseJsonObject(body);
  if (!json.ok()) {
    if (json.status().message().empty()) fuzz::Fail("parse error without a message");
    return 0;
  }
  switch (kind) {
    case 0: {
      auto spec = DecodeCollectionSpec(*json);
      if (spec.ok()) {
        CollectionInfo info{"c", spec->schema, 0};
        (void)Dump(EncodeCollectionInfo(info, IndexInfo{}));
      } else if (spec.status().message().empty()) {
        fuzz::Fail("collection spec error without a message");
      }
      break;
    }
    case 1: {
      auto batch = DecodeDocumentBatch(*json);
      if (batch.ok()) {
        for (const auto& d : batch->documents) (void)Dump(EncodeDocument(d));
      } else if (batch.status().message().empty()) {
        fuzz::Fail("document batch error without a message");
      }
      break;
    }
    default: {
      auto search = DecodeSearchRequest(*json);
      if (search.ok()) {
        std::vector<SearchHit> hits(1);
        hits[0].id = "x";
        (void)Dump(EncodeSearchResults(hits, *search, 0.5));
      } else if (search.status().message().empty()) {
        fuzz::Fail("search request error without a message");
      }
      break;
    }
  }
  return 0;
}
