// Distill-VQ checkpoints (quant/distill_state.h): a run resumed from the state taken after an
// epoch ends with exactly the codebooks of an uninterrupted run; the state's binary form
// round-trips and rejects bad bytes; a state that does not fit the call is refused.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "common/gpu.h"
#include "quant/distill_state.h"
#include "quant/distill_trainer.h"
#include "quant/faiss_bridge.h"
#include "synthetic.h"

namespace m3vdb::quant {
namespace {

struct Problem {
  testing::Dataset ds;
  Codebooks kmeans;
  bool use_queries = true;
  DistillOptions opt;

  const float* queries() const { return use_queries ? ds.queries.data() : nullptr; }
  size_t nq() const { return use_queries ? ds.nq : 0; }
};

// Small enough for seconds: 16 dims, 800 documents, 3 epochs of 5 steps.
Problem MakeProblem(Metric metric, bool use_queries) {
  Problem p;
  p.ds = testing::MakeClustered(800, 300, 16, 8, 12, 2.0f, metric == Metric::kL2 ? 7 : 8);
  p.use_queries = use_queries;
  IvfPqParams params;
  params.dim = 16;
  params.metric = metric;
  params.nlist = 4;
  params.m = 4;
  params.seed = 11;
  auto kmeans = TrainKMeans(p.ds.docs.data(), p.ds.n, params);
  EXPECT_TRUE(kmeans.ok()) << kmeans.status().ToString();
  p.kmeans = *kmeans;
  p.opt.epochs = 3;
  p.opt.batch_queries = 48;
  p.opt.max_queries = 240;  // sampled: the sample draws from the random engine before the loop
  p.opt.candidates_per_query = 20;  // negatives sampled from the teacher top-K: more draws
  p.opt.teacher_top_k = 40;
  p.opt.tau_code = 0;  // auto: draws from the random engine before the loop too
  p.opt.seed = 77;
  p.opt.device = DistillDevice::kCpu;
  return p;
}

Result<DistillReport> TrainFrom(const Problem& p, Codebooks* books, const DistillOptions& opt) {
  return DistillTrain(p.ds.docs.data(), p.ds.n, p.queries(), p.nq(), books, opt);
}

// Trains p uninterrupted (with and without checkpoints), then resumes from every checkpoint.
void ExpectResumedRunsEqualUninterruptedRun(const Problem& p) {

  // Uninterrupted, without checkpoints.
  Codebooks plain = p.kmeans;
  auto plain_report = TrainFrom(p, &plain, p.opt);
  ASSERT_TRUE(plain_report.ok()) << plain_report.status().ToString();
  EXPECT_EQ(plain_report->resumed_epochs, 0);
  ASSERT_EQ(plain_report->validation_recall.size(), 4u);

  // Uninterrupted, with checkpoints: the callback changes nothing, and comes after epochs 1 and 2
  // (never after the last).
  std::vector<DistillState> states;
  std::vector<size_t> steps_at_checkpoint;
  size_t last_step = 0;
  DistillOptions opt = p.opt;
  opt.on_step = [&](size_t step, size_t, double, double) { last_step = step; };
  opt.on_epoch = [&](const DistillState& s) {
    states.push_back(s);
    steps_at_checkpoint.push_back(last_step);
  };
  Codebooks checked = p.kmeans;
  auto checked_report = TrainFrom(p, &checked, opt);
  ASSERT_TRUE(checked_report.ok()) << checked_report.status().ToString();
  EXPECT_EQ(checked.Serialize(), plain.Serialize());
  ASSERT_EQ(states.size(), 2u);
  const size_t spe = plain_report->steps / 3;
  ASSERT_GT(spe, 1u);
  for (size_t e = 0; e < states.size(); ++e) {
    EXPECT_EQ(states[e].epochs_done, e + 1);
    EXPECT_EQ(states[e].step, (e + 1) * spe);
    EXPECT_EQ(steps_at_checkpoint[e], (e + 1) * spe);  // after the epoch's last on_step
  }
  // The checkpointed codebooks really moved (a state that held the initial ones would be useless).
  EXPECT_NE(states[0].books.pq, p.kmeans.pq);

  for (size_t e = 0; e < states.size(); ++e) {
    SCOPED_TRACE("resume after epoch " + std::to_string(e + 1));
    // Through the binary form, as the engine stores it.
    auto parsed = DistillState::Parse(states[e].Serialize());
    ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
    DistillOptions resume = p.opt;
    resume.resume = &*parsed;
    std::vector<size_t> resumed_steps;
    resume.on_step = [&](size_t step, size_t total, double, double) {
      resumed_steps.push_back(step);
      EXPECT_EQ(total, plain_report->steps);
    };
    Codebooks books = p.kmeans;  // the *initial* codebooks
    auto report = TrainFrom(p, &books, resume);
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    EXPECT_EQ(books.Serialize(), plain.Serialize());
    EXPECT_EQ(report->resumed_epochs, static_cast<int>(e + 1));
    EXPECT_EQ(report->steps, plain_report->steps);
    EXPECT_EQ(report->first_loss_pq, plain_report->first_loss_pq);
    EXPECT_EQ(report->first_loss_ivf, plain_report->first_loss_ivf);
    EXPECT_EQ(report->last_loss_pq, plain_report->last_loss_pq);
    EXPECT_EQ(report->w_ivf, plain_report->w_ivf);
    EXPECT_EQ(report->tau, plain_report->tau);
    EXPECT_EQ(report->tau_code, plain_report->tau_code);
    EXPECT_EQ(report->validation_recall, plain_report->validation_recall);  // best-epoch selection on (held out)
    EXPECT_EQ(report->best_epoch, plain_report->best_epoch);
    ASSERT_FALSE(resumed_steps.empty());
    EXPECT_EQ(resumed_steps.front(), (e + 1) * spe + 1);  // progress continues from the checkpoint
    EXPECT_EQ(resumed_steps.back(), plain_report->steps);
  }
}

class DistillResumeTest : public ::testing::TestWithParam<std::tuple<Metric, bool>> {};

TEST_P(DistillResumeTest, ResumedRunEqualsUninterruptedRun) {
  const auto [metric, use_queries] = GetParam();
  ExpectResumedRunsEqualUninterruptedRun(MakeProblem(metric, use_queries));
}

INSTANTIATE_TEST_SUITE_P(Metrics, DistillResumeTest,
                         ::testing::Combine(::testing::Values(Metric::kInnerProduct, Metric::kL2),
                                            ::testing::Bool()));

// The same on the CUDA backend (its reductions have a fixed order, so its steps are
// deterministic on one GPU); skipped without a GPU.
class CudaDistillResumeTest : public ::testing::TestWithParam<Metric> {};

TEST_P(CudaDistillResumeTest, ResumedRunEqualsUninterruptedRun) {
  if (!GpuAvailable()) GTEST_SKIP() << "no GPU: " << ProbeGpu().reason;
  Problem p = MakeProblem(GetParam(), true);
  p.opt.device = DistillDevice::kCuda;
  ExpectResumedRunsEqualUninterruptedRun(p);
}

INSTANTIATE_TEST_SUITE_P(Metrics, CudaDistillResumeTest, ::testing::Values(Metric::kInnerProduct, Metric::kL2));

// Each piece of the loop state matters: dropping any one of them from the state makes the
// resumed run differ (so the equality above is not an accident of the data).
TEST(DistillResumeRulesTest, EveryPieceOfTheStateIsNeeded) {
  const Problem p = MakeProblem(Metric::kInnerProduct, true);
  Codebooks plain = p.kmeans;
  ASSERT_TRUE(TrainFrom(p, &plain, p.opt).ok());
  DistillState state;
  DistillOptions opt = p.opt;
  opt.on_epoch = [&](const DistillState& s) {
    if (s.epochs_done == 1) state = s;
  };
  Codebooks books = p.kmeans;
  ASSERT_TRUE(TrainFrom(p, &books, opt).ok());

  auto resumed = [&](DistillState s) {
    DistillOptions o = p.opt;
    o.resume = &s;
    Codebooks b = p.kmeans;
    auto r = TrainFrom(p, &b, o);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return b.Serialize();
  };
  EXPECT_EQ(resumed(state), plain.Serialize());
  {
    DistillState s = state;  // fresh optimizer moments
    std::fill(s.adam_m.begin(), s.adam_m.end(), 0.0f);
    std::fill(s.adam_v.begin(), s.adam_v.end(), 0.0f);
    EXPECT_NE(resumed(s), plain.Serialize());
  }
  {
    DistillState s = state;  // the query order of a fresh run
    for (size_t i = 0; i < s.order.size(); ++i) s.order[i] = static_cast<uint32_t>(i);
    EXPECT_NE(resumed(s), plain.Serialize());
  }
  {
    DistillState s = state;  // the random engine of a fresh run
    std::mt19937_64 fresh(p.opt.seed);
    std::ostringstream text;
    text << fresh;
    s.rng = text.str();
    EXPECT_NE(resumed(s), plain.Serialize());
  }
}

TEST(DistillResumeRulesTest, StateThatDoesNotFitIsRefusedAndBooksStayUnchanged) {
  const Problem p = MakeProblem(Metric::kL2, false);
  DistillState state;
  DistillOptions opt = p.opt;
  opt.on_epoch = [&](const DistillState& s) {
    if (s.epochs_done == 1) state = s;
  };
  Codebooks books = p.kmeans;
  ASSERT_TRUE(TrainFrom(p, &books, opt).ok());

  auto refused = [&](const Problem& q, const Codebooks& initial, DistillOptions o, const DistillState& s) {
    o.resume = &s;
    Codebooks b = initial;
    auto r = TrainFrom(q, &b, o);
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
    EXPECT_EQ(b.Serialize(), initial.Serialize());
  };
  {
    DistillOptions o = p.opt;  // other epoch count
    o.epochs = 4;
    refused(p, p.kmeans, o, state);
  }
  {
    Codebooks other = p.kmeans;  // other initial codebooks (e.g. the state's own)
    other.pq[0] += 1.0f;
    refused(p, other, p.opt, state);
    refused(p, state.books, p.opt, state);
  }
  {
    Problem q = p;  // another document set of the same size: the recomputed tau differs
    for (float& v : q.ds.docs) v *= 1.5f;
    refused(q, p.kmeans, p.opt, state);
  }
  {
    DistillOptions o = p.opt;  // another query sample size
    o.max_queries = 200;
    refused(p, p.kmeans, o, state);
  }
  {
    DistillOptions o = p.opt;  // another seed
    o.seed = 78;
    refused(p, p.kmeans, o, state);
  }
}

DistillState SmallState() {
  const Problem p = MakeProblem(Metric::kInnerProduct, true);
  DistillState state;
  DistillOptions opt = p.opt;
  opt.on_epoch = [&](const DistillState& s) {
    if (s.epochs_done == 1) state = s;
  };
  Codebooks books = p.kmeans;
  EXPECT_TRUE(TrainFrom(p, &books, opt).ok());
  return state;
}

TEST(DistillStateTest, RoundTrip) {
  const DistillState s = SmallState();
  const std::string bytes = s.Serialize();
  auto back = DistillState::Parse(bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->Serialize(), bytes);
  EXPECT_EQ(back->epochs_done, s.epochs_done);
  EXPECT_EQ(back->epochs, s.epochs);
  EXPECT_EQ(back->step, s.step);
  EXPECT_EQ(back->steps_per_epoch, s.steps_per_epoch);
  EXPECT_EQ(back->documents, s.documents);
  EXPECT_EQ(back->seed, s.seed);
  EXPECT_EQ(back->queries, s.queries);
  EXPECT_EQ(back->initial_books_hash, s.initial_books_hash);
  EXPECT_EQ(back->books.Serialize(), s.books.Serialize());
  EXPECT_EQ(back->adam_m, s.adam_m);
  EXPECT_EQ(back->adam_v, s.adam_v);
  EXPECT_EQ(back->adam_t, s.adam_t);
  EXPECT_EQ(back->rng, s.rng);
  EXPECT_EQ(back->order, s.order);
  EXPECT_EQ(back->first_loss_pq, s.first_loss_pq);
  EXPECT_EQ(back->w_ivf, s.w_ivf);
  EXPECT_EQ(back->tau, s.tau);
  EXPECT_EQ(back->tau_code, s.tau_code);
  EXPECT_EQ(back->lr_pq, s.lr_pq);
  EXPECT_EQ(back->lr_ivf, s.lr_ivf);
  EXPECT_EQ(back->validation_recall, s.validation_recall);
  EXPECT_EQ(back->best_epoch, s.best_epoch);
}

void ExpectCorruption(std::string_view bytes, const std::string& what) {
  auto r = DistillState::Parse(bytes);
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption) << what << ": " << r.status().ToString();
}

TEST(DistillStateTest, BadBytesAreCorruption) {
  const DistillState s = SmallState();
  const std::string bytes = s.Serialize();
  ExpectCorruption("", "empty");
  std::string v = bytes;
  v[0] = 3;
  ExpectCorruption(v, "unknown version");
  v[0] = 1;
  ExpectCorruption(v, "version 1 (before best-epoch selection)");
  ExpectCorruption(bytes + "x", "trailing byte");
  // Every truncation (sampled, plus the first 300 bytes where the header and sizes are).
  for (size_t len = 0; len < bytes.size(); len += (len < 300 ? 1 : 61))
    ExpectCorruption(std::string_view(bytes).substr(0, len), "truncated to " + std::to_string(len));
  // Inconsistent fields written with a valid layout.
  auto with = [&](auto change, const std::string& what) {
    DistillState c = s;
    change(c);
    ExpectCorruption(c.Serialize(), what);
  };
  with([](DistillState& c) { c.epochs_done = c.epochs; }, "epochs_done = epochs");
  with([](DistillState& c) { c.epochs_done = 0; }, "epochs_done = 0");
  with([](DistillState& c) { c.step += 1; }, "step not a whole number of epochs");
  with([](DistillState& c) { c.adam_t += 1; }, "optimizer step differs");
  with([](DistillState& c) { c.rng = "not a random engine"; }, "bad random engine text");
  with([](DistillState& c) { c.rng += " 12"; }, "random engine text with a trailing number");
  with([](DistillState& c) { c.order[0] = c.order[1]; }, "order not a permutation");
  with([](DistillState& c) { c.order[0] = static_cast<uint32_t>(c.order.size()); }, "order out of range");
  with([](DistillState& c) { c.order.pop_back(); }, "order shorter than the queries");
  with([](DistillState& c) { c.adam_v.pop_back(); }, "moments of different sizes");
  with([](DistillState& c) {
    c.adam_m.pop_back();
    c.adam_v.pop_back();
  }, "moments shorter than the PQ table");
  with([](DistillState& c) { c.books.centroids.pop_back(); }, "codebooks of the wrong size");
  ASSERT_EQ(s.validation_recall.size(), 2u);  // best-epoch selection was on (30 of 300 queries held out)
  with([](DistillState& c) { c.validation_recall.pop_back(); }, "held-out recalls: one too few");
  with([](DistillState& c) { c.validation_recall.push_back(0.5); }, "held-out recalls: one too many");
  with([](DistillState& c) { c.best_epoch = 2; }, "best epoch after the epochs done");
  with([](DistillState& c) {
    c.best_epoch = 1;
    c.best_books = Codebooks{};
  }, "best epoch without its codebooks");
  with([](DistillState& c) {
    c.best_epoch = 1;
    c.best_books = c.books;
    c.best_books.pq.pop_back();
  }, "best codebooks of the wrong size");
  with([](DistillState& c) {
    c.best_epoch = 1;
    c.best_books = c.books;
    c.validation_recall.clear();
  }, "best epoch without held-out recalls");
}

TEST(DistillStateTest, BestEpochRoundTrips) {
  DistillState s = SmallState();
  s.best_epoch = 1;
  s.best_books = s.books;
  s.best_books.pq[0] += 1.0f;
  s.validation_recall = {0.25, 0.5};
  auto back = DistillState::Parse(s.Serialize());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->best_epoch, 1u);
  EXPECT_EQ(back->best_books.Serialize(), s.best_books.Serialize());
  EXPECT_EQ(back->validation_recall, s.validation_recall);
  EXPECT_EQ(back->Serialize(), s.Serialize());
}

}  // namespace
}  // namespace m3vdb::quant
