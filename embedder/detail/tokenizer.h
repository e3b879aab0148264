// XLM-R tokenization: sentencepiece (the release's sentencepiece.bpe.model, a unigram model)
// with fairseq ids: <s>=0, <pad>=1, </s>=2, <unk>=3, piece id p >= 3 -> p + 1, spm's unk -> 3.
// Thread-safe after Open (sentencepiece encoding is const).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "m3vdb/status.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace m3vdb::embedder {

inline constexpr int32_t kBos = 0, kPad = 1, kEos = 2, kUnk = 3;

class Tokenizer {
 public:
  // `vocab`: the model's vocab_size; every mapped id must be below it.
  static Result<std::unique_ptr<Tokenizer>> Open(const std::string& path, int vocab);
  ~Tokenizer();

  // Content ids of `text` (no <s>, </s>), untruncated.
  std::vector<int32_t> Encode(std::string_view text) const;

 private:
  Tokenizer();
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
};

}  // namespace m3vdb::embedder
