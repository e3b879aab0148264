#include "quant/distill_state.h"

#include <cstring>
#include <random>
#include <sstream>
#include <vector>

namespace m3vdb::quant {
namespace {

constexpr uint8_t kDistillStateVersion = 2;  // 2: best-epoch selection added
constexpr size_t kMaxRngText = 1 << 16;  // mt19937_64's text form is about 6 KB

}  // namespace

uint64_t Fnv1a64(std::string_view bytes, uint64_t h) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::string DistillState::Serialize() const {
  std::string out;
  auto put = [&out](const void* p, size_t n) { out.append(static_cast<const char*>(p), n); };
  out.push_back(static_cast<char>(kDistillStateVersion));
  put(&epochs_done, 4);
  put(&epochs, 4);
  put(&steps_per_epoch, 8);
  put(&step, 8);
  put(&documents, 8);
  put(&queries, 8);
  put(&seed, 8);
  put(&initial_books_hash, 8);
  put(&adam_t, 8);
  put(&first_loss_pq, 8);
  put(&first_loss_ivf, 8);
  put(&last_loss_pq, 8);
  put(&last_loss_ivf, 8);
  put(&tau, 4);
  put(&tau_code, 4);
  put(&lr_pq, 4);
  put(&lr_ivf, 4);
  put(&w_ivf, 4);
  const uint32_t rng_len = static_cast<uint32_t>(rng.size());
  put(&rng_len, 4);
  put(rng.data(), rng.size());
  const std::string books_bytes = books.Serialize();
  const uint64_t books_len = books_bytes.size();
  put(&books_len, 8);
  put(books_bytes.data(), books_bytes.size());
  const uint64_t order_len = order.size();
  put(&order_len, 8);
  put(order.data(), order.size() * 4);
  const uint64_t adam_len = adam_m.size();
  put(&adam_len, 8);
  put(adam_m.data(), adam_m.size() * 4);
  put(adam_v.data(), adam_v.size() * 4);
  const uint64_t recall_len = validation_recall.size();
  put(&recall_len, 8);
  put(validation_recall.data(), validation_recall.size() * 8);
  put(&best_epoch, 4);
  const std::string best_bytes = best_epoch > 0 ? best_books.Serialize() : std::string();
  const uint64_t best_len = best_bytes.size();
  put(&best_len, 8);
  put(best_bytes.data(), best_bytes.size());
  return out;
}

Result<DistillState> DistillState::Parse(std::string_view in) {
  DistillState s;
  size_t pos = 0;
  auto get = [&](void* p, size_t n) {
    if (in.size() - pos < n) return false;
    if (n > 0) std::memcpy(p, in.data() + pos, n);
    pos += n;
    return true;
  };
  uint8_t version = 0;
  if (!get(&version, 1)) return Status::Corruption("Distill-VQ state is empty");
  if (version != kDistillStateVersion)
    return Status::Corruption("Distill-VQ state has unknown version " + std::to_string(version));
  uint32_t rng_len = 0;
  if (!get(&s.epochs_done, 4) || !get(&s.epochs, 4) || !get(&s.steps_per_epoch, 8) || !get(&s.step, 8) ||
      !get(&s.documents, 8) || !get(&s.queries, 8) || !get(&s.seed, 8) || !get(&s.initial_books_hash, 8) || !get(&s.adam_t, 8) ||
      !get(&s.first_loss_pq, 8) || !get(&s.first_loss_ivf, 8) || !get(&s.last_loss_pq, 8) ||
      !get(&s.last_loss_ivf, 8) || !get(&s.tau, 4) || !get(&s.tau_code, 4) || !get(&s.lr_pq, 4) ||
      !get(&s.lr_ivf, 4) || !get(&s.w_ivf, 4) || !get(&rng_len, 4))
    return Status::Corruption("Distill-VQ state header is truncated");
  if (s.epochs_done == 0 || s.epochs_done >= s.epochs || s.steps_per_epoch == 0 ||
      s.step / s.epochs_done != s.steps_per_epoch || s.step % s.epochs_done != 0 ||
      s.adam_t != static_cast<int64_t>(s.step))
    return Status::Corruption("Distill-VQ state header is inconsistent (epoch " + std::to_string(s.epochs_done) +
                              " of " + std::to_string(s.epochs) + ", step " + std::to_string(s.step) + ")");
  if (rng_len > kMaxRngText || in.size() - pos < rng_len)
    return Status::Corruption("Distill-VQ state random engine is truncated");
  s.rng.assign(in.data() + pos, rng_len);
  pos += rng_len;
  {
    std::istringstream text(s.rng);
    std::mt19937_64 engine;
    text >> engine;
    if (text.fail() || !(text >> std::ws).eof()) return Status::Corruption("Distill-VQ state random engine is malformed");
  }
  uint64_t books_len = 0;
  if (!get(&books_len, 8) || in.size() - pos < books_len)
    return Status::Corruption("Distill-VQ state codebooks are truncated");
  auto books = Codebooks::Parse(in.substr(pos, books_len));
  if (!books.ok()) return Status::Corruption("Distill-VQ state: " + books.status().message());
  s.books = std::move(*books);
  pos += books_len;
  uint64_t order_len = 0;
  if (!get(&order_len, 8) || order_len != s.queries || (in.size() - pos) / 4 < order_len)
    return Status::Corruption("Distill-VQ state query order is truncated or has the wrong size");
  s.order.resize(order_len);
  get(s.order.data(), order_len * 4);
  {
    std::vector<bool> seen(order_len, false);
    for (uint32_t q : s.order) {
      if (q >= order_len || seen[q]) return Status::Corruption("Distill-VQ state query order is not a permutation");
      seen[q] = true;
    }
  }
  uint64_t adam_len = 0;
  if (!get(&adam_len, 8)) return Status::Corruption("Distill-VQ state optimizer is truncated");
  if (adam_len != s.books.pq.size())
    return Status::Corruption("Distill-VQ state optimizer has " + std::to_string(adam_len) + " moments for " +
                              std::to_string(s.books.pq.size()) + " PQ values");
  if ((in.size() - pos) / 8 < adam_len) return Status::Corruption("Distill-VQ state optimizer is truncated");
  s.adam_m.resize(adam_len);
  s.adam_v.resize(adam_len);
  get(s.adam_m.data(), adam_len * 4);
  get(s.adam_v.data(), adam_len * 4);
  uint64_t recall_len = 0;
  if (!get(&recall_len, 8) || (recall_len != 0 && recall_len != uint64_t{s.epochs_done} + 1) ||
      (in.size() - pos) / 8 < recall_len)
    return Status::Corruption("Distill-VQ state held-out recalls are truncated or have the wrong count");
  s.validation_recall.resize(recall_len);
  get(s.validation_recall.data(), recall_len * 8);
  uint64_t best_len = 0;
  if (!get(&s.best_epoch, 4) || !get(&best_len, 8) || in.size() - pos != best_len)
    return Status::Corruption("Distill-VQ state best codebooks are truncated or have the wrong size");
  if (s.best_epoch > s.epochs_done || (s.best_epoch > 0) != (best_len > 0) || (s.best_epoch > 0 && recall_len == 0))
    return Status::Corruption("Distill-VQ state names best epoch " + std::to_string(s.best_epoch) + " of " +
                              std::to_string(s.epochs_done));
  if (best_len > 0) {
    auto best = Codebooks::Parse(in.substr(pos, best_len));
    if (!best.ok()) return Status::Corruption("Distill-VQ state best codebooks: " + best.status().message());
    s.best_books = std::move(*best);
  }
  return s;
}

}  // namespace m3vdb::quant
