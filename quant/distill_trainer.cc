#include "quant/distill_trainer.h"

#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <sstream>
#include <unordered_map>

#include "common/gpu.h"
#include "quant/cuda/cuda_distill_backend.h"
#include "quant/detail/distill_step.h"
#include "quant/detail/exact_top_k.h"
#include "quant/detail/held_out_recall.h"

namespace m3vdb::quant {
namespace {

class CpuDistillBackend final : public DistillBackend {
 public:
  const char* name() const override { return "cpu"; }
  Status Step(const Codebooks& books, const Batch& batch, Gradients* out) override {
    detail::StepInput in{batch.queries, batch.b, batch.docs, batch.lists, batch.c, batch.tau, batch.tau_code};
    detail::StepOutput step;
    detail::DistillStep(books, in, &step, &workspace_);
    out->loss_pq = step.loss_pq;
    out->loss_ivf = step.loss_ivf;
    out->grad_pq = std::move(step.grad_pq);
    out->grad_centroids_ivf = std::move(step.grad_centroids_ivf);
    return Status::OK();
  }

 private:
  detail::StepWorkspace workspace_;
};

double Rms(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += double{x} * x;
  return v.empty() ? 0 : std::sqrt(s / v.size());
}

// AdamW (Loshchilov & Hutter) over a flat parameter vector.
class AdamW {
 public:
  explicit AdamW(size_t n) : m_(n, 0.0f), v_(n, 0.0f) {}
  // Checkpoint access (quant/distill_state.h).
  void Save(DistillState* s) const {
    s->adam_m = m_;
    s->adam_v = v_;
    s->adam_t = t_;
  }
  void Load(const DistillState& s) {
    m_ = s.adam_m;
    v_ = s.adam_v;
    t_ = s.adam_t;
  }
  void Update(std::vector<float>* params, const std::vector<float>& grad, float lr, float weight_decay) {
    constexpr float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
    ++t_;
    const float c1 = 1.0f - std::pow(b1, static_cast<float>(t_)), c2 = 1.0f - std::pow(b2, static_cast<float>(t_));
    for (size_t i = 0; i < params->size(); ++i) {
      m_[i] = b1 * m_[i] + (1 - b1) * grad[i];
      v_[i] = b2 * v_[i] + (1 - b2) * grad[i] * grad[i];
      const float step = (m_[i] / c1) / (std::sqrt(v_[i] / c2) + eps);
      (*params)[i] -= lr * (step + weight_decay * (*params)[i]);
    }
  }

 private:
  std::vector<float> m_, v_;
  int64_t t_ = 0;
};

// Linear warm-up over the first 10% of steps, then linear decay to zero (SPECS.md §2.5).
float Schedule(size_t step, size_t total) {
  const size_t warm = std::max<size_t>(1, total / 10);
  if (step < warm) return static_cast<float>(step + 1) / warm;
  return std::max(0.0f, static_cast<float>(total - step) / static_cast<float>(total - warm + 1));
}

// The soft code assignment softmax(-||r - C_k||^2 / tau_code) only carries a useful gradient
// when it is neither one-hot nor uniform, and squared distances scale with the data (pixels / 255,
// unit vectors and raw model embeddings differ by orders of magnitude). The median gap between
// the nearest and second-nearest codeword puts the two nearest at odds of e : 1 for a typical
// sub-vector, whatever the scale.
float AutoCodeTemperature(const Codebooks& books, const float* xr, const uint32_t* lists, size_t n,
                          std::mt19937_64& rng) {
  const IvfPqParams& p = books.params;
  const size_t d = p.dim, K = p.ksub(), ds = p.dsub(), samples = std::min<size_t>(n, 1000);
  std::vector<float> gaps, r(ds);
  gaps.reserve(samples * p.m);
  std::uniform_int_distribution<size_t> pick(0, n - 1);
  for (size_t s = 0; s < samples; ++s) {
    const size_t j = pick(rng);
    for (size_t m = 0; m < p.m; ++m) {
      for (size_t t = 0; t < ds; ++t) r[t] = xr[j * d + m * ds + t] - books.centroids[size_t{lists[j]} * d + m * ds + t];
      float d1 = std::numeric_limits<float>::infinity(), d2 = d1;
      for (size_t k = 0; k < K; ++k) {
        const float* c = books.pq.data() + (m * K + k) * ds;
        float dist = 0;
        for (size_t t = 0; t < ds; ++t) dist += (r[t] - c[t]) * (r[t] - c[t]);
        if (dist < d1) d2 = d1, d1 = dist;
        else if (dist < d2) d2 = dist;
      }
      gaps.push_back(d2 - d1);
    }
  }
  std::nth_element(gaps.begin(), gaps.begin() + static_cast<std::ptrdiff_t>(gaps.size() / 2), gaps.end());
  return std::max(gaps[gaps.size() / 2], 1e-12f);
}

}  // namespace

std::unique_ptr<DistillBackend> CreateCpuDistillBackend() { return std::make_unique<CpuDistillBackend>(); }

Result<std::unique_ptr<DistillBackend>> CreateDistillBackend(DistillDevice device) {
  if (device == DistillDevice::kCpu) return CreateCpuDistillBackend();
  if (device == DistillDevice::kCuda) return CreateCudaDistillBackend();
  if (GpuAvailable()) {
    auto cuda = CreateCudaDistillBackend();
    if (cuda.ok()) return cuda;
  }
  return CreateCpuDistillBackend();
}

Result<DistillReport> DistillTrain(const float* docs, size_t n, const float* queries, size_t nq, Codebooks* books,
                                   const DistillOptions& opt, DistillBackend* backend) {
  M3VDB_RETURN_IF_ERROR(books->Validate());
  const auto start = std::chrono::steady_clock::now();
  const size_t d = books->params.dim;
  const size_t K = std::min(opt.teacher_top_k, n - 1);
  if (n < 2 || K < 1) return Status::InvalidArgument("Distill-VQ needs at least 2 documents");
  if (opt.batch_queries == 0 || opt.epochs <= 0) return Status::InvalidArgument("batch_queries and epochs must be > 0");
  std::unique_ptr<DistillBackend> own;
  if (!backend) {
    M3VDB_ASSIGN_OR_RETURN(own, CreateDistillBackend(opt.device));
    backend = own.get();
  }
  const DistillState* resume = opt.resume;
  uint64_t initial_hash = 0;
  if (resume || opt.on_epoch) initial_hash = Fnv1a64(books->Serialize());
  auto mismatch = [](const std::string& what) {
    return Status::InvalidArgument("Distill-VQ resume state does not fit this run: " + what);
  };
  if (resume) {
    const IvfPqParams &a = resume->books.params, &b = books->params;
    if (resume->documents != n)
      return mismatch("it has " + std::to_string(resume->documents) + " documents, not " + std::to_string(n));
    if (resume->epochs != static_cast<uint32_t>(opt.epochs))
      return mismatch("it has " + std::to_string(resume->epochs) + " epochs, not " + std::to_string(opt.epochs));
    if (resume->seed != opt.seed)
      return mismatch("it has seed " + std::to_string(resume->seed) + ", not " + std::to_string(opt.seed));
    if (resume->initial_books_hash != initial_hash) return mismatch("it started from other initial codebooks");
    if (a.dim != b.dim || a.metric != b.metric || a.nlist != b.nlist || a.m != b.m || a.nbits != b.nbits ||
        resume->books.rotation != books->rotation)
      return mismatch("its codebooks have other parameters");
    M3VDB_RETURN_IF_ERROR(resume->books.Validate());
    if (resume->adam_m.size() != books->pq.size() || resume->adam_v.size() != books->pq.size())
      return mismatch("its optimizer has the wrong size");
  }
  std::mt19937_64 rng(opt.seed);

  std::vector<float> xr(n * d);
  books->Rotate(docs, n, xr.data());

  // Training queries (rotated) and, for documents used as queries, the document to exclude; the
  // held-out validation queries likewise, the last `held` of the shuffled pool.
  const size_t pool = nq > 0 ? nq : n;
  const size_t held =
      opt.validation_queries > 0 && pool / 10 >= 10 ? std::min(opt.validation_queries, pool / 10) : 0;
  std::vector<size_t> pick(pool);
  std::iota(pick.begin(), pick.end(), 0);
  if (nq == 0 || held > 0 || nq > opt.max_queries) std::shuffle(pick.begin(), pick.end(), rng);
  auto take = [&](size_t from, size_t count, std::vector<float>* out, std::vector<int64_t>* exclude) {
    out->resize(count * d);
    if (nq == 0) {
      for (size_t i = 0; i < count; ++i) {
        std::copy_n(xr.begin() + pick[from + i] * d, d, out->begin() + i * d);
        exclude->push_back(static_cast<int64_t>(pick[from + i]));
      }
      return;
    }
    std::vector<float> q(count * d);
    for (size_t i = 0; i < count; ++i) {
      float* row = q.data() + i * d;
      std::copy_n(queries + pick[from + i] * d, d, row);
      if (books->params.unit_norm) {  // searched as q / ||q|| (quant/codebooks.h): trained so too
        const float len = std::sqrt(cblas_sdot(static_cast<int>(d), row, 1, row, 1));
        if (len > 0) cblas_sscal(static_cast<int>(d), 1.0f / len, row, 1);
      }
    }
    if (count > 0) books->Rotate(q.data(), count, out->data());
    exclude->assign(count, -1);
  };
  std::vector<float> qr, held_qr;
  std::vector<int64_t> self, held_self;
  take(0, std::min(pool - held, opt.max_queries), &qr, &self);
  take(pool - held, held, &held_qr, &held_self);
  const size_t num_q = self.size();

  // Fixed IVF assignment and the teacher's ranking.
  std::vector<uint32_t> lists(n);
  books->Assign(xr.data(), n, lists.data());
  std::vector<uint32_t> top_ids(num_q * K);
  std::vector<float> top_scores(num_q * K);
  detail::ExactTopK(books->params.geometry(), qr.data(), num_q, xr.data(), n, d, K, self.data(), top_ids.data(),
                    top_scores.data());

  // The held-out queries' exact top-10, and how the codebooks are measured on them.
  const size_t held_k = std::min<size_t>(10, n - 1);
  std::vector<uint32_t> held_truth(held * held_k);
  if (held > 0) {
    std::vector<float> unused(held * held_k);
    detail::ExactTopK(books->params.geometry(), held_qr.data(), held, xr.data(), n, d, held_k, held_self.data(),
                      held_truth.data(), unused.data());
  }
  const size_t held_nprobe = opt.validation_nprobe > 0 ? opt.validation_nprobe : std::max<size_t>(1, books->params.nlist / 16);
  auto held_out_recall = [&](const Codebooks& b) {
    return detail::HeldOutRecall(b, xr.data(), n, held_qr.data(), held, held_self.data(), held_truth.data(), held_k,
                                 held_nprobe);
  };
  const Codebooks initial = held > 0 ? *books : Codebooks{};
  Codebooks best_books;

  DistillReport report;
  report.backend = backend->name();
  report.validation_queries = held;
  report.tau = opt.tau;
  if (report.tau <= 0) {
    std::vector<float> gaps(num_q);
    const size_t r10 = std::min<size_t>(9, K - 1);
    for (size_t i = 0; i < num_q; ++i) gaps[i] = top_scores[i * K] - top_scores[i * K + r10];
    std::nth_element(gaps.begin(), gaps.begin() + static_cast<std::ptrdiff_t>(num_q / 2), gaps.end());
    report.tau = std::max(gaps[num_q / 2] / 3.0f, 1e-6f);
  }
  const float tau_code = opt.tau_code >= 0 ? opt.tau_code : books->params.unit_norm ? 0.0f : 1.0f;
  report.tau_code = tau_code > 0 ? tau_code : AutoCodeTemperature(*books, xr.data(), lists.data(), n, rng);
  // Auto: a fraction of the codebooks' RMS, smaller from an OPQ start (better codebooks, less
  // to gain, more to lose; both chosen on validation splits, docs/benchmarks.md).
  const double lr_fraction = books->params.opq ? 5e-3 : 1.5e-2;
  report.lr_pq = opt.lr_pq > 0 ? opt.lr_pq : static_cast<float>(lr_fraction * Rms(books->pq));
  report.lr_ivf = opt.lr_ivf > 0 ? opt.lr_ivf : static_cast<float>(1e-3 * Rms(books->centroids));

  const size_t steps_per_epoch = (num_q + opt.batch_queries - 1) / opt.batch_queries;
  const size_t total = steps_per_epoch * static_cast<size_t>(opt.epochs);
  AdamW adam(books->pq.size());
  std::vector<size_t> order(num_q);
  std::iota(order.begin(), order.end(), 0);
  size_t step = 0;
  int first_epoch = 0;
  if (resume) {
    // What precedes the loop was recomputed from the same inputs: it must match what was saved
    // (bit for bit: the same arithmetic on the same values).
    if (resume->queries != num_q)
      return mismatch("it has " + std::to_string(resume->queries) + " training queries, not " + std::to_string(num_q));
    if (resume->steps_per_epoch != steps_per_epoch || resume->step != resume->epochs_done * steps_per_epoch ||
        resume->epochs_done == 0 || resume->epochs_done >= resume->epochs)
      return mismatch("its step count does not fit " + std::to_string(steps_per_epoch) + " steps per epoch");
    auto same = [](float x, float y) { return std::memcmp(&x, &y, sizeof x) == 0; };
    if (!same(resume->tau, report.tau) || !same(resume->tau_code, report.tau_code) ||
        !same(resume->lr_pq, report.lr_pq) || !same(resume->lr_ivf, report.lr_ivf))
      return mismatch("its temperatures or learning rates differ from the recomputed ones");
    if (resume->order.size() != num_q) return mismatch("its query order has the wrong size");
    if (resume->validation_recall.size() != (held > 0 ? resume->epochs_done + 1 : 0) ||
        resume->best_epoch > resume->epochs_done || (resume->best_epoch > 0 && !resume->best_books.Validate().ok()))
      return mismatch("its best-epoch selection does not fit " + std::to_string(held) + " held-out queries");
    for (uint32_t q : resume->order)
      if (q >= num_q) return mismatch("its query order names query " + std::to_string(q));
    std::istringstream text(resume->rng);
    std::mt19937_64 saved;
    text >> saved;
    if (text.fail()) return mismatch("its random engine state is malformed");
    // Every check passed: from here on the run continues the saved one.
    rng = saved;
    order.assign(resume->order.begin(), resume->order.end());
    const uint64_t generation = books->generation;
    *books = resume->books;
    books->generation = generation;
    adam.Load(*resume);
    step = resume->step;
    first_epoch = static_cast<int>(resume->epochs_done);
    report.first_loss_pq = resume->first_loss_pq;
    report.first_loss_ivf = resume->first_loss_ivf;
    report.last_loss_pq = resume->last_loss_pq;
    report.last_loss_ivf = resume->last_loss_ivf;
    report.w_ivf = resume->w_ivf;
    report.resumed_epochs = first_epoch;
    if (held > 0) {
      report.validation_recall = resume->validation_recall;
      report.best_epoch = static_cast<int>(resume->best_epoch);
      if (report.best_epoch > 0) best_books = resume->best_books;
    }
  } else if (held > 0) {
    report.validation_recall.push_back(held_out_recall(*books));
    report.best_epoch = 0;
    if (opt.on_validation) opt.on_validation(0, report.validation_recall[0]);
  }
  auto save = [&](int epochs_done) {
    DistillState s;
    s.epochs_done = static_cast<uint32_t>(epochs_done);
    s.epochs = static_cast<uint32_t>(opt.epochs);
    s.steps_per_epoch = steps_per_epoch;
    s.step = step + 1;
    s.documents = n;
    s.queries = num_q;
    s.seed = opt.seed;
    s.initial_books_hash = initial_hash;
    s.books = *books;
    adam.Save(&s);
    s.order.assign(order.begin(), order.end());
    std::ostringstream text;
    text << rng;
    s.rng = text.str();
    s.first_loss_pq = report.first_loss_pq;
    s.first_loss_ivf = report.first_loss_ivf;
    s.last_loss_pq = report.last_loss_pq;
    s.last_loss_ivf = report.last_loss_ivf;
    s.tau = report.tau;
    s.tau_code = report.tau_code;
    s.lr_pq = report.lr_pq;
    s.lr_ivf = report.lr_ivf;
    s.w_ivf = report.w_ivf;
    s.validation_recall = report.validation_recall;
    s.best_epoch = static_cast<uint32_t>(std::max(report.best_epoch, 0));
    if (s.best_epoch > 0) s.best_books = best_books;
    opt.on_epoch(s);
  };
  std::vector<float> batch_q, batch_x;
  std::vector<uint32_t> batch_lists;
  std::vector<uint32_t> negatives(K > 1 ? K - 1 : 0);
  for (int epoch = first_epoch; epoch < opt.epochs; ++epoch) {
    std::shuffle(order.begin(), order.end(), rng);
    for (size_t s = 0; s < steps_per_epoch; ++s, ++step) {
      const size_t begin = s * opt.batch_queries, end = std::min(num_q, begin + opt.batch_queries);
      const size_t b = end - begin;
      // Candidates: the union of the queries' teacher top-K (top-1 always, the rest sampled
      // when candidates_per_query < K).
      std::unordered_map<uint32_t, size_t> slot;
      std::vector<uint32_t> cand;
      auto add = [&](uint32_t doc) {
        if (slot.emplace(doc, cand.size()).second) cand.push_back(doc);
      };
      batch_q.resize(b * d);
      for (size_t i = 0; i < b; ++i) {
        const size_t q = order[begin + i];
        std::copy_n(qr.begin() + q * d, d, batch_q.begin() + i * d);
        add(top_ids[q * K]);
        std::iota(negatives.begin(), negatives.end(), 1u);
        const size_t take = std::min(opt.candidates_per_query > 0 ? opt.candidates_per_query - 1 : 0, negatives.size());
        for (size_t t = 0; t < take; ++t) {  // partial Fisher-Yates: `take` distinct ranks
          std::uniform_int_distribution<size_t> u(t, negatives.size() - 1);
          std::swap(negatives[t], negatives[u(rng)]);
          add(top_ids[q * K + negatives[t]]);
        }
      }
      batch_x.resize(cand.size() * d);
      batch_lists.resize(cand.size());
      for (size_t j = 0; j < cand.size(); ++j) {
        std::copy_n(xr.begin() + size_t{cand[j]} * d, d, batch_x.begin() + j * d);
        batch_lists[j] = lists[cand[j]];
      }
      DistillBackend::Batch batch{batch_q.data(), b, batch_x.data(), batch_lists.data(), cand.size(), report.tau,
                                  report.tau_code};
      DistillBackend::Gradients g;
      M3VDB_RETURN_IF_ERROR(backend->Step(*books, batch, &g));
      if (step == 0) {
        report.first_loss_pq = g.loss_pq;
        report.first_loss_ivf = g.loss_ivf;
        report.w_ivf = g.loss_ivf > 0 ? static_cast<float>(g.loss_pq / g.loss_ivf) : 1.0f;
      }
      report.last_loss_pq = g.loss_pq;
      report.last_loss_ivf = g.loss_ivf;
      const float sched = Schedule(step, total);
      adam.Update(&books->pq, g.grad_pq, report.lr_pq * sched, opt.weight_decay);
      // SGD on the centroids. With lr_ivf = 0 the step is normalised by the gradient's RMS and
      // scaled to the centroids' RMS: a gradient's size varies by orders of magnitude between
      // data sets (it vanishes when a batch's candidates share one list), its direction does not.
      const double grms = Rms(g.grad_centroids_ivf);
      if (grms > 1e-12) {
        const float lr_c = opt.lr_ivf > 0 ? opt.lr_ivf * report.w_ivf * sched
                                          : static_cast<float>(report.lr_ivf * sched / grms);
        for (size_t i = 0; i < books->centroids.size(); ++i) books->centroids[i] -= lr_c * g.grad_centroids_ivf[i];
      }
      if (opt.on_step) opt.on_step(step + 1, total, g.loss_pq, g.loss_ivf);
      if (held > 0 && s + 1 == steps_per_epoch) {
        const double recall = held_out_recall(*books);
        report.validation_recall.push_back(recall);
        if (recall > report.validation_recall[static_cast<size_t>(report.best_epoch)]) {
          report.best_epoch = epoch + 1;
          best_books = *books;
        }
        if (opt.on_validation) opt.on_validation(epoch + 1, recall);
      }
      if (opt.on_epoch && s + 1 == steps_per_epoch && epoch + 1 < opt.epochs) save(epoch + 1);
      if (opt.stop && opt.stop->load()) return Status::Unavailable("Distill-VQ training was stopped");
    }
  }
  if (held > 0 && report.best_epoch < opt.epochs) {  // an earlier epoch measured better: return it
    const uint64_t generation = books->generation;
    *books = report.best_epoch == 0 ? initial : best_books;
    books->generation = generation;
  }
  report.steps = step;
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace m3vdb::quant
