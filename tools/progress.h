// A progress reporter for long work: on a terminal, one live line ("\r") with done/total, rate
// and ETA; otherwise (logs, CI) a line every few seconds. Thread-compatible (one owner).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace m3vdb::tools {

class Progress {
 public:
  Progress(std::string phase, uint64_t total, std::string unit);
  void Advance(uint64_t n);
  // Replaces the total (an estimate that improves as work goes on, e.g. from bytes read).
  void SetTotal(uint64_t total) { total_ = total; }
  // Starts the count at `done` (work finished by an earlier, interrupted run): the rate and
  // ETA count only what this run does.
  void Resume(uint64_t done) { done_ = base_ = done; }
  // Extra text shown at the end of the line (e.g. "loss 0.4312").
  void SetNote(std::string note) { note_ = std::move(note); }
  // Prints the final line with the average rate.
  void Finish();
  double seconds() const;

 private:
  void Print(bool final);
  using Clock = std::chrono::steady_clock;
  std::string phase_, unit_, note_;
  uint64_t total_, done_ = 0, base_ = 0;
  bool tty_;
  Clock::time_point start_, last_print_;
};

}  // namespace m3vdb::tools
