#include "storage/keys.h"

namespace m3vdb::storage {

void AppendBigEndian64(std::string* out, uint64_t value) {
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>((value >> shift) & 0xff));
}

bool ReadBigEndian64(std::string_view in, size_t pos, uint64_t* value) {
  if (in.size() < pos + 8) return false;
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(in[pos + i]);
  *value = v;
  return true;
}

std::string CollectionKey(std::string_view name) {
  std::string key(kCollectionKeyPrefix);
  key.append(name);
  return key;
}

std::string NextDocIdKey(uint64_t collection_id) {
  std::string key = "next_doc_id/";
  AppendBigEndian64(&key, collection_id);
  return key;
}

std::string CodebooksKey(uint64_t collection_id) {
  std::string key = "codebooks/";
  AppendBigEndian64(&key, collection_id);
  return key;
}

std::string ProgressMarkerKey(uint64_t collection_id) {
  std::string key = "progress/";
  AppendBigEndian64(&key, collection_id);
  return key;
}

std::string TrainCheckpointKey(uint64_t collection_id) {
  std::string key = "train_checkpoint/";
  AppendBigEndian64(&key, collection_id);
  return key;
}

std::string CollectionPrefix(uint64_t collection_id) {
  std::string key;
  AppendBigEndian64(&key, collection_id);
  return key;
}

std::string CollectionPrefixEnd(uint64_t collection_id) { return CollectionPrefix(collection_id + 1); }

std::string DocKey(uint64_t collection_id, uint64_t internal_id) {
  std::string key;
  key.reserve(16);
  AppendBigEndian64(&key, collection_id);
  AppendBigEndian64(&key, internal_id);
  return key;
}

bool ParseDocKey(std::string_view key, uint64_t* collection_id, uint64_t* internal_id) {
  return key.size() == 16 && ReadBigEndian64(key, 0, collection_id) &&
         ReadBigEndian64(key, 8, internal_id);
}

std::string UserIdKey(uint64_t collection_id, std::string_view user_id) {
  std::string key = CollectionPrefix(collection_id);
  key.push_back('U');
  key.append(user_id);
  return key;
}

std::string InternalIdKey(uint64_t collection_id, uint64_t internal_id) {
  std::string key = InternalIdPrefix(collection_id);
  AppendBigEndian64(&key, internal_id);
  return key;
}

std::string InternalIdPrefix(uint64_t collection_id) {
  std::string key = CollectionPrefix(collection_id);
  key.push_back('I');
  return key;
}

}  // namespace m3vdb::storage
