#include "engine/detail/train_checkpoint.h"

#include <cstring>

namespace m3vdb::engine {
namespace {

constexpr uint8_t kTrainCheckpointVersion = 1;

}  // namespace

std::string TrainFingerprint::Difference(const TrainFingerprint& other) const {
  std::string out;
  auto add = [&out](const std::string& what) { out += (out.empty() ? "" : ", ") + what; };
  if (documents != other.documents)
    add("documents " + std::to_string(documents) + " vs " + std::to_string(other.documents));
  else if (ids_hash != other.ids_hash)
    add("other documents");
  if (queries_hash != other.queries_hash) add("other training queries");
  if (settings_hash != other.settings_hash) add("other index or training settings");
  return out.empty() ? "none" : out;
}

std::string EncodeTrainCheckpoint(const TrainFingerprint& f, std::string_view kmeans, std::string_view distill) {
  std::string out;
  out.reserve(1 + 4 * 8 + 16 + kmeans.size() + distill.size());
  auto put = [&out](const void* p, size_t n) { out.append(static_cast<const char*>(p), n); };
  out.push_back(static_cast<char>(kTrainCheckpointVersion));
  put(&f.documents, 8);
  put(&f.ids_hash, 8);
  put(&f.queries_hash, 8);
  put(&f.settings_hash, 8);
  const uint64_t kmeans_len = kmeans.size(), distill_len = distill.size();
  put(&kmeans_len, 8);
  put(kmeans.data(), kmeans.size());
  put(&distill_len, 8);
  put(distill.data(), distill.size());
  return out;
}

Result<TrainCheckpoint> DecodeTrainCheckpoint(std::string_view in) {
  TrainCheckpoint c;
  size_t pos = 0;
  auto get = [&](void* p, size_t n) {
    if (in.size() - pos < n) return false;
    std::memcpy(p, in.data() + pos, n);
    pos += n;
    return true;
  };
  uint8_t version = 0;
  if (!get(&version, 1)) return Status::Corruption("training checkpoint is empty");
  if (version != kTrainCheckpointVersion)
    return Status::Corruption("training checkpoint has unknown version " + std::to_string(version));
  uint64_t kmeans_len = 0, distill_len = 0;
  if (!get(&c.fingerprint.documents, 8) || !get(&c.fingerprint.ids_hash, 8) || !get(&c.fingerprint.queries_hash, 8) ||
      !get(&c.fingerprint.settings_hash, 8) || !get(&kmeans_len, 8) || in.size() - pos < kmeans_len)
    return Status::Corruption("training checkpoint is truncated");
  auto kmeans = quant::Codebooks::Parse(in.substr(pos, kmeans_len));
  if (!kmeans.ok()) return Status::Corruption("training checkpoint: k-means " + kmeans.status().message());
  c.kmeans = std::move(*kmeans);
  pos += kmeans_len;
  if (!get(&distill_len, 8) || in.size() - pos != distill_len)
    return Status::Corruption("training checkpoint has the wrong size");
  if (distill_len > 0) {
    auto state = quant::DistillState::Parse(in.substr(pos));
    if (!state.ok()) return Status::Corruption("training checkpoint: " + state.status().message());
    c.distill = std::move(*state);
  }
  return c;
}

}  // namespace m3vdb::engine
