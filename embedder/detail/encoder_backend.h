// The encoder layers behind one interface, implemented on the CPU (OpenBLAS) and on CUDA
// (embedder/cuda/). A backend receives a packed batch: the embedded tokens of several
// sequences one after another (no padding rows; each sequence attends only to itself, which
// is what the reference's additive mask on pad keys computes) and overwrites them with the
// last hidden state. Backends are immutable and may be used from several threads at once.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

#include "embedder/detail/worker_team.h"
#include "m3vdb/status.h"

namespace m3vdb::embedder {

class EncoderBackend {
 public:
  virtual ~EncoderBackend() = default;
  virtual std::string_view name() const = 0;
  // `x`: size offsets.back() * hidden; sequence s is rows [offsets[s], offsets[s+1]).
  virtual Status Run(float* x, std::span<const size_t> offsets, WorkerTeam& team) const = 0;
};

}  // namespace m3vdb::embedder
