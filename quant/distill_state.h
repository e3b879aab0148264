// A checkpoint of a Distill-VQ run (quant/distill_trainer.h) taken after a completed epoch, so
// that a run killed later can continue where it stopped and still end with exactly the
// codebooks of an uninterrupted run.
//
// What it holds: everything the training loop carries from one epoch to the next (the current
// codebooks, the AdamW moments and step count, the state of the one random engine used for the
// per-epoch shuffle and negative sampling, the shuffled query order, the global step) and the report fields that only
// step 0 can produce (first losses, w_ivf), plus tau, tau_code and the learning rates. Everything
// DistillTrain computes before its loop (rotated documents, training-query sample, fixed IVF
// lists, teacher top-K, tau, tau_code, learning rates) is a deterministic function of the inputs
// and the *initial* codebooks, so a resume recomputes it and checks that tau, tau_code and the
// learning rates come out as saved; `initial_books_hash` names the initial codebooks.
//
// Versioned binary form (docs/formats.md, "Distill-VQ state"); Parse checks every size and
// returns Corruption on bad bytes, never reads out of bounds.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "quant/codebooks.h"

namespace m3vdb::quant {

// 64-bit FNV-1a over `bytes`, continuing from `h` (chain calls to hash several pieces).
inline constexpr uint64_t kFnvOffset = 1469598103934665603ull;
uint64_t Fnv1a64(std::string_view bytes, uint64_t h = kFnvOffset);

struct DistillState {
  // Shape of the run: a resume refuses a state whose shape differs from its own.
  uint32_t epochs_done = 0;       // completed epochs (>= 1 and < epochs)
  uint32_t epochs = 0;            // epochs of the run
  uint64_t steps_per_epoch = 0;
  uint64_t step = 0;              // steps done (= epochs_done * steps_per_epoch)
  uint64_t documents = 0;         // n
  uint64_t queries = 0;           // training queries after sampling
  uint64_t seed = 0;              // DistillOptions::seed
  uint64_t initial_books_hash = 0;  // Fnv1a64 of the initial codebooks' Serialize()
  // Loop state.
  Codebooks books;                // current codebooks
  std::vector<float> adam_m, adam_v;  // AdamW moments (size of books.pq)
  int64_t adam_t = 0;             // AdamW step count
  std::string rng;                // std::mt19937_64 state as written by operator<<
  std::vector<uint32_t> order;    // training-query order after the last shuffle (every epoch
                                  // shuffles the previous epoch's order); a permutation of 0..queries-1
  // Best-epoch selection (empty / 0 when it is off): held-out recall of the initial codebooks and
  // after each completed epoch, the best epoch so far and its codebooks (not kept when it is 0:
  // the initial codebooks are the caller's).
  std::vector<double> validation_recall;  // epochs_done + 1 values
  uint32_t best_epoch = 0;
  Codebooks best_books;                   // only when best_epoch > 0
  // Report fields.
  double first_loss_pq = 0, first_loss_ivf = 0, last_loss_pq = 0, last_loss_ivf = 0;
  float tau = 0, tau_code = 0, lr_pq = 0, lr_ivf = 0, w_ivf = 0;

  std::string Serialize() const;
  static Result<DistillState> Parse(std::string_view bytes);
};

}  // namespace m3vdb::quant
