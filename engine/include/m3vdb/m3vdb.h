// m3vdb: the embedded library.
//
// A `Database` is one directory holding one RocksDB instance. It holds named `Collection`s;
// each collection has a fixed schema (dense dimension and metric, whether sparse lexical
// weights and ColBERT vectors are stored) and holds documents keyed by a string id.
//
// Durability: `Upsert` and `Delete` apply a whole batch atomically (one RocksDB WriteBatch)
// and return only after RocksDB accepted it; with `Options::sync` (the default) the write-ahead
// log is fsynced first, so an acknowledged batch survives a crash of the process or machine.
// A rejected batch (any invalid document) writes nothing.
//
// Search is exact in this version: dense top-R by brute force, sparse top-R from an inverted
// index, the union reranked with every mode the query carries (dense, sparse, ColBERT MaxSim)
// and fused (weighted sum of raw scores, or reciprocal-rank fusion).
//
// Thread safety: `Database` and `Collection` are safe to use from many threads at once. Writes
// to one collection are serialized; searches run concurrently with each other and with a
// writer, and see every batch acknowledged before the search started (never part of a batch).
// `Collection` handles are shared: a handle stays valid after `DropCollection`, but every
// operation on it then fails with FailedPrecondition.
//
// Text: with `Options::model_dir` set, the database loads a BGE-M3 model (embedder/embedder.h)
// when it opens; the model is loaded once per process and shared by every database opened with
// the same directory and encoder options. A collection created with `schema.model` embeds
// text with it: a document with `text` whose dense vector (or sparse weights / ColBERT vectors
// the collection stores) is missing gets the missing parts from one forward pass of the
// encoder (the whole batch is encoded in one call), and a `Query` with `text` is encoded the
// same way. Parts the caller gives are always used as given. A database whose collections use a
// model opens without one too; only text encoding on those collections then fails.
//
// Errors are values: nothing here throws, and bad input never crashes the process.
// This header needs only the C++20 standard library.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "m3vdb/metric.h"
#include "m3vdb/status.h"

namespace m3vdb {


// The learned IVF-PQ index of a collection's dense vectors. Until it is trained the collection
// searches exactly; `Collection::Train` (or reaching `train_threshold`) learns the codebooks
// (k-means initialisation, then Distill-VQ) and switches dense candidate generation to IVF-PQ.
// Candidates are always reranked with the exact stored vectors.
struct IndexSettings {
  uint32_t nlist = 256;          // IVF lists
  uint32_t m = 0;                // PQ bytes per vector, must divide dense_dim; 0 = largest divisor <= dim/16
  bool opq = false;              // learn an OPQ rotation at initialisation (slow on large dims)
  bool distill = true;           // Distill-VQ after k-means (false: plain k-means codebooks)
  int epochs = 4;                // Distill-VQ epochs
  int nprobe = 16;               // lists probed when a search does not say
  uint64_t train_threshold = 0;  // train automatically once this many documents are stored; 0 = never
};

struct CollectionSchema {
  uint32_t dense_dim = 0;        // dimension of the dense vector every document carries (> 0;
                                 // with `model`, 0 means the model's hidden size)
  Metric metric = Metric::kInnerProduct;
  bool sparse = false;           // store and index sparse lexical weights
  bool colbert = false;          // store ColBERT multi-vectors
  uint32_t colbert_dim = 0;      // width of each ColBERT vector; 0 means "same as dense_dim"
                                 // (with `model`: the model's ColBERT width)
  IndexSettings index;
  // Embed text with the database's model (Options::model_dir). Creating such a collection needs
  // a model, and dense_dim / colbert_dim must equal the model's widths.
  bool model = false;
};

struct TrainOptions {
  // Training queries (row-major, n x dense_dim), e.g. a query log. Empty: documents sampled from
  // the collection act as queries (see quant/distill_trainer.h for why that works).
  std::vector<float> queries;
  uint64_t seed = 1234;
  // Progress: phase ("kmeans", "distill", "encode"), fraction done in [0, 1], current loss.
  std::function<void(std::string_view phase, double fraction, double loss)> progress;
  // Cancellation: when set and true, training gives up with Unavailable at its next check
  // (after k-means, after every Distill-VQ step, before the codes are written); k-means itself
  // runs to its end. A cancelled training changes no index: the previous one keeps serving.
  const std::atomic<bool>* cancel = nullptr;
};
// Checkpoints: training stores the k-means codebooks and, after every Distill-VQ epoch but the
// last, the trainer's state in the database (docs/formats.md, "train checkpoint"). A Train that
// was cancelled, failed or killed (even with kill -9) leaves them behind; the next Train of the
// same collection with the same documents, queries, seed and settings skips k-means and resumes
// Distill-VQ after the last completed epoch, and learns exactly (bit for bit, on the same
// trainer backend and thread count) the codebooks of an uninterrupted run. A checkpoint of other
// inputs is ignored. It is deleted with the trained generation's commit and by DropCollection.

struct TrainReport {
  uint64_t generation = 0;       // codebook generation now serving searches
  size_t documents = 0;          // documents the codebooks were trained on
  double kmeans_seconds = 0, distill_seconds = 0, total_seconds = 0;
  double first_loss = 0, last_loss = 0;  // Distill-VQ PQ loss
  bool resumed_kmeans = false;   // the k-means codebooks came from a checkpoint (k-means skipped)
  int resumed_epochs = 0;        // Distill-VQ epochs taken from a checkpoint (0: started at epoch 0)
  // Best-epoch selection (quant/distill_trainer.h): recall@10 of the codebooks on training
  // queries held out of Distill-VQ, [0] the k-means start, [e] after epoch e, and the epoch whose
  // codebooks were kept (0: the k-means ones); empty and -1 when it did not run.
  std::vector<double> validation_recall;
  int best_epoch = -1;
};

struct IndexInfo {
  std::string kind = "flat";     // "flat" (exact) or "ivfpq"
  uint64_t generation = 0;       // 0 until trained
  uint32_t nlist = 0, m = 0;
  size_t bytes_per_vector = 0;   // PQ code bytes (flat: 4 * dense_dim)
  bool training = false;         // a training run is in progress
};

// Sparse lexical weights: token ids (strictly increasing, >= 0) and their weights (finite).
struct SparseVector {
  std::vector<int32_t> indices;
  std::vector<float> values;
  bool empty() const { return indices.empty(); }
};

// ColBERT vectors of one text: `rows` vectors of equal width, row-major, size rows*width.
struct MultiVector {
  std::vector<float> data;
  uint32_t rows = 0;
  bool empty() const { return rows == 0; }
};

struct Document {
  std::string id;             // 1..Limits::max_id_bytes bytes, unique within a batch
  std::string text;           // optional, stored as is; in a model collection, encoded to fill
                              // whichever of dense / sparse / colbert the document lacks
  std::string metadata_json;  // optional; when set, must be a JSON object
  std::vector<float> dense;   // exactly schema.dense_dim finite values (may be left empty in a
                              // model collection when `text` is set)
  SparseVector sparse;        // optional; only for collections with schema.sparse
  MultiVector colbert;        // optional; only for collections with schema.colbert
};

enum class Fusion {
  kWeighted,  // sum over modes of weight * raw score
  kRrf,       // reciprocal-rank fusion: sum over modes of 1 / (60 + rank within candidates)
};

struct ModeWeights {
  float dense = 1.0f;    // defaults are the M3 paper's MIRACL/MKQA weights
  float sparse = 0.3f;
  float colbert = 1.0f;
};

// A query: any subset of the three modes. Candidates come from the dense and sparse modes;
// a ColBERT-only query is answered by an exact scan of every stored ColBERT matrix.
struct Query {
  std::vector<float> dense;   // empty = no dense mode
  SparseVector sparse;        // empty = no sparse mode
  MultiVector colbert;        // empty = no ColBERT mode
  std::string text;           // model collections only: encoded, filling every mode the query
                              // lacks and the collection stores (dense always)
};

struct SearchOptions {
  int top_k = 10;             // 1..Limits::max_top_k
  int rerank_k = 100;         // R: dense top-R and sparse top-R candidates (raised to top_k)
  Fusion fusion = Fusion::kWeighted;
  ModeWeights weights;
  int nprobe = 0;             // IVF lists probed by a quantized dense index; 0 = its default.
                              // Ignored by exact search.
  bool include_metadata = true;
  bool include_text = false;
  bool exact = false;         // dense candidates by an exact scan even when a learned index is
                              // trained (ground truth for measuring the index's recall)
};

struct ModeScores {
  std::optional<float> dense;    // present when the query has the mode
  std::optional<float> sparse;   // present when the query has the mode (0 when no overlap)
  std::optional<float> colbert;  // present when the query and the document have the mode
};

struct SearchHit {
  std::string id;
  float score = 0;           // fused score
  ModeScores scores;
  std::string metadata_json; // when SearchOptions::include_metadata
  std::string text;          // when SearchOptions::include_text
};

// Sizes a client controls, each with a limit. Exceeding one is ResourceExhausted (or
// InvalidArgument where the value is simply malformed).
struct Limits {
  size_t max_id_bytes = 512;
  size_t max_text_bytes = 1 << 20;
  size_t max_metadata_bytes = 64 << 10;
  uint32_t max_dense_dim = 65536;
  size_t max_sparse_terms = 65536;
  uint32_t max_colbert_rows = 8192;
  size_t max_batch_documents = 100000;  // documents of one Upsert, ids of one Delete
  int max_top_k = 10000;
  int max_rerank_k = 100000;
};

// How inputs longer than the checkpoint's positions are handled (embedder::LongInputMode).
enum class LongInputMode {
  kTruncate,              // keep the first max_length tokens; logs a warning
  kInterpolatePositions,  // position interpolation
  kChunkAverage,          // split into position-sized chunks and average their outputs
};
enum class EncoderDevice { kAuto, kCpu, kCuda };  // kAuto: CUDA when built with it and a GPU exists

// Options of the text encoder (embedder::Options).
struct EncoderOptions {
  size_t max_length = 8192;     // tokens incl. <s> and </s>; capped by the checkpoint's positions
  size_t batch_size = 16;       // texts per forward pass
  size_t batch_tokens = 16384;  // and at most this many tokens per forward pass
  int threads = 0;              // worker threads per encode call; 0 = all cores
  LongInputMode long_input = LongInputMode::kTruncate;
  EncoderDevice device = EncoderDevice::kAuto;
  std::string weights_file;     // file in the model directory; empty = model.safetensors when
                                // present, else pytorch_model.bin
};

struct Options {
  bool create_if_missing = true;
  bool sync = true;               // fsync the WAL before acknowledging a write
  size_t block_cache_bytes = 256 << 20;
  Limits limits;
  // BGE-M3 release directory (config.json, model.safetensors or pytorch_model.bin, the two
  // heads, sentencepiece.bpe.model); empty = no model. Loaded by Database::Open, which fails
  // with the loader's error when the directory is not a valid checkpoint.
  std::string model_dir;
  EncoderOptions encoder;
};

// The encoder outputs for one text (same shapes as Document's vectors; ColBERT not rounded).
struct TextEmbedding {
  std::vector<int32_t> tokens;  // fairseq ids including <s> (0) and </s> (2)
  std::vector<float> dense;
  SparseVector sparse;
  MultiVector colbert;
};

// The database's model and what it has encoded in this process (all users of the shared model).
struct ModelInfo {
  std::string dir;              // canonical model directory
  std::string backend;          // "cpu" or "cuda"
  uint32_t dim = 0;             // dense width (hidden size)
  uint32_t colbert_dim = 0;
  size_t max_length = 0;        // effective max_length
  uint64_t texts_total = 0;     // texts encoded
  uint64_t tokens_total = 0;    // tokens encoded (incl. <s> and </s>)
  double encode_seconds_total = 0;  // wall time spent in encode calls
};

// Options of one write. `progress_marker`: an opaque value the application stores with the
// collection, replaced in the same atomic batch as the documents (e.g. a loader's input
// position: after a crash, the marker read back says exactly which batches landed).
struct UpsertOptions {
  std::optional<std::string> progress_marker;
};

struct CollectionInfo {
  std::string name;
  CollectionSchema schema;
  uint64_t count = 0;
};

class Collection {
 public:
  virtual ~Collection() = default;
  Collection(const Collection&) = delete;
  Collection& operator=(const Collection&) = delete;

  virtual const std::string& name() const = 0;
  virtual const CollectionSchema& schema() const = 0;

  // Inserts or replaces every document of the batch, all or nothing. Replacing an id replaces
  // everything stored for it (a mode absent from the new document is removed).
  Status Upsert(std::span<const Document> batch) { return Upsert(batch, UpsertOptions{}); }
  // The same, also replacing the collection's progress marker when `options` has one, in the
  // same batch. An empty batch with a marker writes just the marker.
  virtual Status Upsert(std::span<const Document> batch, const UpsertOptions& options) = 0;
  // The last progress marker written (std::nullopt: none yet).
  virtual Result<std::optional<std::string>> GetProgressMarker() const = 0;
  // Checks documents against the schema and limits as Upsert would, writing nothing (and
  // encoding nothing: the vectors a model collection derives from text are not checked).
  virtual Status Validate(std::span<const Document> batch) const = 0;

  // The stored document (dense, sparse, ColBERT values as stored: ColBERT is kept as fp16).
  virtual Result<Document> Get(const std::string& id) const = 0;

  // Deletes the ids that exist, all or nothing; returns how many existed.
  virtual Result<size_t> Delete(std::span<const std::string> ids) = 0;

  virtual Result<std::vector<SearchHit>> Search(const Query& query,
                                                const SearchOptions& options) const = 0;
  // Many queries at once; dense scoring is batched over the queries (one GEMM per block).
  virtual Result<std::vector<std::vector<SearchHit>>> SearchBatch(
      std::span<const Query> queries, const SearchOptions& options) const = 0;

  virtual uint64_t Count() const = 0;

  // Learns the IVF-PQ codebooks from the stored vectors (schema().index) and swaps them in
  // atomically: searches continue during training (on the previous index) and writes are
  // blocked only while the final codes are written. Retraining makes a new generation.
  virtual Result<TrainReport> Train(const TrainOptions& options) = 0;
  virtual IndexInfo GetIndexInfo() const = 0;

 protected:
  Collection() = default;
};

class Database {
 public:
  // Opens (or, with create_if_missing, creates) the database in directory `path`, restoring
  // every collection and rebuilding the in-memory indexes from what is stored.
  static Result<std::unique_ptr<Database>> Open(const Options& options, const std::string& path);

  virtual ~Database() = default;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  virtual Result<std::shared_ptr<Collection>> CreateCollection(const std::string& name,
                                                               const CollectionSchema& schema) = 0;
  virtual Result<std::shared_ptr<Collection>> GetCollection(const std::string& name) const = 0;
  virtual std::vector<CollectionInfo> ListCollections() const = 0;
  // Removes the collection and everything stored for it, atomically.
  virtual Status DropCollection(const std::string& name) = 0;
  // Writes a consistent copy of the whole database to directory `dir` (which must not exist)
  // while reads and writes go on: a RocksDB checkpoint (hard links where the file system
  // allows). The copy opens with Database::Open like any database directory.
  virtual Status Checkpoint(const std::string& dir) const = 0;

  // Encodes texts with the database's model, in input order (Limits::max_text_bytes and
  // max_batch_documents apply). FailedPrecondition when no model is configured.
  virtual Result<std::vector<TextEmbedding>> Embed(std::span<const std::string> texts) const = 0;
  // The model, or nullopt when none is configured.
  virtual std::optional<ModelInfo> GetModelInfo() const = 0;

 protected:
  Database() = default;
};

}  // namespace m3vdb
