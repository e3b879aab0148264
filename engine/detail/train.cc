// Training of a collection's learned IVF-PQ index (DESIGN.md "Learned quantization"): k-means
// initialisation, Distill-VQ, then an atomic swap of codes + codebooks (storage and memory).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <shared_mutex>

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

  // 2. Learn the codebooks with no lock held.
  TrainReport report;
  report.documents = n;
  if (options.progress) options.progress("kmeans", 0.0, 0.0);
  auto t = std::chrono::steady_clock::now();
  M3VDB_ASSIGN_OR_RETURN(quant::Codebooks books, quant::TrainKMeans(vectors.data(), n, params));
  report.kmeans_seconds = Since(t);
  if (options.progress) options.progress("kmeans", 1.0, 0.0);
  // Stopped by the engine (database closing, collection dropped) or cancelled by the caller.
  auto stopped = [&] { return stop_.load() || (options.cancel && options.cancel->load()); };
  const auto stopped_error = [&] { return Status::Unavailable("training of '" + name_ + "' was stopped"); };
  if (stopped()) return stopped_error();
  if (schema_.index.distill && schema_.index.epochs > 0) {
    quant::DistillOptions opt;
    opt.epochs = schema_.index.epochs;
    opt.seed = options.seed;
    std::atomic<bool> stop_distill{false};  // DistillTrain checks it right after every on_step
    opt.on_step = [&](size_t step, size_t total, double loss_pq, double) {
      if (options.progress) options.progress("distill", static_cast<double>(step) / total, loss_pq);
      if (stopped()) stop_distill.store(true);
    };
    opt.stop = &stop_distill;
    t = std::chrono::steady_clock::now();
    const size_t nq = options.queries.size() / d;
    M3VDB_ASSIGN_OR_RETURN(auto rep, quant::DistillTrain(vectors.data(), n, nq ? options.queries.data() : nullptr,
                                                         nq, &books, opt));
    report.distill_seconds = Since(t);
    report.first_loss = rep.first_loss_pq;
    report.last_loss = rep.last_loss_pq;
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
  M3VDB_RETURN_IF_ERROR(store_->Write(batch));
  Publish([&] { ivfpq_ = std::move(ivf); });
  report.generation = shared->generation;
  report.total_seconds = Since(start);
  if (options.progress) options.progress("encode", 1.0, report.last_loss);
  spdlog::info("collection '{}': IVF-PQ generation {} trained on {} vectors (nlist {}, m {}) in {:.1f} s", name_,
               report.generation, n, shared->params.nlist, shared->params.m, report.total_seconds);
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
