// One line of an `m3vdb build` JSONL corpus turned into a Document:
//   {"id": "doc-1", "text": "...", "metadata": {...},
//    "dense": [..], "sparse": {"indices": [..], "values": [..]} or {"<token id>": w, ...},
//    "colbert": [[..], [..]]}
// "id" is a string or a non-negative integer; every other field is optional. Errors are
// InvalidArgument with a reason that names the field ("\"dense\" has 3 values, the collection
// has dimension 4"); the caller adds the line number. Checks of values against the engine's
// limits (finite numbers, sizes) are left to Collection::Validate.
#pragma once

#include <cstdint>
#include <string_view>

#include "m3vdb/m3vdb.h"

namespace m3vdb::tools {

struct RecordRules {
  uint32_t dense_dim = 0;      // required length of "dense"; 0: any (the first record decides)
  bool dense_required = true;  // false when a model embeds "text"
  bool sparse = false;         // the collection stores sparse weights ("sparse" allowed)
  bool colbert = false;        // the collection stores ColBERT vectors ("colbert" allowed)
};

Result<Document> ParseCorpusLine(std::string_view line, const RecordRules& rules);

// Stable 64-bit FNV-1a hash (used to pick the recall sample independently of input order).
uint64_t Fnv1a(std::string_view bytes);

}  // namespace m3vdb::tools
