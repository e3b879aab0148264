// The pieces under `m3vdb build`: the line reader (plain and gzip, stop and continue), the
// streaming vector reader, the JSONL record parser's errors, the progress marker and the
// order-independent recall sample.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "tests/engine/temp_dir.h"
#include "tests/tools/corpus_fixture.h"
#include "tools/build_marker.h"
#include "tools/corpus_record.h"
#include "tools/line_reader.h"
#include "tools/vector_io.h"

namespace m3vdb {
namespace {

using tools::LineReader;
using tools::RecordRules;

TEST(LineReader, ReadsPlainAndGzipAndContinuesAtAnyLine) {
  test::TempDir dir;
  std::vector<std::string> lines;
  for (int i = 0; i < 5000; ++i) lines.push_back(std::string(static_cast<size_t>(i % 700), 'x') + std::to_string(i));
  lines.push_back("");  // an empty line is a line
  lines.push_back(std::string(3 << 20, 'y'));  // longer than the reader's buffer
  for (const char* name : {"c.jsonl", "c.jsonl.gz"}) {
    const std::string path = dir.Sub(name);
    ASSERT_TRUE(test::WriteLines(path, lines));
    auto r = LineReader::Open(path);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    std::vector<std::pair<uint64_t, uint64_t>> positions;
    std::string line;
    for (size_t i = 0; i < lines.size(); ++i) {
      positions.emplace_back((*r)->offset(), (*r)->line());
      auto more = (*r)->Next(&line);
      ASSERT_TRUE(more.ok() && *more) << name << " line " << i;
      ASSERT_EQ(line, lines[i]) << name << " line " << i;
      ASSERT_EQ((*r)->line(), i + 1);
    }
    auto end = (*r)->Next(&line);
    ASSERT_TRUE(end.ok() && !*end);
    for (size_t at : {size_t{0}, size_t{1}, size_t{777}, size_t{4999}, lines.size() - 1}) {
      ASSERT_TRUE((*r)->Seek(positions[at].first, positions[at].second).ok());
      auto more = (*r)->Next(&line);
      ASSERT_TRUE(more.ok() && *more);
      EXPECT_EQ(line, lines[at]) << name << " after seeking to line " << at;
      EXPECT_EQ((*r)->line(), at + 1);
    }
  }
}

TEST(LineReader, TruncatedGzipIsAnError) {
  test::TempDir dir;
  std::vector<std::string> lines(20000, std::string(100, 'a'));
  for (size_t i = 0; i < lines.size(); ++i) lines[i] += std::to_string(i * 7919);
  ASSERT_TRUE(test::WriteLines(dir.Sub("c.gz"), lines));
  std::filesystem::resize_file(dir.Sub("c.gz"), std::filesystem::file_size(dir.Sub("c.gz")) / 2);
  auto r = LineReader::Open(dir.Sub("c.gz"));
  ASSERT_TRUE(r.ok());
  std::string line;
  Status error;
  for (;;) {
    auto more = (*r)->Next(&line);
    if (!more.ok()) {
      error = more.status();
      break;
    }
    ASSERT_TRUE(*more) << "a truncated gzip file must not read as a shorter file";
  }
  EXPECT_NE(error.message().find("c.gz"), std::string::npos) << error.ToString();
}

TEST(VectorFileReader, StreamsRowsOfNpyAndFvecsAndSeeks) {
  test::TempDir dir;
  tools::Matrix m;
  m.rows = 301;
  m.cols = 7;
  for (size_t i = 0; i < m.rows * m.cols; ++i) m.data.push_back(static_cast<float>(i) * 0.25f);
  for (const char* name : {"v.npy", "v.fvecs"}) {
    ASSERT_TRUE(tools::WriteVectors(dir.Sub(name), m).ok());
    auto r = tools::VectorFileReader::Open(dir.Sub(name));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ((*r)->rows(), 301u);
    EXPECT_EQ((*r)->dim(), 7u);
    std::vector<float> all;
    for (;;) {
      auto more = (*r)->Next(&all);
      ASSERT_TRUE(more.ok());
      if (!*more) break;
    }
    EXPECT_EQ(all, m.data) << name;
    ASSERT_TRUE((*r)->Seek(200).ok());
    std::vector<float> row;
    ASSERT_TRUE(*(*r)->Next(&row));
    EXPECT_EQ(row, std::vector<float>(m.row(200), m.row(200) + 7));
  }
  // A truncated .fvecs is refused at open, naming the file.
  std::filesystem::resize_file(dir.Sub("v.fvecs"), std::filesystem::file_size(dir.Sub("v.fvecs")) - 3);
  auto bad = tools::VectorFileReader::Open(dir.Sub("v.fvecs"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("v.fvecs"), std::string::npos);
}

TEST(CorpusRecord, ParsesEveryFieldAndBothSparseForms) {
  RecordRules rules{.dense_dim = 3, .dense_required = true, .sparse = true, .colbert = true};
  auto a = tools::ParseCorpusLine(
      R"({"id":"a","text":"hi","metadata":{"k":[1,2]},"dense":[1,2.5,-3],"sparse":{"7":0.5,"2":0.25},"colbert":[[1,0],[0,1],[2,2]],"extra":1})",
      rules);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->id, "a");
  EXPECT_EQ(a->text, "hi");
  EXPECT_EQ(nlohmann::json::parse(a->metadata_json), nlohmann::json::parse(R"({"k":[1,2]})"));
  EXPECT_EQ(a->dense, (std::vector<float>{1, 2.5f, -3}));
  EXPECT_EQ(a->sparse.indices, (std::vector<int32_t>{2, 7}));
  EXPECT_EQ(a->sparse.values, (std::vector<float>{0.25f, 0.5f}));
  EXPECT_EQ(a->colbert.rows, 3u);
  EXPECT_EQ(a->colbert.data, (std::vector<float>{1, 0, 0, 1, 2, 2}));
  auto b = tools::ParseCorpusLine(R"({"id":42,"dense":[0,0,1],"sparse":{"indices":[9,3],"values":[1,2]}})", rules);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->id, "42");
  EXPECT_EQ(b->sparse.indices, (std::vector<int32_t>{3, 9}));
  EXPECT_EQ(b->sparse.values, (std::vector<float>{2, 1}));
}

TEST(CorpusRecord, BadLinesGiveTheReason) {
  RecordRules rules{.dense_dim = 3, .dense_required = true, .sparse = false, .colbert = false};
  const std::pair<const char*, const char*> cases[] = {
      {R"({"id":"a","dense":[1,2,3)", "malformed JSON"},
      {R"([1,2,3])", "JSON object"},
      {R"({"dense":[1,2,3]})", "missing \"id\""},
      {R"({"id":-4,"dense":[1,2,3]})", "\"id\" must be"},
      {R"({"id":"a","dense":[1,2]})", "has 2 values, the collection has dimension 3"},
      {R"({"id":"a","dense":[1,"x",3]})", "\"dense\" must be an array of numbers"},
      {R"({"id":"a","text":"only text"})", "missing \"dense\""},
      {R"({"id":"a","dense":[1,2,3],"metadata":[1]})", "\"metadata\" must be a JSON object"},
      {R"({"id":"a","dense":[1,2,3],"sparse":{"1":1}})", "stores no sparse weights"},
      {R"({"id":"a","dense":[1,2,3],"colbert":[[1]]})", "stores no ColBERT"},
  };
  for (const auto& [line, reason] : cases) {
    auto r = tools::ParseCorpusLine(line, rules);
    ASSERT_FALSE(r.ok()) << line;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(reason), std::string::npos) << line << " -> " << r.status().message();
  }
  RecordRules sparse_rules = rules;
  sparse_rules.sparse = true;
  for (const char* line : {R"({"id":"a","dense":[1,2,3],"sparse":{"x":1}})",
                           R"({"id":"a","dense":[1,2,3],"sparse":{"indices":[1,1],"values":[1,2]}})",
                           R"({"id":"a","dense":[1,2,3],"sparse":{"indices":[1],"values":[1,2]}})"}) {
    EXPECT_FALSE(tools::ParseCorpusLine(line, sparse_rules).ok()) << line;
  }
}

TEST(BuildMarker, RoundTripsAndRejectsForeignBytes) {
  tools::BuildMarker m;
  m.phase = "train";
  m.input = "/x/corpus.jsonl.gz";
  m.input_bytes = 123456789012ull;
  m.batch = 500;
  m.offset = 99999999999ull;
  m.line = 77;
  m.accepted = 70;
  m.skipped = 7;
  m.batch_duplicates = 2;
  m.seconds["read"] = 1.5;
  m.sample = {"a", "b\"c"};
  auto back = tools::BuildMarker::Parse(m.Serialize());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->Serialize(), m.Serialize());
  EXPECT_FALSE(tools::BuildMarker::Parse("not json").ok());
  EXPECT_FALSE(tools::BuildMarker::Parse(R"({"version":2})").ok());
  EXPECT_FALSE(tools::BuildMarker::Parse(R"({"version":1,"phase":"write"})").ok());
}

TEST(RecallSample, DependsOnlyOnTheSetOfIds) {
  std::vector<std::string> ids;
  for (int i = 0; i < 3000; ++i) ids.push_back("id" + std::to_string(i % 2500));  // with repeats
  tools::RecallSample whole(100);
  for (const auto& id : ids) whole.Add(id);
  // Split into runs carried through Ids()/Load(), as a resumed build does, in another order.
  std::mt19937 rng(1);
  std::shuffle(ids.begin(), ids.end(), rng);
  std::vector<std::string> carried;
  for (size_t start = 0; start < ids.size(); start += 700) {
    tools::RecallSample run(100);
    run.Load(carried);
    for (size_t i = start; i < std::min(ids.size(), start + 700); ++i) run.Add(ids[i]);
    carried = run.Ids();
  }
  EXPECT_EQ(carried, whole.Ids());
  EXPECT_EQ(carried.size(), 100u);
  // Independent check: the 100 smallest hashes of the distinct ids.
  std::vector<std::pair<uint64_t, std::string>> all;
  for (int i = 0; i < 2500; ++i) all.emplace_back(tools::Fnv1a("id" + std::to_string(i)), "id" + std::to_string(i));
  std::sort(all.begin(), all.end());
  for (size_t i = 0; i < 100; ++i) EXPECT_EQ(carried[i], all[i].second);
}

}  // namespace
}  // namespace m3vdb
