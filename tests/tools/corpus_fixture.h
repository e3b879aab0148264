// A synthetic JSONL corpus for `m3vdb build` tests, with what the database must hold after the
// build computed independently of the tool: the last valid record of every id. Optional bad
// lines (malformed JSON, missing id, wrong dimension) and repeated ids, within and across
// batches.
#pragma once

#include <zlib.h>

#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "m3vdb/m3vdb.h"

namespace m3vdb::test {

struct ExpectedDoc {
  std::vector<float> dense;
  std::vector<int32_t> sparse_indices;
  std::vector<float> sparse_values;
  nlohmann::json metadata;
  std::string text;
};

struct Corpus {
  std::vector<std::string> lines;
  std::map<std::string, ExpectedDoc> expected;  // id -> last valid record
  std::set<size_t> bad_lines;                   // 1-based line numbers
  size_t valid = 0;                             // valid records, duplicates included
};

// `n` lines of dimension `dim`; every 97th record reuses an earlier id (a duplicate), and
// when `bad` every 211th line is broken in one of three ways.
inline Corpus MakeCorpus(size_t n, int dim, bool bad, unsigned seed = 7) {
  Corpus c;
  std::mt19937 rng(seed);
  std::normal_distribution<float> g;
  for (size_t i = 0; i < n; ++i) {
    const size_t line_no = i + 1;
    std::string id = "doc-" + std::to_string(i);
    if (i % 97 == 50) id = "doc-" + std::to_string(i - (i % 2 ? 1 : 40));  // same batch, or an earlier one
    nlohmann::json j;
    j["id"] = id;
    ExpectedDoc e;
    for (int d = 0; d < dim; ++d) e.dense.push_back(g(rng));
    j["dense"] = e.dense;
    e.text = "text of " + std::to_string(i);
    j["text"] = e.text;
    e.metadata = {{"n", i}, {"tag", i % 3 == 0 ? "a" : "b"}};
    j["metadata"] = e.metadata;
    const int32_t t0 = static_cast<int32_t>(i % 50), t1 = 100 + static_cast<int32_t>(i % 7);
    e.sparse_indices = {t0, t1};
    e.sparse_values = {0.5f, 0.25f};
    if (i % 2) j["sparse"] = {{"indices", {t1, t0}}, {"values", {0.25, 0.5}}};  // unsorted: the tool sorts
    else j["sparse"] = {{std::to_string(t0), 0.5}, {std::to_string(t1), 0.25}};
    std::string line = j.dump();
    if (bad && i % 211 == 100) {
      switch ((i / 211) % 3) {
        case 0: line = line.substr(0, line.size() / 2); break;              // malformed JSON
        case 1: j.erase("id"); line = j.dump(); break;                      // missing id
        default: j["dense"].erase(0); line = j.dump(); break;               // wrong dimension
      }
      c.bad_lines.insert(line_no);
    } else {
      c.expected[id] = e;
      ++c.valid;
    }
    c.lines.push_back(line);
  }
  return c;
}

inline bool WriteLines(const std::string& path, const std::vector<std::string>& lines) {
  const bool gz = path.size() > 3 && path.compare(path.size() - 3, 3, ".gz") == 0;
  if (gz) {
    gzFile f = gzopen(path.c_str(), "wb");
    if (!f) return false;
    for (const auto& l : lines) {
      gzwrite(f, l.data(), static_cast<unsigned>(l.size()));
      gzputc(f, '\n');
    }
    return gzclose(f) == Z_OK;
  }
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return false;
  for (const auto& l : lines) std::fprintf(f, "%s\n", l.c_str());
  return std::fclose(f) == 0;
}

}  // namespace m3vdb::test
