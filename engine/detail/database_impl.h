// DatabaseImpl: the collection catalog over one Store. `mu_` guards the catalog map and the
// collection-id counter; collection creation and drop are single WriteBatches. The text model
// is acquired (loaded, or shared with other databases of this process) by Database::Open.
#pragma once

#include <map>
#include <memory>
#include <mutex>

#include "engine/detail/collection_impl.h"
#include "m3vdb/m3vdb.h"
#include "storage/store.h"

namespace m3vdb::engine {

class DatabaseImpl final : public Database {
 public:
  // `model`: the shared text model (null when Options::model_dir is empty).
  DatabaseImpl(std::shared_ptr<storage::Store> store, const Options& options, std::shared_ptr<TextModel> model);
  // Checks the format version and restores every collection.
  Status Load();

  Result<std::shared_ptr<Collection>> CreateCollection(const std::string& name,
                                                       const CollectionSchema& schema) override;
  Result<std::shared_ptr<Collection>> GetCollection(const std::string& name) const override;
  std::vector<CollectionInfo> ListCollections() const override;
  Status DropCollection(const std::string& name) override;
  Status Checkpoint(const std::string& dir) const override;
  Result<std::vector<TextEmbedding>> Embed(std::span<const std::string> texts) const override;
  std::optional<ModelInfo> GetModelInfo() const override;

 private:
  const std::shared_ptr<storage::Store> store_;
  const Options options_;
  const std::shared_ptr<TextModel> model_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<CollectionImpl>> collections_;  // guarded by mu_
  uint64_t next_collection_id_ = 1;                                     // guarded by mu_
};

}  // namespace m3vdb::engine
