// The training checkpoint of a collection (docs/formats.md, "train checkpoint"): what a killed
// or cancelled Collection::Train leaves behind so that the next Train of the same inputs skips
// k-means and resumes Distill-VQ after its last completed epoch, ending with exactly the
// codebooks an uninterrupted Train would have learned.
//
// A checkpoint belongs to one set of training inputs, named by a `TrainFingerprint`:
//   - the documents: their count and a hash of their sorted internal ids. Internal ids are
//     never reused and a document's vector never changes under its internal id (an upsert gives
//     the document a new one), so within a collection the id set names the vectors exactly,
//     without reading them; a dropped collection's checkpoint goes with it.
//   - the training queries (a hash of their values),
//   - the settings: index parameters, seed, the Distill-VQ options that change the result,
//     the trainer backend's name, and a version of the training procedure.
// Train uses a checkpoint only when the whole fingerprint matches; any other (or an
// undecodable) checkpoint is logged and ignored, and overwritten by the new run.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "m3vdb/status.h"
#include "quant/codebooks.h"
#include "quant/distill_state.h"

namespace m3vdb::engine {

struct TrainFingerprint {
  uint64_t documents = 0;
  uint64_t ids_hash = 0;       // Fnv1a64 over the sorted internal ids, 8 bytes LE each
  uint64_t queries_hash = 0;   // Fnv1a64 over the training queries' count and f32 values
  uint64_t settings_hash = 0;  // Fnv1a64 over the settings (see above)

  bool operator==(const TrainFingerprint&) const = default;
  // What differs from `other`, for the log ("documents 1200 vs 1201").
  std::string Difference(const TrainFingerprint& other) const;
};

struct TrainCheckpoint {
  TrainFingerprint fingerprint;
  quant::Codebooks kmeans;                     // the k-means codebooks Distill-VQ starts from
  std::optional<quant::DistillState> distill;  // state after the last completed epoch, if any
};

// `kmeans` and `distill` are the serialized codebooks and state (distill empty: none yet).
std::string EncodeTrainCheckpoint(const TrainFingerprint& fingerprint, std::string_view kmeans,
                                  std::string_view distill);
// Corruption on bad bytes (a wrong version, a length past the end, trailing bytes, a bad
// codebooks record or Distill-VQ state inside).
Result<TrainCheckpoint> DecodeTrainCheckpoint(std::string_view bytes);

}  // namespace m3vdb::engine
