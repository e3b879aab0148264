// A console reporter for peer comparisons: prints Google Benchmark's usual output and keeps one
// counter of every run, so that after the runs a table of m3vdb/peer ratios can be printed.
//
// Benchmarks are named "<case>/<engine>" (e.g. "dense/l2/batch:1000/threads:1/m3vdb"); the
// reporter keys results by case and engine. With --benchmark_repetitions=N it uses the
// "median" aggregate; otherwise the median of the iteration runs it saw.
#pragma once

#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

namespace m3vdb::bench {

class RatioReporter : public benchmark::ConsoleReporter {
 public:
  explicit RatioReporter(std::string counter)
      : benchmark::ConsoleReporter(isatty(fileno(stdout)) ? OO_Color : OO_None), counter_(std::move(counter)) {}

  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      if (run.error_occurred) continue;
      auto it = run.counters.find(counter_);
      if (it == run.counters.end()) continue;
      const std::string& name = run.run_name.function_name;
      const size_t slash = name.rfind('/');
      if (slash == std::string::npos) continue;
      Cell& cell = cells_[name.substr(0, slash)][name.substr(slash + 1)];
      if (run.run_type == Run::RT_Aggregate) {
        if (run.aggregate_name == "median") cell.median = it->second.value;
      } else {
        cell.samples.push_back(it->second.value);
      }
    }
    ConsoleReporter::ReportRuns(runs);
  }

  // Prints "case | ours | peer | ours/peer" for every case that has both engines.
  void PrintRatios(const std::string& ours, const std::string& peer) {
    if (cells_.empty()) return;
    std::printf("\nMedian %s, %s vs %s:\n", counter_.c_str(), ours.c_str(), peer.c_str());
    std::printf("%-44s %14s %14s %9s\n", "case", ours.c_str(), peer.c_str(), "ratio");
    for (auto& [name, engines] : cells_) {
      auto a = engines.find(ours), b = engines.find(peer);
      if (a == engines.end() || b == engines.end()) continue;
      const double x = a->second.Median(), y = b->second.Median();
      std::printf("%-44s %14.1f %14.1f %9.3f\n", name.c_str(), x, y, y > 0 ? x / y : 0.0);
    }
    std::fflush(stdout);
  }

 private:
  struct Cell {
    double median = -1;
    std::vector<double> samples;
    double Median() {
      if (median >= 0 || samples.empty()) return median;
      std::sort(samples.begin(), samples.end());
      const size_t n = samples.size();
      return n % 2 ? samples[n / 2] : (samples[n / 2 - 1] + samples[n / 2]) / 2;
    }
  };
  std::string counter_;
  std::map<std::string, std::map<std::string, Cell>> cells_;
};

}  // namespace m3vdb::bench
