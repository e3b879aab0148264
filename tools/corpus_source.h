// The input of `m3vdb build`, one record at a time: a JSONL corpus (plain or .gz; one JSON
// object per line, see tools/corpus_record.h) or a dense matrix (.npy / .fvecs; row i becomes
// the document with id "i"). A source can stop and continue at any record boundary
// (`offset()`/`line()` then `Seek`), which is what a resumed build does. One owner.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "m3vdb/m3vdb.h"
#include "tools/corpus_record.h"

namespace m3vdb::tools {

class CorpusSource {
 public:
  static Result<std::unique_ptr<CorpusSource>> Open(const std::string& path);
  virtual ~CorpusSource() = default;

  // Continues at a position taken from offset() and line() earlier.
  virtual Status Seek(uint64_t offset, uint64_t line) = 0;
  // The next record: false at the end. A bad record is not an error of the call: it sets
  // `*problem` (InvalidArgument with the reason) and returns true with `doc` unspecified.
  // An unreadable file is an error of the call.
  virtual Result<bool> Next(const RecordRules& rules, Document* doc, Status* problem) = 0;

  virtual uint64_t offset() const = 0;  // position after the last record read
  virtual uint64_t line() const = 0;    // 1-based number of the last record read
  virtual double fraction() const = 0;  // share of the input read, for progress
  // Dimension of a vector file; 0 for JSONL (the records say).
  virtual uint32_t dense_dim() const { return 0; }
  virtual bool is_jsonl() const = 0;
};

}  // namespace m3vdb::tools
