#include "embedder/detail/tokenizer.h"

#include <sentencepiece_processor.h>

namespace m3vdb::embedder {

Tokenizer::Tokenizer() : sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {}
Tokenizer::~Tokenizer() = default;

Result<std::unique_ptr<Tokenizer>> Tokenizer::Open(const std::string& path, int vocab) {
  std::unique_ptr<Tokenizer> t(new Tokenizer());
  auto status = t->sp_->Load(path);
  if (!status.ok()) {
    std::string msg = path + ": cannot load the sentencepiece model: " + status.ToString();
    return status.code() == sentencepiece::util::StatusCode::kNotFound ? Status::NotFound(msg)
                                                                       : Status::Corruption(msg);
  }
  int pieces = t->sp_->GetPieceSize();
  if (pieces < 4 || !t->sp_->IsUnknown(0) || t->sp_->PieceToId("<s>") != 1 || t->sp_->PieceToId("</s>") != 2)
    return Status::InvalidArgument(path + ": expected <unk>, <s>, </s> as pieces 0, 1, 2 (XLM-R layout)");
  if (pieces + 1 >= vocab)
    return Status::InvalidArgument(path + ": " + std::to_string(pieces) +
                                   " pieces do not fit config.json vocab_size " + std::to_string(vocab));
  return t;
}

std::vector<int32_t> Tokenizer::Encode(std::string_view text) const {
  std::vector<int> pieces;
  if (!sp_->Encode(text, &pieces).ok()) pieces.clear();
  std::vector<int32_t> ids;
  ids.reserve(pieces.size());
  for (int p : pieces) ids.push_back(p == 0 ? kUnk : p + 1);
  return ids;
}

}  // namespace m3vdb::embedder
