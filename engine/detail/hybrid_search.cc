// Hybrid search of a collection (DESIGN.md "Query"): candidates from dense top-R and sparse
// top-R, every candidate rescored exactly in each mode of the query, then fused.
#include <algorithm>
#include <atomic>
#include <shared_mutex>
#include <thread>
#include <unordered_map>

#include "engine/detail/collection_impl.h"
#include "engine/detail/validation.h"
#include "index/colbert.h"
#include "storage/keys.h"
#include "storage/records.h"

namespace m3vdb::engine {

using storage::Family;

namespace {

// Queries per consistent view in SearchBatch: large enough for an efficient GEMM, small enough
// that a writer waiting for the state lock is not held up by a whole large batch.
constexpr size_t kQueryGroup = 128;
constexpr size_t kColbertFetchBlock = 256;

bool HasDense(const Query& q) { return !q.dense.empty(); }
bool HasSparse(const Query& q) { return !q.sparse.empty(); }
bool HasColbert(const Query& q) { return !q.colbert.empty(); }

}  // namespace

Result<std::vector<SearchHit>> CollectionImpl::Search(const Query& query, const SearchOptions& options) const {
  M3VDB_ASSIGN_OR_RETURN(auto all, SearchBatch(std::span<const Query>(&query, 1), options));
  return std::move(all[0]);
}

Result<std::vector<std::vector<SearchHit>>> CollectionImpl::SearchBatch(std::span<const Query> queries,
                                                                        const SearchOptions& options) const {
  M3VDB_RETURN_IF_ERROR(ValidateSearchOptions(limits_, options));
  std::vector<Query> encoded;
  M3VDB_ASSIGN_OR_RETURN(const bool filled, EncodeQueries(queries, &encoded));
  if (filled) queries = encoded;
  for (size_t i = 0; i < queries.size(); ++i)
    M3VDB_RETURN_IF_ERROR(ValidateQuery(schema_, limits_, queries[i])
                              .WithContext(queries.size() > 1 ? "query " + std::to_string(i) : "search"));
  M3VDB_RETURN_IF_ERROR(CheckNotDropped());
  std::vector<std::vector<SearchHit>> out(queries.size());
  // Groups are independent: a large batch spreads them over the machine's cores (each group
  // takes its own consistent view); the first error in group order is returned.
  const size_t groups = (queries.size() + kQueryGroup - 1) / kQueryGroup;
  std::vector<Status> status(groups);
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t g; (g = next++) < groups;) {
      const size_t begin = g * kQueryGroup, n = std::min(kQueryGroup, queries.size() - begin);
      std::vector<std::vector<SearchHit>> group;
      status[g] = SearchGroup(queries.subspan(begin, n), options, &group);
      if (!status[g].ok()) return;
      std::move(group.begin(), group.end(), out.begin() + static_cast<std::ptrdiff_t>(begin));
    }
  };
  const size_t workers = std::min<size_t>(groups, std::max(1u, std::thread::hardware_concurrency()));
  std::vector<std::thread> helpers;
  for (size_t w = 1; w < workers; ++w) helpers.emplace_back(work);
  work();
  for (auto& t : helpers) t.join();
  for (const Status& s : status) M3VDB_RETURN_IF_ERROR(s);
  return out;
}

Status CollectionImpl::SearchGroup(std::span<const Query> queries, const SearchOptions& options,
                                   std::vector<std::vector<SearchHit>>* out) const {
  const size_t top_k = static_cast<size_t>(options.top_k);
  const size_t rerank = std::max(static_cast<size_t>(options.rerank_k), top_k);

  std::shared_lock lock(state_mu_);
  const storage::Snapshot* snap = snapshot_.get();

  // Dense candidates, one batched GEMM scan for every query that has a dense part.
  std::vector<size_t> dense_queries;
  std::vector<float> dense_matrix;
  for (size_t i = 0; i < queries.size(); ++i) {
    if (!HasDense(queries[i])) continue;
    dense_queries.push_back(i);
    dense_matrix.insert(dense_matrix.end(), queries[i].dense.begin(), queries[i].dense.end());
  }
  // With a trained index the candidates come from IVF-PQ (approximate); every candidate is
  // rescored exactly below either way.
  std::vector<std::vector<index::ScoredId>> dense_top;
  if (!dense_queries.empty()) {
    if (ivfpq_ && !options.exact) {
      const size_t nprobe = static_cast<size_t>(options.nprobe > 0 ? options.nprobe : schema_.index.nprobe);
      dense_top = ivfpq_->Search(dense_matrix, dense_queries.size(), rerank, nprobe);
    } else {
      dense_top = dense_.Search(dense_matrix, dense_queries.size(), rerank);
    }
  }

  out->assign(queries.size(), {});
  size_t next_dense = 0;
  for (size_t qi = 0; qi < queries.size(); ++qi) {
    const Query& q = queries[qi];
    std::vector<Candidate> cands;
    std::unordered_map<uint64_t, size_t> slot;
    auto candidate = [&](uint64_t iid) -> Candidate& {
      auto [it, inserted] = slot.emplace(iid, cands.size());
      if (inserted) cands.push_back(Candidate{iid, {}, {}, {}, 0});
      return cands[it->second];
    };
    if (HasDense(q)) {
      // Approximate scores are not kept: the exact rescoring below sets every dense score.
      for (const auto& s : dense_top[next_dense]) {
        Candidate& c = candidate(s.id);
        if (!ivfpq_ || options.exact) c.dense = s.score;
      }
      ++next_dense;
    }
    if (HasSparse(q)) {
      for (const auto& s : sparse_.Search(q.sparse.indices, q.sparse.values, rerank)) candidate(s.id).sparse = s.score;
    }
    if (!HasDense(q) && !HasSparse(q)) {
      // ColBERT-only query: every document with ColBERT vectors is a candidate (exact scan).
      cands.reserve(has_colbert_.size());
      for (uint64_t iid : has_colbert_) candidate(iid);
    }
    // Exact rescoring of every candidate in every mode the query has.
    if (HasDense(q)) {
      std::vector<uint64_t> ids;
      std::vector<size_t> which;
      for (size_t i = 0; i < cands.size(); ++i)
        if (!cands[i].dense) {
          ids.push_back(cands[i].internal_id);
          which.push_back(i);
        }
      std::vector<std::optional<float>> exact(ids.size());
      dense_.Score(q.dense, ids, exact.data());
      for (size_t i = 0; i < ids.size(); ++i) cands[which[i]].dense = exact[i];
    }
    if (HasSparse(q))
      for (Candidate& c : cands)
        if (!c.sparse) c.sparse = sparse_.Score(q.sparse.indices, q.sparse.values, c.internal_id);
    if (HasColbert(q)) M3VDB_RETURN_IF_ERROR(ScoreColbert(q, snap, &cands));
    FuseAndRank(options.fusion, options.weights, top_k, &cands);
    M3VDB_RETURN_IF_ERROR(FillHits(cands, options, snap, &(*out)[qi]));
  }
  return Status::OK();
}

Status CollectionImpl::ScoreColbert(const Query& q, const storage::Snapshot* snap, std::vector<Candidate>* cands) const {
  const uint32_t width = schema_.colbert_dim;
  std::vector<float> doc, scratch;
  for (size_t begin = 0; begin < cands->size(); begin += kColbertFetchBlock) {
    const size_t end = std::min(cands->size(), begin + kColbertFetchBlock);
    std::vector<std::string> keys;
    std::vector<size_t> which;
    for (size_t i = begin; i < end; ++i) {
      const uint64_t iid = (*cands)[i].internal_id;
      if (!has_colbert_.count(iid)) continue;
      keys.push_back(storage::DocKey(collection_id_, iid));
      which.push_back(i);
    }
    if (keys.empty()) continue;
    M3VDB_ASSIGN_OR_RETURN(auto values, store_->MultiGet(Family::kColbert, keys, snap));
    for (size_t j = 0; j < keys.size(); ++j) {
      if (!values[j])
        return Status::Corruption("colbert vectors of a document in collection '" + name_ + "' are missing");
      uint32_t rows, stored_width;
      M3VDB_RETURN_IF_ERROR(storage::DecodeColbert(*values[j], &doc, &rows, &stored_width));
      if (stored_width != width)
        return Status::Corruption("stored colbert width " + std::to_string(stored_width) + " differs from schema");
      (*cands)[which[j]].colbert = index::MaxSim(q.colbert.data, q.colbert.rows, doc, rows, width, &scratch);
    }
  }
  return Status::OK();
}

Status CollectionImpl::FillHits(const std::vector<Candidate>& cands, const SearchOptions& options,
                                const storage::Snapshot* snap, std::vector<SearchHit>* hits) const {
  hits->resize(cands.size());
  for (size_t i = 0; i < cands.size(); ++i) {
    SearchHit& h = (*hits)[i];
    const Candidate& c = cands[i];
    auto it = user_ids_.find(c.internal_id);
    if (it == user_ids_.end()) return Status::Internal("search hit without a user id");
    h.id = it->second;
    h.score = c.fused;
    h.scores = ModeScores{c.dense, c.sparse, c.colbert};
  }
  if (!options.include_metadata && !options.include_text) return Status::OK();
  std::vector<std::string> keys;
  keys.reserve(cands.size());
  for (const Candidate& c : cands) keys.push_back(storage::DocKey(collection_id_, c.internal_id));
  M3VDB_ASSIGN_OR_RETURN(auto values, store_->MultiGet(Family::kDocs, keys, snap));
  storage::DocRecord rec;
  for (size_t i = 0; i < cands.size(); ++i) {
    if (!values[i]) return Status::Corruption("document record of a search hit is missing");
    M3VDB_RETURN_IF_ERROR(storage::DecodeDoc(*values[i], &rec));
    if (options.include_metadata) (*hits)[i].metadata_json = std::move(rec.metadata_json);
    if (options.include_text) (*hits)[i].text = std::move(rec.text);
  }
  return Status::OK();
}

}  // namespace m3vdb::engine
