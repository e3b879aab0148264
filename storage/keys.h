// Key encoding (format version 1, docs/formats.md). Keys of per-collection data start with the
// collection id as 8 big-endian bytes, so one collection is one contiguous prefix range, and
// internal ids are big-endian too, so scans return documents in insertion order.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace m3vdb::storage {

void AppendBigEndian64(std::string* out, uint64_t value);
// Reads 8 big-endian bytes at `in[pos]`; false when there are fewer than 8.
bool ReadBigEndian64(std::string_view in, size_t pos, uint64_t* value);

// meta family
inline constexpr std::string_view kFormatVersionKey = "format_version";
inline constexpr std::string_view kNextCollectionIdKey = "next_collection_id";
std::string CollectionKey(std::string_view name);       // "collection/<name>" -> catalog record
inline constexpr std::string_view kCollectionKeyPrefix = "collection/";
std::string NextDocIdKey(uint64_t collection_id);        // "next_doc_id/<cid BE>" -> u64 LE
std::string CodebooksKey(uint64_t collection_id);        // "codebooks/<cid BE>" -> quant::Codebooks bytes
std::string ProgressMarkerKey(uint64_t collection_id);   // "progress/<cid BE>" -> application bytes
std::string TrainCheckpointKey(uint64_t collection_id);  // "train_checkpoint/<cid BE>" -> training checkpoint

// Prefix of every key of one collection in the data families.
std::string CollectionPrefix(uint64_t collection_id);
// First key after the collection's range (for DeleteRange).
std::string CollectionPrefixEnd(uint64_t collection_id);

// docs, dense, sparse, colbert, codes: <cid BE><internal id BE>
std::string DocKey(uint64_t collection_id, uint64_t internal_id);
bool ParseDocKey(std::string_view key, uint64_t* collection_id, uint64_t* internal_id);

// ids: <cid BE>'U'<user id> -> internal id, and <cid BE>'I'<internal id BE> -> user id
std::string UserIdKey(uint64_t collection_id, std::string_view user_id);
std::string InternalIdKey(uint64_t collection_id, uint64_t internal_id);
std::string InternalIdPrefix(uint64_t collection_id);

}  // namespace m3vdb::storage
