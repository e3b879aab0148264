// Training of a collection's learned IVF-PQ index (DESIGN.md "Learned quantization"): k-means
// initialisation, Distill-VQ, then an atomic swap of codes + codebooks (storage and memory).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <shared_mutex>
#include <string>
#include <string_view>

#include "engine/detail/collection_impl.h"
#include "quant/distill_trainer.h"
#include "quant/faiss_bridge.h"
#include "storage/keys.h"
#include "storage/records.h"

namespace m3vdb::engine {

using storage::Family;

namespace {

double Since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

std::vector<uint64_t> CollectionImpl::SortedInternalIds() const {
  std::vector<uint64_t> iids;
  iids.reserve(user_ids_.size());
  for (const auto& entry : user_ids_) iids.push_back(entry.first);
  std::sort(iids.begin(), iids.end());
  return iids;
}

std::optional<TrainCheckpoint> CollectionImpl::LoadTrainCheckpoint(const TrainFingerprint& fingerprint) const {
  auto bytes = store_->Get(Family::kMeta, storage::TrainCheckpointKey(collection_id_));
  if (!bytes.ok()) {
    spdlog::warn("collection '{}': cannot read the training checkpoint, training starts over: {}", name_,
                 bytes.status().ToString());
    return std::nullopt;
  }
  if (!bytes->has_value()) return std::nullopt;
  auto checkpoint = DecodeTrainCheckpoint(**bytes);
  if (!checkpoint.ok()) {
    spdlog::warn("collection '{}': ignoring the training checkpoint, training starts over: {}", name_,
                 checkpoint.status().ToString());
    return std::nullopt;
  }
  if (!(checkpoint->fingerprint == fingerprint)) {
    spdlog::info("collection '{}': ignoring the training checkpoint of other inputs ({}), training starts over",
                 name_, fingerprint.Difference(checkpoint->fingerprint));
    return std::nullopt;
  }
  return std::move(*checkpoint);
}

void CollectionImpl::WriteTrainCheckpoint(const std::string& bytes, const char* what) {
  std::lock_guard write_lock(write_mu_);  // ordered with Drop, which deletes the checkpoint
  if (!CheckNotDropped().ok()) return;
  storage::WriteBatch batch;
  batch.Put(Family::kMeta, storage::TrainCheckpointKey(collection_id_), bytes);
  Status s = store_->Write(batch);
  if (!s.ok())
    spdlog::warn("collection '{}': could not write the training checkpoint ({}): {}", name_, what, s.ToString());
}

namespace {

// Bumped whenever the training procedure changes what it learns from the same inputs, so that a
// checkpoint of an older procedure is not resumed by a newer one.
constexpr std::string_view kTrainProcedure = "m3vdb-train-1";

template <class T>
void Mix(std::string* out, const T& value) {
  out->append(reinterpret_cast<const char*>(&value), sizeof value);
}

// Everything besides the documents and queries that changes the learned codebooks.
uint64_t SettingsHash(const quant::IvfPqParams& p, bool distill, const quant::DistillOptions& o,
                      std::string_view backend) {
  std::string s(kTrainProcedure);
  Mix(&s, p.dim);
  Mix(&s, static_cast<uint8_t>(p.metric == Metric::kL2));
  Mix(&s, p.nlist);
  Mix(&s, p.m);
  Mix(&s, p.nbits);
  Mix(&s, static_cast<uint8_t>(p.opq));
  Mix(&s, p.seed);
  Mix(&s, static_cast<uint8_t>(distill));
  if (distill) {
    Mix(&s, o.epochs);
    Mix(&s, static_cast<uint64_t>(o.batch_queries));
    Mix(&s, static_cast<uint64_t>(o.teacher_top_k));
    Mix(&s, static_cast<uint64_t>(o.candidates_per_query));
    Mix(&s, static_cast<uint64_t>(o.max_queries));
    Mix(&s, o.lr_pq);
    Mix(&s, o.lr_ivf);
    Mix(&s, o.weight_decay);
    Mix(&s, o.tau);
    Mix(&s, o.tau_code);
    Mix(&s, o.seed);
    s.append(backend);
  }
  return quant::Fnv1a64(s);
}

}  // namespace

Result<TrainReport> CollectionImpl::Train(const TrainOptions& options) {
  M3VDB_RETURN_IF_ERROR(CheckNotDropped());
  const size_t d = schema_.dense_dim;
  if (options.queries.size() % d != 0)
    return Status::InvalidArgument("training queries have " + std::to_string(options.queries.size()) +
                                   " values, not a multiple of dense_dim " + std::to_string(d));
  for (float v : options.queries)
    if (!std::isfinite(v)) return Status::InvalidArgument("training queries have a non-finite value");
  std::unique_lock train_lock(train_mu_, std::try_to_lock);
  if (!train_lock.owns_lock()) return Status::Unavailable("collection '" + name_ + "' is already training");
  training_.store(true);
  struct Reset {
    std::atomic<bool>* flag;
    ~Reset() { flag->store(false); }
  } reset{&training_};
  const auto start = std::chrono::steady_clock::now();

  // 1. Copy the vectors (shared lock: searches and writers go on).
  std::vector<float> vectors;
  uint64_t generation = 1;
  TrainFingerprint fingerprint;
  {
    std::shared_lock lock(state_mu_);
    // In internal-id order, not the hash map's: the map's order depends on its history, so a
    // database reopened (or a build resumed) would otherwise train on a permuted input and,
    // k-means being order-sensitive, learn different codebooks from the same documents.
    const std::vector<uint64_t> iids = SortedInternalIds();
    vectors.resize(iids.size() * d);
    for (size_t i = 0; i < iids.size(); ++i) {
      auto v = dense_.Vector(iids[i]);
      std::copy(v.begin(), v.end(), vectors.begin() + i * d);
    }
    if (ivfpq_) generation = ivfpq_->codebooks().generation + 1;
    fingerprint.documents = iids.size();
    fingerprint.ids_hash = quant::Fnv1a64(
        std::string_view(reinterpret_cast<const char*>(iids.data()), iids.size() * sizeof(uint64_t)));
  }
  const size_t n = vectors.size() / d;
  quant::IvfPqParams params;
  params.dim = schema_.dense_dim;
  params.metric = schema_.metric;
  params.nlist = schema_.index.nlist;
  params.m = schema_.index.m;
  params.opq = schema_.index.opq;
  params.seed = options.seed;
  if (n < std::max<size_t>(params.nlist, params.ksub()))
    return Status::FailedPrecondition("collection '" + name_ + "' has " + std::to_string(n) +
                                      " documents; training nlist=" + std::to_string(params.nlist) +
                                      " needs at least " + std::to_string(std::max(params.nlist, params.ksub())));
  const bool distill = schema_.index.distill && schema_.index.epochs > 0;
  quant::DistillOptions opt;
  opt.epochs = schema_.index.epochs;
  opt.seed = options.seed;
  std::unique_ptr<quant::DistillBackend> backend;
  if (distill) {
    M3VDB_ASSIGN_OR_RETURN(backend, quant::CreateDistillBackend(opt.device));
  }
  const size_t nq = options.queries.size() / d;
  {
    const uint64_t count = nq;
    const uint64_t h = quant::Fnv1a64(std::string_view(reinterpret_cast<const char*>(&count), sizeof count));
    fingerprint.queries_hash = quant::Fnv1a64(
        std::string_view(reinterpret_cast<const char*>(options.queries.data()), options.queries.size() * sizeof(float)),
        h);
  }
  fingerprint.settings_hash = SettingsHash(params, distill, opt, backend ? backend->name() : "");
  std::optional<TrainCheckpoint> checkpoint = LoadTrainCheckpoint(fingerprint);
  if (checkpoint) {  // the settings hash covers these; a cheap second check before using the books
    const quant::IvfPqParams& k = checkpoint->kmeans.params;
    if (k.dim != params.dim || k.metric != params.metric || k.nlist != params.nlist || k.m != params.m ||
        k.nbits != params.nbits || checkpoint->kmeans.rotation.empty() == params.opq) {
      spdlog::warn("collection '{}': ignoring the training checkpoint: its codebooks do not match the index settings",
                   name_);
      checkpoint.reset();
    }
  }

  // 2. Learn the codebooks with no lock held.
  TrainReport report;
  report.documents = n;
  if (options.progress) options.progress("kmeans", 0.0, 0.0);
  auto t = std::chrono::steady_clock::now();
  quant::Codebooks books;
  std::string kmeans_bytes;
  if (checkpoint) {
    books = std::move(checkpoint->kmeans);
    kmeans_bytes = books.Serialize();
    report.resumed_kmeans = true;
    spdlog::info("collection '{}': k-means codebooks taken from the training checkpoint", name_);
  } else {
    M3VDB_ASSIGN_OR_RETURN(books, quant::TrainKMeans(vectors.data(), n, params));
    report.kmeans_seconds = Since(t);
    kmeans_bytes = books.Serialize();
    WriteTrainCheckpoint(EncodeTrainCheckpoint(fingerprint, kmeans_bytes, {}), "k-means");
  }
  if (options.progress) options.progress("kmeans", 1.0, 0.0);
  // Stopped by the engine (database closing, collection dropped) or cancelled by the caller.
  auto stopped = [&] { return stop_.load() || (options.cancel && options.cancel->load()); };
  const auto stopped_error = [&] { return Status::Unavailable("training of '" + name_ + "' was stopped"); };
  if (stopped()) return stopped_error();
  if (distill) {
    std::atomic<bool> stop_distill{false};  // DistillTrain checks it right after every on_step
    opt.on_step = [&](size_t step, size_t total, double loss_pq, double) {
      if (options.progress) options.progress("distill", static_cast<double>(step) / total, loss_pq);
      if (stopped()) stop_distill.store(true);
    };
    opt.stop = &stop_distill;
    opt.on_validation = [&](int epoch, double recall) {
      spdlog::info("collection '{}': Distill-VQ held-out recall@10 {:.4f} {}", name_, recall,
                   epoch == 0 ? std::string("at the k-means (or OPQ) start") : "after epoch " + std::to_string(epoch));
    };
    opt.on_epoch = [&](const quant::DistillState& state) {
      WriteTrainCheckpoint(EncodeTrainCheckpoint(fingerprint, kmeans_bytes, state.Serialize()), "Distill-VQ epoch");
    };
    const quant::DistillState* resume = checkpoint && checkpoint->distill ? &*checkpoint->distill : nullptr;
    if (resume)
      spdlog::info("collection '{}': resuming Distill-VQ at epoch {} of {}", name_, resume->epochs_done + 1,
                   opt.epochs);
    t = std::chrono::steady_clock::now();
    const float* queries = nq ? options.queries.data() : nullptr;
    opt.resume = resume;
    auto rep = quant::DistillTrain(vectors.data(), n, queries, nq, &books, opt, backend.get());
    if (resume && rep.status().code() == StatusCode::kInvalidArgument) {
      // The checkpoint matched the fingerprint but not the trainer's own checks (books is unchanged).
      spdlog::warn("collection '{}': the Distill-VQ checkpoint does not fit ({}); Distill-VQ starts over", name_,
                   rep.status().message());
      opt.resume = nullptr;
      rep = quant::DistillTrain(vectors.data(), n, queries, nq, &books, opt, backend.get());
    }
    M3VDB_RETURN_IF_ERROR(rep.status());
    report.distill_seconds = Since(t);
    report.first_loss = rep->first_loss_pq;
    report.last_loss = rep->last_loss_pq;
    report.resumed_epochs = rep->resumed_epochs;
    report.validation_recall = rep->validation_recall;
    report.best_epoch = rep->best_epoch;
    if (rep->best_epoch >= 0 && rep->best_epoch < opt.epochs)
      spdlog::info("collection '{}': keeping the codebooks of epoch {} (held-out recall@10 {:.4f}, last epoch {:.4f})",
                   name_, rep->best_epoch, rep->validation_recall[static_cast<size_t>(rep->best_epoch)],
                   rep->validation_recall.back());
  }
  books.generation = generation;
  vectors.clear();
  vectors.shrink_to_fit();

  // 3. Encode every current document and swap, with writers held off.
  if (stopped()) return stopped_error();
  if (options.progress) options.progress("encode", 0.0, report.last_loss);
  std::lock_guard write_lock(write_mu_);
  M3VDB_RETURN_IF_ERROR(CheckNotDropped());
  auto shared = std::make_shared<const quant::Codebooks>(std::move(books));
  auto ivf = std::make_shared<index::IvfPqIndex>(shared);
  storage::WriteBatch batch;
  {
    std::shared_lock lock(state_mu_);  // writers are held off by write_mu_; this orders us with readers
    const std::vector<uint64_t> iids = SortedInternalIds();  // list order = id order, as after a reopen
    std::vector<float> x;
    x.reserve(iids.size() * d);
    for (uint64_t iid : iids) {
      auto v = dense_.Vector(iid);
      x.insert(x.end(), v.begin(), v.end());
    }
    const size_t m = shared->params.code_size();
    std::vector<uint32_t> lists(iids.size());
    std::vector<uint8_t> codes(iids.size() * m);
    shared->Encode(x.data(), iids.size(), lists.data(), codes.data());
    for (size_t i = 0; i < iids.size(); ++i) {
      ivf->Add(iids[i], lists[i], codes.data() + i * m);
      batch.Put(Family::kCodes, storage::DocKey(collection_id_, iids[i]),
                storage::EncodeCode(shared->generation, lists[i], codes.data() + i * m, m));
    }
  }
  batch.Put(Family::kMeta, storage::CodebooksKey(collection_id_), shared->Serialize());
  batch.Delete(Family::kMeta, storage::TrainCheckpointKey(collection_id_));  // the generation it led to is in
  M3VDB_RETURN_IF_ERROR(store_->Write(batch));
  Publish([&] { ivfpq_ = std::move(ivf); });
  report.generation = shared->generation;
  report.total_seconds = Since(start);
  if (options.progress) options.progress("encode", 1.0, report.last_loss);
  std::string resumed;
  if (report.resumed_kmeans) {
    resumed = " (resumed from a checkpoint: k-means skipped";
    if (report.resumed_epochs > 0) resumed += ", Distill-VQ from epoch " + std::to_string(report.resumed_epochs + 1);
    resumed += ")";
  }
  spdlog::info("collection '{}': IVF-PQ generation {} trained on {} vectors (nlist {}, m {}) in {:.1f} s{}", name_,
               report.generation, n, shared->params.nlist, shared->params.m, report.total_seconds, resumed);
  return report;
}

void CollectionImpl::MaybeStartAutoTrain() {
  const uint64_t threshold = schema_.index.train_threshold;
  if (threshold == 0 || training_.load() || stop_.load()) return;
  {
    std::shared_lock lock(state_mu_);
    if (ivfpq_ || user_ids_.size() < threshold) return;
  }
  std::lock_guard lock(thread_mu_);
  if (auto_train_.joinable() || stop_.load()) return;  // started once per process; retrain is explicit
  auto_train_ = std::thread([this] {
    auto r = Train(TrainOptions{});
    if (!r.ok()) spdlog::warn("collection '{}': automatic training failed: {}", name_, r.status().ToString());
  });
}

}  // namespace m3vdb::engine
