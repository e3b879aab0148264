#include "tools/corpus_source.h"

#include "tools/line_reader.h"
#include "tools/vector_io.h"

namespace m3vdb::tools {
namespace {

class JsonlSource final : public CorpusSource {
 public:
  explicit JsonlSource(std::unique_ptr<LineReader> reader) : reader_(std::move(reader)) {}
  Status Seek(uint64_t offset, uint64_t line) override { return reader_->Seek(offset, line); }
  Result<bool> Next(const RecordRules& rules, Document* doc, Status* problem) override {
    M3VDB_ASSIGN_OR_RETURN(bool more, reader_->Next(&text_));
    if (!more) return false;
    auto parsed = ParseCorpusLine(text_, rules);
    if (parsed.ok()) {
      *doc = std::move(*parsed);
      *problem = Status::OK();
    } else {
      *problem = parsed.status();
    }
    return true;
  }
  uint64_t offset() const override { return reader_->offset(); }
  uint64_t line() const override { return reader_->line(); }
  double fraction() const override {
    return reader_->file_size() ? static_cast<double>(reader_->file_position()) / reader_->file_size() : 1.0;
  }
  bool is_jsonl() const override { return true; }

 private:
  std::unique_ptr<LineReader> reader_;
  std::string text_;
};

class VectorSource final : public CorpusSource {
 public:
  explicit VectorSource(std::unique_ptr<VectorFileReader> reader) : reader_(std::move(reader)) {}
  Status Seek(uint64_t offset, uint64_t line) override {
    if (offset != line) return Status::InvalidArgument("a vector file resumes at a row: offset and line must agree");
    return reader_->Seek(offset);
  }
  Result<bool> Next(const RecordRules&, Document* doc, Status* problem) override {
    const uint64_t row = reader_->row();
    doc->dense.clear();
    M3VDB_ASSIGN_OR_RETURN(bool more, reader_->Next(&doc->dense));
    if (!more) return false;
    doc->id = std::to_string(row);
    doc->text.clear();
    doc->metadata_json.clear();
    doc->sparse = {};
    doc->colbert = {};
    *problem = Status::OK();
    return true;
  }
  uint64_t offset() const override { return reader_->row(); }
  uint64_t line() const override { return reader_->row(); }
  double fraction() const override { return static_cast<double>(reader_->row()) / reader_->rows(); }
  uint32_t dense_dim() const override { return static_cast<uint32_t>(reader_->dim()); }
  bool is_jsonl() const override { return false; }

 private:
  std::unique_ptr<VectorFileReader> reader_;
};

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

Result<std::unique_ptr<CorpusSource>> CorpusSource::Open(const std::string& path) {
  if (EndsWith(path, ".npy") || EndsWith(path, ".fvecs")) {
    M3VDB_ASSIGN_OR_RETURN(auto reader, VectorFileReader::Open(path));
    return std::unique_ptr<CorpusSource>(new VectorSource(std::move(reader)));
  }
  M3VDB_ASSIGN_OR_RETURN(auto reader, LineReader::Open(path));
  return std::unique_ptr<CorpusSource>(new JsonlSource(std::move(reader)));
}

}  // namespace m3vdb::tools
