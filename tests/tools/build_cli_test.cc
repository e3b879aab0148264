// `m3vdb build`, `search`, `inspect` and `snapshot` as a user runs them: the real binary on
// files, and the database it wrote read back with the library and compared with what the
// corpus says (the last valid record of each id), computed by the test itself.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <sstream>
#include <thread>

#include "m3vdb/m3vdb.h"
#include "net/client.h"
#include "tests/engine/temp_dir.h"
#include "tests/tools/cli_runner.h"
#include "tests/engine/db_options.h"
#include "tests/tools/corpus_fixture.h"
#include "tools/vector_io.h"

namespace m3vdb {
namespace {

using nlohmann::json;

constexpr int kDim = 16;

// Every expected document is stored exactly as the corpus says, and nothing else is.
void ExpectContent(const std::string& db_dir, const std::map<std::string, test::ExpectedDoc>& expected) {
  auto db = Database::Open(test::ExistingOnly(), db_dir);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  auto c = (*db)->GetCollection("docs");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ((*c)->Count(), expected.size());
  for (const auto& [id, e] : expected) {
    auto d = (*c)->Get(id);
    ASSERT_TRUE(d.ok()) << id << ": " << d.status().ToString();
    EXPECT_EQ(d->dense, e.dense) << id;
    EXPECT_EQ(d->text, e.text) << id;
    EXPECT_EQ(json::parse(d->metadata_json), e.metadata) << id;
    EXPECT_EQ(d->sparse.indices, e.sparse_indices) << id;
    EXPECT_EQ(d->sparse.values, e.sparse_values) << id;
  }
}

class BuildCliTest : public ::testing::Test {
 protected:
  test::CliResult Run(std::vector<std::string> args) { return test::RunCli(args, dir_.Sub("log.txt")); }
  test::TempDir dir_;
};

TEST_F(BuildCliTest, BuildsJsonlAndGzipSkippingBadLines) {
  const test::Corpus corpus = test::MakeCorpus(1500, kDim, /*bad=*/true);
  ASSERT_EQ(corpus.bad_lines.size(), 7u);
  for (const char* name : {"corpus.jsonl", "corpus.jsonl.gz"}) {
    const std::string input = dir_.Sub(name), out = dir_.Sub(std::string("db-") + name);
    ASSERT_TRUE(test::WriteLines(input, corpus.lines));
    auto r = Run({"build", "--input", input, "--collection", "docs", "--out", out, "--batch", "100", "--nlist", "8",
                  "--pq-m", "4", "--epochs", "1", "--eval-queries", "100"});
    ASSERT_EQ(r.code, 0) << r.output;
    for (size_t line : corpus.bad_lines)
      EXPECT_NE(r.output.find(std::string(name) + ":" + std::to_string(line) + ": skipped"), std::string::npos)
          << "line " << line << " not reported:\n" << r.output;
    EXPECT_NE(r.output.find("malformed JSON"), std::string::npos);
    EXPECT_NE(r.output.find("missing \"id\""), std::string::npos);
    EXPECT_NE(r.output.find("has 15 values, the collection has dimension 16"), std::string::npos);
    std::ostringstream lines;
    lines << "input lines          1500 (" << corpus.valid << " accepted, 7 skipped)";
    EXPECT_NE(r.output.find(lines.str()), std::string::npos) << r.output;
    std::ostringstream dups;
    dups << "duplicate ids        " << corpus.valid - corpus.expected.size() << " ";
    EXPECT_NE(r.output.find(dups.str()), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("recall@10 quantized"), std::string::npos) << r.output;
    ExpectContent(out, corpus.expected);
    auto db = Database::Open(Options{}, out);
    ASSERT_TRUE(db.ok());
    auto c = (*db)->GetCollection("docs");
    ASSERT_TRUE(c.ok());
    EXPECT_EQ((*c)->GetIndexInfo().kind, "ivfpq");
    EXPECT_TRUE((*c)->schema().sparse) << "sparse is inferred from the first record";
  }
}

TEST_F(BuildCliTest, StrictStopsAtTheFirstBadLineWithWholeBatchesOnly) {
  const test::Corpus corpus = test::MakeCorpus(400, kDim, /*bad=*/true);
  ASSERT_EQ(*corpus.bad_lines.begin(), 101u);
  const std::string input = dir_.Sub("c.jsonl"), out = dir_.Sub("db");
  ASSERT_TRUE(test::WriteLines(input, corpus.lines));
  auto r = Run({"build", "--input", input, "--collection", "docs", "--out", out, "--batch", "50", "--strict"});
  EXPECT_NE(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("c.jsonl:101: malformed JSON"), std::string::npos) << r.output;
  // Lines 1..100 are two whole batches; the batch holding line 101 is not written at all.
  ExpectContent(out, test::MakeCorpus(100, kDim, true).expected);
}

TEST_F(BuildCliTest, RefusesANonEmptyOutputAndAnotherInputOnResume) {
  const test::Corpus corpus = test::MakeCorpus(300, kDim, false);
  const std::string input = dir_.Sub("c.jsonl"), other = dir_.Sub("other.jsonl"), out = dir_.Sub("db");
  ASSERT_TRUE(test::WriteLines(input, corpus.lines));
  ASSERT_TRUE(test::WriteLines(other, test::MakeCorpus(301, kDim, false).lines));
  ASSERT_EQ(Run({"build", "--input", input, "--collection", "docs", "--out", out, "--no-train"}).code, 0);
  auto again = Run({"build", "--input", input, "--collection", "docs", "--out", out, "--no-train"});
  EXPECT_EQ(again.code, 2);
  EXPECT_NE(again.output.find("is not empty: pass --resume"), std::string::npos) << again.output;
  auto wrong = Run({"build", "--input", other, "--collection", "docs", "--out", out, "--resume"});
  EXPECT_EQ(wrong.code, 2);
  EXPECT_NE(wrong.output.find("Resume with the same input"), std::string::npos) << wrong.output;
  // Resuming a finished build changes nothing and reports it again.
  auto done = Run({"build", "--input", input, "--collection", "docs", "--out", out, "--resume", "--no-train"});
  EXPECT_EQ(done.code, 0) << done.output;
  ExpectContent(out, corpus.expected);
}

// Brute-force l2 neighbours of `q` among the rows of `m`.
std::vector<std::string> BruteForce(const tools::Matrix& m, const float* q, size_t k) {
  std::vector<std::pair<float, size_t>> d;
  for (size_t i = 0; i < m.rows; ++i) {
    float s = 0;
    for (size_t j = 0; j < m.cols; ++j) s += (m.row(i)[j] - q[j]) * (m.row(i)[j] - q[j]);
    d.emplace_back(s, i);
  }
  std::partial_sort(d.begin(), d.begin() + static_cast<std::ptrdiff_t>(k), d.end());
  std::vector<std::string> ids;
  for (size_t i = 0; i < k; ++i) ids.push_back(std::to_string(d[i].second));
  return ids;
}

TEST_F(BuildCliTest, VectorFilesThenSearchInspectAndSnapshot) {
  std::mt19937 rng(5);
  std::normal_distribution<float> g;
  tools::Matrix base, queries;
  base.rows = 3000;
  base.cols = kDim;
  for (size_t i = 0; i < base.rows * base.cols; ++i) base.data.push_back(g(rng));
  queries.rows = 20;
  queries.cols = kDim;
  for (size_t i = 0; i < queries.rows * queries.cols; ++i) queries.data.push_back(g(rng));
  ASSERT_TRUE(tools::WriteVectors(dir_.Sub("base.npy"), base).ok());
  ASSERT_TRUE(tools::WriteVectors(dir_.Sub("base.fvecs"), base).ok());
  ASSERT_TRUE(tools::WriteVectors(dir_.Sub("q.npy"), queries).ok());
  const std::string out = dir_.Sub("db");
  auto r = Run({"build", "--input", dir_.Sub("base.npy"), "--collection", "docs", "--out", out, "--metric", "l2",
                "--nlist", "16", "--pq-m", "4", "--epochs", "1", "--batch", "250"});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("documents            3000 (dimension 16)"), std::string::npos) << r.output;

  // search --exact --json: one object per query, ids and order as brute force.
  auto s = Run({"search", out, "--collection", "docs", "--dense-file", dir_.Sub("q.npy"), "--top-k", "5", "--exact",
                "--json"});
  ASSERT_EQ(s.code, 0) << s.output;
  std::istringstream lines(s.output);
  std::string line;
  size_t q = 0;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] != '{') continue;
    const json j = json::parse(line);
    ASSERT_LT(q, queries.rows);
    const auto truth = BruteForce(base, queries.row(q), 5);
    ASSERT_EQ(j["results"].size(), 5u);
    for (size_t i = 0; i < 5; ++i) EXPECT_EQ(j["results"][i]["id"], truth[i]) << "query " << q << " rank " << i;
    ++q;
  }
  EXPECT_EQ(q, queries.rows);
  auto table = Run({"search", out, "--collection", "docs", "--dense-file", dir_.Sub("q.npy"), "--top-k", "3"});
  ASSERT_EQ(table.code, 0) << table.output;
  EXPECT_NE(table.output.find("query 19"), std::string::npos) << table.output;
  tools::Matrix narrow;
  narrow.rows = 1;
  narrow.cols = 8;
  narrow.data.assign(8, 0.5f);
  ASSERT_TRUE(tools::WriteVectors(dir_.Sub("narrow.npy"), narrow).ok());
  auto bad_dim = Run({"search", out, "--collection", "docs", "--dense-file", dir_.Sub("narrow.npy")});
  EXPECT_EQ(bad_dim.code, 1);
  EXPECT_NE(bad_dim.output.find("has dimension 8, collection 'docs' has 16"), std::string::npos) << bad_dim.output;

  // inspect --json.
  auto i = Run({"inspect", out, "--json"});
  ASSERT_EQ(i.code, 0) << i.output;
  const json info = json::parse(i.output.substr(i.output.find('{')));
  ASSERT_EQ(info["collections"].size(), 1u);
  EXPECT_EQ(info["collections"][0]["count"], 3000);
  EXPECT_EQ(info["collections"][0]["index"]["kind"], "ivfpq");
  EXPECT_EQ(info["collections"][0]["index"]["bytes_per_vector"], 4);
  EXPECT_EQ(info["collections"][0]["build"]["phase"], "done");
  EXPECT_GT(info["disk_bytes"].get<uint64_t>(), 3000u * kDim * 4);

  // snapshot: a new directory that opens with the same documents; an existing one is refused.
  auto snap = Run({"snapshot", out, "--to", dir_.Sub("copy")});
  ASSERT_EQ(snap.code, 0) << snap.output;
  EXPECT_NE(Run({"snapshot", out, "--to", dir_.Sub("copy")}).code, 0);
  {
    auto copy = Database::Open(test::ExistingOnly(), dir_.Sub("copy"));
    ASSERT_TRUE(copy.ok()) << copy.status().ToString();
    auto c = (*copy)->GetCollection("docs");
    ASSERT_TRUE(c.ok());
    EXPECT_EQ((*c)->Count(), 3000u);
    EXPECT_EQ((*c)->GetIndexInfo().kind, "ivfpq");
    for (size_t row : {size_t{0}, size_t{1234}, size_t{2999}}) {
      auto d = (*c)->Get(std::to_string(row));
      ASSERT_TRUE(d.ok());
      EXPECT_EQ(d->dense, std::vector<float>(base.row(row), base.row(row) + kDim));
    }
  }

  // The same matrix as .fvecs gives the same documents.
  auto f = Run({"build", "--input", dir_.Sub("base.fvecs"), "--collection", "docs", "--out", dir_.Sub("db2"),
                "--no-train"});
  ASSERT_EQ(f.code, 0) << f.output;
  auto db = Database::Open(Options{}, dir_.Sub("db2"));
  ASSERT_TRUE(db.ok());
  auto c = (*db)->GetCollection("docs");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*c)->Count(), 3000u);
  EXPECT_EQ((*c)->Get("2999")->dense, std::vector<float>(base.row(2999), base.row(2999) + kDim));
}

// The directory `m3vdb build` wrote is what `m3vdb serve` opens: the same search over HTTP and
// through the library returns the same ids in the same order.
TEST_F(BuildCliTest, ServeOpensTheBuiltDirectory) {
  const test::Corpus corpus = test::MakeCorpus(1200, kDim, false);
  const std::string input = dir_.Sub("c.jsonl"), out = dir_.Sub("db");
  ASSERT_TRUE(test::WriteLines(input, corpus.lines));
  auto r = Run({"build", "--input", input, "--collection", "docs", "--out", out, "--nlist", "8", "--pq-m", "4",
                "--epochs", "1"});
  ASSERT_EQ(r.code, 0) << r.output;
  std::vector<std::vector<std::string>> library_ids;
  std::vector<std::vector<float>> probes;
  {
    auto db = Database::Open(test::ExistingOnly(), out);
    ASSERT_TRUE(db.ok());
    auto c = (*db)->GetCollection("docs");
    ASSERT_TRUE(c.ok());
    for (int i = 0; i < 10; ++i) {
      Query q;
      q.dense = corpus.expected.at("doc-" + std::to_string(i * 97 + 3)).dense;
      SearchOptions o;
      o.top_k = 5;
      auto hits = (*c)->Search(q, o);
      ASSERT_TRUE(hits.ok());
      std::vector<std::string> ids;
      for (const auto& h : *hits) ids.push_back(h.id);
      library_ids.push_back(ids);
      probes.push_back(q.dense);
    }
  }  // closed: the server needs the directory's lock
  test::CliProcess serve({"serve", "--data-dir", out, "--port", "0", "--create-if-missing", "false"}, dir_.Sub("serve.log"));
  uint16_t port = 0;
  static const std::regex kListening(R"(m3vdb listening on http://[^:]+:(\d+))");
  for (int i = 0; i < 3000 && port == 0; ++i) {
    std::smatch m;
    const std::string log = serve.output();
    if (std::regex_search(log, m, kListening)) port = static_cast<uint16_t>(std::stoi(m[1]));
    else std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_NE(port, 0) << serve.output();
  auto client = net::HttpClient::Connect("127.0.0.1", port);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  auto info = (*client)->Send("GET", "/collections/docs");
  ASSERT_TRUE(info.ok() && info->status == 200);
  EXPECT_EQ(json::parse(info->body)["count"], corpus.expected.size()) << info->body;
  for (size_t i = 0; i < probes.size(); ++i) {
    auto reply = (*client)->Send("POST", "/collections/docs/search", json{{"dense", probes[i]}, {"top_k", 5}}.dump());
    ASSERT_TRUE(reply.ok() && reply->status == 200) << (reply.ok() ? reply->body : reply.status().ToString());
    std::vector<std::string> ids;
    const json answer = json::parse(reply->body);
    for (const auto& h : answer["results"]) ids.push_back(h["id"]);
    EXPECT_EQ(ids, library_ids[i]) << "probe " << i;
  }
}

// Text corpus with the BGE-M3 fixture checkpoint: the build embeds every text (one call per
// batch), stores exactly what the library's encoder gives for it, counts the tokens, and
// `search --text` answers as the library does.
TEST_F(BuildCliTest, TextCorpusIsEmbeddedWithTheModel) {
  const std::string model = std::string(M3VDB_EMBEDDER_FIXTURES) + "/tiny";
  const std::vector<std::string> texts = {
      "the quick brown fox jumps over the lazy dog",  "vector databases answer nearest neighbour queries",
      "RocksDB keeps every acknowledged write",        "sparse lexical weights come from the same pass",
      "ColBERT scores late interactions of tokens",    "Fashion-MNIST has sixty thousand images",
      "a learned index keeps the ranking that matters", "caf\xC3\xA9 na\xC3\xAFve r\xC3\xA9sum\xC3\xA9"};
  std::vector<std::string> lines;
  for (size_t i = 0; i < texts.size(); ++i)
    lines.push_back(json{{"id", "t" + std::to_string(i)}, {"text", texts[i]}, {"metadata", {{"n", i}}}}.dump());
  lines.push_back(json{{"id", "t3"}, {"text", texts[3]}}.dump());  // duplicate id: last wins
  lines.push_back(R"({"id": "no-text"})");                          // neither text nor dense: skipped
  const std::string input = dir_.Sub("texts.jsonl"), out = dir_.Sub("db");
  ASSERT_TRUE(test::WriteLines(input, lines));
  auto r = Run({"build", "--input", input, "--collection", "docs", "--out", out, "--model", model, "--batch", "3",
                "--no-train"});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("tokens embedded"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(":10: skipped"), std::string::npos) << r.output;

  std::vector<std::vector<std::string>> expected_ids;
  {
    Options options = test::ExistingOnly();
    options.model_dir = model;
    auto db = Database::Open(options, out);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    auto c = (*db)->GetCollection("docs");
    ASSERT_TRUE(c.ok());
    EXPECT_TRUE((*c)->schema().model);
    EXPECT_TRUE((*c)->schema().sparse);
    EXPECT_EQ((*c)->Count(), texts.size());
    auto reference = (*db)->Embed(texts);
    ASSERT_TRUE(reference.ok()) << reference.status().ToString();
    uint64_t tokens = 0;
    for (size_t i = 0; i < texts.size(); ++i) {
      tokens += (*reference)[i].tokens.size();
      auto d = (*c)->Get("t" + std::to_string(i));
      ASSERT_TRUE(d.ok()) << d.status().ToString();
      EXPECT_EQ(d->text, texts[i]);
      ASSERT_EQ(d->dense.size(), (*reference)[i].dense.size());
      for (size_t k = 0; k < d->dense.size(); ++k) EXPECT_NEAR(d->dense[k], (*reference)[i].dense[k], 1e-5) << i;
      EXPECT_EQ(d->sparse.indices, (*reference)[i].sparse.indices) << i;
      ASSERT_EQ(d->sparse.values.size(), (*reference)[i].sparse.values.size());
      for (size_t k = 0; k < d->sparse.values.size(); ++k)
        EXPECT_NEAR(d->sparse.values[k], (*reference)[i].sparse.values[k], 1e-5) << i;
    }
    // Tokens of the 9 accepted records: the repeated t3 is in another batch, so it is embedded
    // (and written) again.
    tokens += (*reference)[3].tokens.size();
    const std::regex kTokens(R"(tokens embedded\s+(\d+))");
    std::smatch m;
    ASSERT_TRUE(std::regex_search(r.output, m, kTokens)) << r.output;
    EXPECT_EQ(std::stoull(m[1]), tokens);

    // `search --text` must answer what the library answers for the same text (the tiny random
    // model's sparse weights are unbounded, so the fused ranking is the library's, not "self
    // first"); the library is closed before the command opens the directory.
    for (const auto& t : texts) {
      Query q;
      q.text = t;
      SearchOptions o;
      o.top_k = 3;
      auto hits = (*c)->Search(q, o);
      ASSERT_TRUE(hits.ok()) << hits.status().ToString();
      std::vector<std::string> ids;
      for (const auto& h : *hits) ids.push_back(h.id);
      expected_ids.push_back(ids);
      // With dense alone each text finds its own document first.
      o.weights.sparse = 0;
      auto dense_only = (*c)->Search(q, o);
      ASSERT_TRUE(dense_only.ok());
      ASSERT_FALSE(dense_only->empty());
      EXPECT_EQ((*dense_only)[0].id, "t" + std::to_string(&t - texts.data()));
    }
  }
  for (size_t i = 0; i < texts.size(); ++i) {
    auto s = Run({"search", out, "--collection", "docs", "--model", model, "--text", texts[i], "--top-k", "3",
                  "--json"});
    ASSERT_EQ(s.code, 0) << s.output;
    const json answer = json::parse(s.output.substr(s.output.find('{')));
    std::vector<std::string> ids;
    for (const auto& h : answer["results"]) ids.push_back(h["id"]);
    EXPECT_EQ(ids, expected_ids[i]) << s.output;
  }
  auto no_model = Run({"search", out, "--collection", "docs", "--text", texts[0]});
  EXPECT_NE(no_model.code, 0);
  EXPECT_NE(no_model.output.find("--model"), std::string::npos) << no_model.output;
}

}  // namespace
}  // namespace m3vdb
