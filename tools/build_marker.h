// The progress marker of `m3vdb build`: where the build stands, committed by the engine in the
// same atomic batch as the documents it describes (Collection::Upsert with a progress marker),
// so that after kill -9 `--resume` continues right after the last committed batch. Layout:
// docs/formats.md, "Progress marker".
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "m3vdb/status.h"

namespace m3vdb::tools {

struct BuildMarker {
  std::string phase = "write";  // "write", "train", "done"
  std::string input;            // input file as given
  uint64_t input_bytes = 0;     // its size
  uint64_t batch = 0;           // input lines (or rows) per batch
  uint64_t offset = 0;          // next input byte (JSONL) or row (vectors) to read
  uint64_t line = 0;            // input lines (rows) read so far
  uint64_t accepted = 0;        // valid records read (before de-duplication)
  uint64_t skipped = 0;         // bad lines skipped
  uint64_t batch_duplicates = 0;  // records collapsed inside one batch (a later one had the same id)
  uint64_t tokens = 0;          // tokens embedded (text collections)
  std::map<std::string, double> seconds;  // time per phase so far
  std::vector<std::string> sample;        // recall sample ids (see RecallSample)

  std::string Serialize() const;
  // InvalidArgument when `bytes` is not a marker this version wrote.
  static Result<BuildMarker> Parse(std::string_view bytes);
};

// A bottom-k sample of ids: the `k` distinct ids with the smallest FNV-1a hash. It depends only
// on the set of ids added, not on their order or on how the input was split into runs.
class RecallSample {
 public:
  explicit RecallSample(size_t k) : k_(k) {}
  void Add(const std::string& id);
  void Load(const std::vector<std::string>& ids);
  std::vector<std::string> Ids() const;

 private:
  size_t k_;
  std::set<std::pair<uint64_t, std::string>> items_;
};

}  // namespace m3vdb::tools
