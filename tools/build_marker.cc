#include "tools/build_marker.h"

#include <nlohmann/json.hpp>

#include "tools/corpus_record.h"

namespace m3vdb::tools {

using nlohmann::json;

std::string BuildMarker::Serialize() const {
  json j = {{"version", 1},          {"phase", phase},         {"input", input},
            {"input_bytes", input_bytes}, {"batch", batch},     {"offset", offset},
            {"line", line},          {"accepted", accepted},   {"skipped", skipped},
            {"batch_duplicates", batch_duplicates},            {"tokens", tokens},
            {"seconds", seconds},    {"sample", sample}};
  return j.dump();
}

Result<BuildMarker> BuildMarker::Parse(std::string_view bytes) {
  json j = json::parse(bytes, nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.value("version", 0) != 1)
    return Status::InvalidArgument("the collection's progress marker was not written by this version of m3vdb build");
  try {
    BuildMarker m;
    m.phase = j.at("phase").get<std::string>();
    m.input = j.at("input").get<std::string>();
    m.input_bytes = j.at("input_bytes").get<uint64_t>();
    m.batch = j.at("batch").get<uint64_t>();
    m.offset = j.at("offset").get<uint64_t>();
    m.line = j.at("line").get<uint64_t>();
    m.accepted = j.at("accepted").get<uint64_t>();
    m.skipped = j.at("skipped").get<uint64_t>();
    m.batch_duplicates = j.at("batch_duplicates").get<uint64_t>();
    m.tokens = j.at("tokens").get<uint64_t>();
    m.seconds = j.at("seconds").get<std::map<std::string, double>>();
    m.sample = j.at("sample").get<std::vector<std::string>>();
    if (m.phase != "write" && m.phase != "train" && m.phase != "done")
      return Status::InvalidArgument("progress marker: unknown phase '" + m.phase + "'");
    return m;
  } catch (const json::exception& e) {
    return Status::InvalidArgument(std::string("progress marker is malformed: ") + e.what());
  }
}

void RecallSample::Add(const std::string& id) {
  if (k_ == 0) return;
  const uint64_t h = Fnv1a(id);
  if (items_.size() >= k_ && std::pair(h, id) >= *items_.rbegin()) return;
  items_.emplace(h, id);
  if (items_.size() > k_) items_.erase(std::prev(items_.end()));
}

void RecallSample::Load(const std::vector<std::string>& ids) {
  items_.clear();
  for (const auto& id : ids) Add(id);
}

std::vector<std::string> RecallSample::Ids() const {
  std::vector<std::string> out;
  for (const auto& [h, id] : items_) out.push_back(id);
  return out;
}

}  // namespace m3vdb::tools
