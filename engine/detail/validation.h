// Input validation for the engine: every check the public API promises, with messages that
// name what was wrong. Nothing here touches storage.
#pragma once

#include <span>
#include <string>

#include "m3vdb/m3vdb.h"

namespace m3vdb::engine {

Status ValidateCollectionName(const std::string& name);
// Checks the schema and resolves colbert_dim (0 -> dense_dim).
Status ValidateSchema(const Limits& limits, CollectionSchema* schema);

// Checks every document of a batch (including duplicate ids); `batch_index` positions are
// reported in messages as "document <i> (id '<id>')".
Status ValidateBatch(const CollectionSchema& schema, const Limits& limits, std::span<const Document> batch);
// The checks that must pass before any text of a batch is encoded: the batch size and every
// text's size.
Status ValidateBatchTexts(const Limits& limits, std::span<const Document> batch);
Status ValidateIds(const Limits& limits, std::span<const std::string> ids);

// The text part of a query (checked before encoding): only model collections take text.
Status ValidateQueryText(const CollectionSchema& schema, const Limits& limits, const Query& query);
Status ValidateQuery(const CollectionSchema& schema, const Limits& limits, const Query& query);
Status ValidateSearchOptions(const Limits& limits, const SearchOptions& options);

}  // namespace m3vdb::engine
