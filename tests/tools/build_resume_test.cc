// kill -9 of `m3vdb build` at random moments (reading/writing batches, training, encoding),
// then `--resume`, again and again: every resumed build ends with exactly the documents of an
// uninterrupted build of the same corpus (compared document by document) and the same trained
// index (codes-only searches return the same ids).
#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <thread>

#include "m3vdb/m3vdb.h"
#include "tests/engine/temp_dir.h"
#include "tests/tools/cli_runner.h"
#include "tests/engine/db_options.h"
#include "tests/tools/corpus_fixture.h"

namespace m3vdb {
namespace {

using Clock = std::chrono::steady_clock;

std::vector<std::string> BuildArgs(const std::string& input, const std::string& out) {
  return {"build", "--input", input, "--collection", "docs", "--out", out, "--batch", "100",
          "--nlist", "16", "--pq-m", "4", "--epochs", "1", "--eval-queries", "50", "--resume"};
}

void ExpectSameDocuments(const std::string& a_dir, const std::string& b_dir, const test::Corpus& corpus) {
  auto a = Database::Open(test::ExistingOnly(), a_dir);
  auto b = Database::Open(test::ExistingOnly(), b_dir);
  ASSERT_TRUE(a.ok() && b.ok());
  auto ca = (*a)->GetCollection("docs");
  auto cb = (*b)->GetCollection("docs");
  ASSERT_TRUE(ca.ok() && cb.ok());
  ASSERT_EQ((*ca)->Count(), (*cb)->Count());
  ASSERT_EQ((*cb)->Count(), corpus.expected.size());
  EXPECT_EQ((*cb)->GetIndexInfo().kind, "ivfpq");
  EXPECT_EQ((*ca)->GetIndexInfo().bytes_per_vector, (*cb)->GetIndexInfo().bytes_per_vector);
  for (const auto& [id, e] : corpus.expected) {
    auto da = (*ca)->Get(id);
    auto db = (*cb)->Get(id);
    ASSERT_TRUE(da.ok() && db.ok()) << id;
    ASSERT_EQ(da->dense, db->dense) << id;
    ASSERT_EQ(db->dense, e.dense) << id;
    ASSERT_EQ(da->text, db->text) << id;
    ASSERT_EQ(da->metadata_json, db->metadata_json) << id;
    ASSERT_EQ(da->sparse.indices, db->sparse.indices) << id;
    ASSERT_EQ(da->sparse.values, db->sparse.values) << id;
  }
  // The learned index too: codes-only searches (candidates = the top 10 by PQ codes) agree.
  SearchOptions codes_only;
  codes_only.top_k = 10;
  codes_only.rerank_k = 10;
  int probes = 0;
  for (const auto& [id, e] : corpus.expected) {
    if (e.dense.empty() || ++probes > 40) continue;
    auto ha = (*ca)->Search(Query{e.dense, {}, {}, {}}, codes_only);
    auto hb = (*cb)->Search(Query{e.dense, {}, {}, {}}, codes_only);
    ASSERT_TRUE(ha.ok() && hb.ok()) << id;
    ASSERT_EQ(ha->size(), hb->size()) << id;
    for (size_t j = 0; j < ha->size(); ++j) EXPECT_EQ((*ha)[j].id, (*hb)[j].id) << "query " << id << " rank " << j;
  }
  auto ma = (*ca)->GetProgressMarker();
  auto mb = (*cb)->GetProgressMarker();
  ASSERT_TRUE(ma.ok() && mb.ok() && ma->has_value() && mb->has_value());
  EXPECT_NE(mb->value().find("\"phase\":\"done\""), std::string::npos);
}

TEST(BuildResume, KilledAtRandomMomentsThenResumedEqualsAnUninterruptedBuild) {
  test::TempDir dir;
  const test::Corpus corpus = test::MakeCorpus(4000, 16, /*bad=*/true);
  const std::string input = dir.Sub("corpus.jsonl.gz");
  ASSERT_TRUE(test::WriteLines(input, corpus.lines));

  const std::string reference = dir.Sub("reference");
  const auto start = Clock::now();
  auto ref = test::RunCli(BuildArgs(input, reference), dir.Sub("ref.log"));
  const double full_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  ASSERT_EQ(ref.code, 0) << ref.output;

  std::mt19937 rng(20260101);
  int kills = 0, builds = 0;
  while (kills < 12) {
    const std::string out = dir.Sub("build" + std::to_string(builds++));
    int runs = 0;
    for (;;) {
      test::CliProcess p(BuildArgs(input, out), dir.Sub("run.log"));
      ASSERT_TRUE(p.started());
      // A moment anywhere in a whole build's duration: early ones hit reading and writing,
      // later ones training and encoding (each resumed run has less left to do).
      const double at = std::uniform_real_distribution<double>(0.02, full_seconds)(rng);
      const auto deadline = Clock::now() + std::chrono::duration<double>(at);
      int code = 0;
      bool ended = false;
      while (Clock::now() < deadline && !(ended = p.Poll(&code))) std::this_thread::sleep_for(std::chrono::milliseconds(2));
      if (!ended && kills < 12) {
        p.Kill();
        p.Wait();
        ++kills;
        ++runs;
        continue;
      }
      code = p.Wait();
      ASSERT_EQ(code, 0) << p.output();
      break;
    }
    SCOPED_TRACE("build " + out + " after " + std::to_string(runs) + " kills");
    ExpectSameDocuments(reference, out, corpus);
  }
}

}  // namespace
}  // namespace m3vdb
