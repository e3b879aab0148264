#include "tools/progress.h"

#include <unistd.h>

#include <cstdio>

namespace m3vdb::tools {

Progress::Progress(std::string phase, uint64_t total, std::string unit)
    : phase_(std::move(phase)), unit_(std::move(unit)), total_(total), tty_(isatty(fileno(stderr)) != 0),
      start_(Clock::now()), last_print_(start_) {}

double Progress::seconds() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

void Progress::Advance(uint64_t n) {
  done_ += n;
  const auto now = Clock::now();
  const auto interval = tty_ ? std::chrono::milliseconds(200) : std::chrono::milliseconds(5000);
  if (now - last_print_ >= interval) {
    last_print_ = now;
    Print(false);
  }
}

void Progress::Finish() { Print(true); }

void Progress::Print(bool final) {
  const double secs = seconds();
  const double rate = secs > 0 ? (done_ - base_) / secs : 0;
  const double eta = rate > 0 && total_ > done_ ? (total_ - done_) / rate : 0;
  const double pct = total_ ? 100.0 * done_ / total_ : 100.0;
  std::fprintf(stderr, "%s%-8s %10llu/%llu %s (%5.1f%%)  %10.1f %s/s  %s %6.1fs  %s%s", tty_ ? "\r" : "",
               phase_.c_str(), static_cast<unsigned long long>(done_), static_cast<unsigned long long>(total_),
               unit_.c_str(), pct, rate, unit_.c_str(), final ? "took" : "ETA", final ? secs : eta, note_.c_str(),
               (final || !tty_) ? "\n" : "");
  std::fflush(stderr);
}

}  // namespace m3vdb::tools
