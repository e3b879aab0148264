// Which modes a text item still needs from the model, and filling them in: shared by the
// engine's text collections (text_encoding.cc) and `m3vdb build`'s embed phase, which encodes
// a batch itself to count its tokens and time. Depends on the public types only.
#pragma once

#include <utility>

#include "m3vdb/m3vdb.h"

namespace m3vdb::engine {

// Whether `item` (a Document or a Query) carries text and lacks a mode `schema` stores
// (dense always, sparse / ColBERT when the schema has them): then its text is encoded.
template <class T>
bool LacksModes(const CollectionSchema& schema, const T& item) {
  if (item.text.empty()) return false;
  return item.dense.empty() || (schema.sparse && item.sparse.empty()) || (schema.colbert && item.colbert.empty());
}

// Moves the parts of `e` that `item` lacks (and `schema` stores) into `item`; given parts stay.
template <class T>
void FillMissingModes(const CollectionSchema& schema, TextEmbedding&& e, T* item) {
  if (item->dense.empty()) item->dense = std::move(e.dense);
  if (schema.sparse && item->sparse.empty()) item->sparse = std::move(e.sparse);
  if (schema.colbert && item->colbert.empty()) item->colbert = std::move(e.colbert);
}

}  // namespace m3vdb::engine
