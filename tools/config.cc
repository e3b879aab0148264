#include "tools/config.h"

#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

namespace m3vdb::tools {
namespace {

// One key: how to set it from text, and how to print its current value (the default).
struct KeySpec {
  std::string name, flag, help;
  std::function<Status(Config&, const std::vector<std::string>&)> set;  // one value, or a list's items
  std::function<std::string(const Config&)> get;
  bool list = false;
  std::string type = "TEXT";  // the value's kind in --help
};

Status Bad(std::string_view what, const std::string& got) {
  return Status::InvalidArgument(std::string(what) + ", got '" + got + "'");
}

Status ParseUnsigned(const std::string& text, uint64_t min, uint64_t max, uint64_t* out) {
  uint64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty() || v < min || v > max)
    return Bad("must be an integer in " + std::to_string(min) + ".." + std::to_string(max), text);
  *out = v;
  return Status::OK();
}

// "1048576", "512KiB", "64MiB", "1GiB" (powers of 1024).
Status ParseBytes(const std::string& text, uint64_t min, uint64_t* out) {
  static const std::pair<std::string_view, uint64_t> kUnits[] = {{"KiB", 1ull << 10}, {"MiB", 1ull << 20}, {"GiB", 1ull << 30}};
  std::string digits = text;
  uint64_t unit = 1;
  for (const auto& [suffix, scale] : kUnits) {
    if (text.size() > suffix.size() && text.ends_with(suffix)) {
      digits = text.substr(0, text.size() - suffix.size());
      unit = scale;
    }
  }
  uint64_t v = 0;
  if (!ParseUnsigned(digits, 0, std::numeric_limits<uint64_t>::max() / unit, &v).ok() || v * unit < min)
    return Bad("must be a size in bytes of at least " + std::to_string(min) + " (a number, optionally with KiB, MiB or GiB)",
               text);
  *out = v * unit;
  return Status::OK();
}

Status ParseBool(const std::string& text, bool* out) {
  if (text == "true" || text == "yes" || text == "on") *out = true;
  else if (text == "false" || text == "no" || text == "off") *out = false;
  else return Bad("must be true or false", text);
  return Status::OK();
}

std::string PrintBytes(uint64_t v) {
  if (v != 0 && v % (1ull << 30) == 0) return std::to_string(v >> 30) + "GiB";
  if (v != 0 && v % (1ull << 20) == 0) return std::to_string(v >> 20) + "MiB";
  if (v != 0 && v % (1ull << 10) == 0) return std::to_string(v >> 10) + "KiB";
  return std::to_string(v);
}

// Factories for the kinds of keys. `field` is a generic lambda returning a reference to the
// member, for both `Config&` and `const Config&`.
template <class Field>
KeySpec Unsigned(std::string name, std::string flag, std::string help, Field field, uint64_t min, uint64_t max) {
  return {std::move(name), std::move(flag), std::move(help),
          [=](Config& c, const std::vector<std::string>& v) {
            uint64_t x = 0;
            M3VDB_RETURN_IF_ERROR(ParseUnsigned(v.front(), min, max, &x));
            field(c) = static_cast<std::remove_reference_t<decltype(field(c))>>(x);
            return Status::OK();
          },
          [=](const Config& c) { return std::to_string(field(c)); }, false, "N"};
}

template <class Field>
KeySpec Bytes(std::string name, std::string flag, std::string help, Field field, uint64_t min) {
  return {std::move(name), std::move(flag), std::move(help),
          [=](Config& c, const std::vector<std::string>& v) {
            uint64_t x = 0;
            M3VDB_RETURN_IF_ERROR(ParseBytes(v.front(), min, &x));
            field(c) = static_cast<std::remove_reference_t<decltype(field(c))>>(x);
            return Status::OK();
          },
          [=](const Config& c) { return PrintBytes(field(c)); }, false, "SIZE"};
}

template <class Field>
KeySpec Millis(std::string name, std::string flag, std::string help, Field field) {
  return {std::move(name), std::move(flag), std::move(help),
          [=](Config& c, const std::vector<std::string>& v) {
            uint64_t x = 0;
            M3VDB_RETURN_IF_ERROR(ParseUnsigned(v.front(), 1, 24ull * 3600 * 1000, &x));
            field(c) = std::chrono::milliseconds(x);
            return Status::OK();
          },
          [=](const Config& c) { return std::to_string(field(c).count()); }, false, "MS"};
}

template <class Field>
KeySpec Bool(std::string name, std::string flag, std::string help, Field field) {
  return {std::move(name), std::move(flag), std::move(help),
          [=](Config& c, const std::vector<std::string>& v) { return ParseBool(v.front(), &field(c)); },
          [=](const Config& c) { return std::string(field(c) ? "true" : "false"); }, false, "BOOL"};
}

template <class Field>
KeySpec Text(std::string name, std::string flag, std::string help, Field field) {
  return {std::move(name), std::move(flag), std::move(help),
          [=](Config& c, const std::vector<std::string>& v) {
            field(c) = v.front();
            return Status::OK();
          },
          [=](const Config& c) { return field(c).empty() ? std::string("\"\"") : field(c); }};
}

template <class Field>
KeySpec TextList(std::string name, std::string flag, std::string help, Field field) {
  KeySpec spec{std::move(name), std::move(flag), std::move(help),
               [=](Config& c, const std::vector<std::string>& v) {
                 field(c) = v;
                 return Status::OK();
               },
               [=](const Config& c) { return field(c).empty() ? std::string("[]") : "[" + std::to_string(field(c).size()) + " keys]"; }};
  spec.list = true;
  spec.type = "KEY";
  return spec;
}

// One of a fixed set of names, each standing for an enum value.
template <class Enum, class Field>
KeySpec Choice(std::string name, std::string flag, std::string help, Field field,
               std::vector<std::pair<std::string, Enum>> choices) {
  return {std::move(name), std::move(flag), std::move(help),
          [=](Config& c, const std::vector<std::string>& v) {
            std::string names;
            for (const auto& [n, e] : choices) {
              if (n == v.front()) {
                field(c) = e;
                return Status::OK();
              }
              names += (names.empty() ? "" : ", ") + n;
            }
            return Bad("must be one of " + names, v.front());
          },
          [=](const Config& c) {
            for (const auto& [n, e] : choices)
              if (field(c) == e) return n;
            return std::string("?");
          },
          false, "NAME"};
}

#define M3VDB_FIELD(member) [](auto& c) -> auto& { return c.member; }

const std::vector<KeySpec>& Specs() {
  static const std::vector<KeySpec> specs = [] {
    const uint64_t kU32 = std::numeric_limits<uint32_t>::max();
    const uint64_t kInt = static_cast<uint64_t>(std::numeric_limits<int>::max());
    return std::vector<KeySpec>{
        Text("data_dir", "--data-dir", "database directory (created when missing, with engine.create_if_missing)",
             M3VDB_FIELD(data_dir)),
        Text("model", "--model", "BGE-M3 checkpoint directory for embedding text; empty: vectors only",
             M3VDB_FIELD(engine.model_dir)),
        Unsigned("encoder.max_length", "--max-length", "tokens per text incl. <s> and </s> (capped by the checkpoint)",
                 M3VDB_FIELD(engine.encoder.max_length), 2, kU32),
        Unsigned("encoder.batch_size", "--batch-size", "texts per forward pass", M3VDB_FIELD(engine.encoder.batch_size), 1,
                 65536),
        Unsigned("encoder.batch_tokens", "--batch-tokens", "most tokens per forward pass",
                 M3VDB_FIELD(engine.encoder.batch_tokens), 1, kU32),
        Unsigned("encoder.threads", "--encoder-threads", "worker threads per encode call; 0: all cores",
                 M3VDB_FIELD(engine.encoder.threads), 0, 4096),
        Choice<LongInputMode>("encoder.long_input", "--long-input",
               "texts longer than the checkpoint's positions: truncate, interpolate or chunk",
               M3VDB_FIELD(engine.encoder.long_input),
               {{"truncate", LongInputMode::kTruncate},
                {"interpolate", LongInputMode::kInterpolatePositions},
                {"chunk", LongInputMode::kChunkAverage}}),
        Choice<EncoderDevice>("encoder.device", "--device", "auto (CUDA when built with it and a GPU exists), cpu or cuda",
               M3VDB_FIELD(engine.encoder.device),
               {{"auto", EncoderDevice::kAuto}, {"cpu", EncoderDevice::kCpu}, {"cuda", EncoderDevice::kCuda}}),
        Text("encoder.weights", "--weights",
             "weights file in the model directory; empty: model.safetensors when present, else pytorch_model.bin",
             M3VDB_FIELD(engine.encoder.weights_file)),
        Text("log_level", "--log-level", "trace, debug, info, warn, error or off", M3VDB_FIELD(log_level)),
        Bool("engine.sync", "--sync", "fsync the write-ahead log before acknowledging a write", M3VDB_FIELD(engine.sync)),
        Bool("engine.create_if_missing", "--create-if-missing", "create the database when data_dir holds none",
             M3VDB_FIELD(engine.create_if_missing)),
        Bytes("engine.block_cache_bytes", "--block-cache-bytes", "RocksDB block cache", M3VDB_FIELD(engine.block_cache_bytes), 0),
        Bytes("engine.limits.max_id_bytes", "--max-id-bytes", "longest document id", M3VDB_FIELD(engine.limits.max_id_bytes), 1),
        Bytes("engine.limits.max_text_bytes", "--max-text-bytes", "longest document text",
              M3VDB_FIELD(engine.limits.max_text_bytes), 1),
        Bytes("engine.limits.max_metadata_bytes", "--max-metadata-bytes", "largest metadata object (as JSON text)",
              M3VDB_FIELD(engine.limits.max_metadata_bytes), 1),
        Unsigned("engine.limits.max_dense_dim", "--max-dense-dim", "largest dense (and ColBERT) dimension",
                 M3VDB_FIELD(engine.limits.max_dense_dim), 1, kU32),
        Unsigned("engine.limits.max_sparse_terms", "--max-sparse-terms", "most sparse terms per document or query",
                 M3VDB_FIELD(engine.limits.max_sparse_terms), 1, kU32),
        Unsigned("engine.limits.max_colbert_rows", "--max-colbert-rows", "most ColBERT vectors per document or query",
                 M3VDB_FIELD(engine.limits.max_colbert_rows), 1, kU32),
        Unsigned("engine.limits.max_batch_documents", "--max-batch-documents", "most documents per upsert batch",
                 M3VDB_FIELD(engine.limits.max_batch_documents), 1, kU32),
        Unsigned("engine.limits.max_top_k", "--max-top-k", "largest top_k of a search", M3VDB_FIELD(engine.limits.max_top_k),
                 1, kInt),
        Unsigned("engine.limits.max_rerank_k", "--max-rerank-k", "largest rerank_k of a search",
                 M3VDB_FIELD(engine.limits.max_rerank_k), 1, kInt),
        Text("server.host", "--host", "address to listen on (0.0.0.0: every interface)", M3VDB_FIELD(server.host)),
        Unsigned("server.port", "--port", "TCP port; 0 picks a free one (printed at start)", M3VDB_FIELD(server.port), 0,
                 65535),
        TextList("server.api_keys", "--api-key",
                 "accepted API keys (repeat the flag for several); empty: no authentication",
                 M3VDB_FIELD(server.api_keys)),
        Unsigned("server.io_threads", "--io-threads", "threads reading and writing connections",
                 M3VDB_FIELD(server.io_threads), 1, 1024),
        Unsigned("server.compute_threads", "--compute-threads",
                 "threads running searches and writes; 0: max(32, 4 per core); most sleep waiting to join a search batch",
                 M3VDB_FIELD(server.compute_threads), 0, 4096),
        Unsigned("server.queue_capacity", "--queue-capacity",
                 "requests that may wait for a compute thread; beyond it the answer is 503",
                 M3VDB_FIELD(server.queue_capacity), 0, 1u << 20),
        Unsigned("server.search_runners", "--search-runners",
                 "searches of one collection running at once; concurrent ones beyond are batched",
                 M3VDB_FIELD(server.search_runners), 1, 4096),
        Unsigned("server.max_search_batch", "--max-search-batch",
                 "most concurrent searches answered by one batched engine call; 1: no batching",
                 M3VDB_FIELD(server.max_search_batch), 1, 65536),
        Unsigned("server.max_finished_jobs", "--max-finished-jobs",
                 "finished training jobs kept for GET /jobs/{id} (the oldest are dropped first)",
                 M3VDB_FIELD(server.max_finished_jobs), 0, 1u << 20),
        Millis("server.job_retention_ms", "--job-retention-ms",
               "how long a finished training job stays visible at GET /jobs/{id}", M3VDB_FIELD(server.job_retention)),
        Unsigned("server.max_embed_texts", "--max-embed-texts", "most texts in one POST /embed",
                 M3VDB_FIELD(server.max_embed_texts), 1, kU32),
        Bytes("server.max_embed_text_bytes", "--max-embed-text-bytes", "longest text in POST /embed",
              M3VDB_FIELD(server.max_embed_text_bytes), 1),
        Text("server.snapshot_dir", "--snapshot-dir",
             "directory POST /snapshots writes checkpoints into; empty: snapshots disabled",
             M3VDB_FIELD(server.snapshot_dir)),
        Bytes("server.max_body_bytes", "--max-body-bytes", "largest request body; larger ones get 413",
              M3VDB_FIELD(server.max_body_bytes), 1),
        Millis("server.header_timeout_ms", "--header-timeout-ms", "time to read a request's header",
               M3VDB_FIELD(server.header_timeout)),
        Millis("server.body_timeout_ms", "--body-timeout-ms", "time to read a request's body, and to write a response",
               M3VDB_FIELD(server.body_timeout)),
        Millis("server.idle_timeout_ms", "--idle-timeout-ms", "time a kept-alive connection may wait for its next request",
               M3VDB_FIELD(server.idle_timeout)),
        Millis("server.shutdown_timeout_ms", "--shutdown-timeout-ms",
               "time in-flight requests get to finish after SIGTERM/SIGINT", M3VDB_FIELD(server.shutdown_timeout)),
    };
  }();
  return specs;
}

#undef M3VDB_FIELD

const KeySpec* FindSpec(std::string_view name) {
  for (const KeySpec& spec : Specs())
    if (spec.name == name) return &spec;
  return nullptr;
}

bool IsSection(const std::string& name) {
  return std::any_of(Specs().begin(), Specs().end(),
                     [&](const KeySpec& spec) { return spec.name.rfind(name + ".", 0) == 0; });
}

Status KeyError(const KeySpec& spec, const Status& status) {
  return Status::InvalidArgument(spec.name + " (" + spec.flag + "): " + status.message());
}

Status ApplyMap(const YAML::Node& map, const std::string& prefix, Config* config) {
  for (const auto& item : map) {
    const std::string name = prefix + item.first.as<std::string>();
    const YAML::Node& value = item.second;
    const std::string line = "line " + std::to_string(value.Mark().line + 1) + ": ";
    if (value.IsMap()) {
      if (!IsSection(name)) return Status::InvalidArgument(line + "unknown configuration section '" + name + "'");
      M3VDB_RETURN_IF_ERROR(ApplyMap(value, name + ".", config));
      continue;
    }
    const KeySpec* spec = FindSpec(name);
    if (!spec) {
      return Status::InvalidArgument(line + (IsSection(name) ? "'" + name + "' is a section: it holds keys, not a value"
                                                              : "unknown configuration key '" + name + "'"));
    }
    if (value.IsNull()) continue;  // "key:" with nothing keeps the default
    std::vector<std::string> items;
    if (spec->list && value.IsSequence()) {
      for (const auto& element : value) {
        if (!element.IsScalar()) return Status::InvalidArgument(line + spec->name + " must be a list of strings");
        items.push_back(element.Scalar());
      }
    } else if (value.IsScalar()) {
      items.push_back(value.Scalar());
    } else {
      return Status::InvalidArgument(line + spec->name + (spec->list ? " must be a list of strings" : " must be a single value"));
    }
    if (!spec->list && items.empty()) continue;
    Status status = spec->set(*config, items);
    if (!status.ok()) return Status::InvalidArgument(line + KeyError(*spec, status).message());
  }
  return Status::OK();
}

}  // namespace

const std::vector<ConfigKey>& ConfigKeys() {
  static const std::vector<ConfigKey> keys = [] {
    std::vector<ConfigKey> out;
    const Config defaults;
    for (const KeySpec& spec : Specs()) out.push_back({spec.name, spec.flag, spec.help, spec.get(defaults)});
    return out;
  }();
  return keys;
}

Status ApplyConfigYaml(std::string_view yaml, Config* config) {
  try {
    const YAML::Node root = YAML::Load(std::string(yaml));
    if (root.IsNull()) return Status::OK();
    if (!root.IsMap()) return Status::InvalidArgument("the configuration must be a map of keys to values");
    return ApplyMap(root, "", config);
  } catch (const YAML::Exception& e) {  // yaml-cpp reports malformed YAML by throwing
    return Status::InvalidArgument("line " + std::to_string(e.mark.line + 1) + ": malformed YAML: " + e.msg);
  }
}

Status ApplyConfigFile(const std::string& path, Config* config) {
  std::ifstream in(path);
  if (!in) return Status::IOError("cannot read configuration file " + path);
  std::stringstream text;
  text << in.rdbuf();
  return ApplyConfigYaml(text.str(), config).WithContext("configuration file " + path);
}

Status ValidateConfig(const Config& config) {
  if (config.data_dir.empty())
    return Status::InvalidArgument("data_dir (--data-dir): required: the database directory");
  if (!config.log_level.empty() && spdlog::level::from_str(config.log_level) == spdlog::level::off &&
      config.log_level != "off")
    return Status::InvalidArgument("log_level (--log-level): must be trace, debug, info, warn, error or off, got '" +
                                   config.log_level + "'");
  for (const std::string& key : config.server.api_keys) {
    if (key.empty() || std::any_of(key.begin(), key.end(), [](char c) { return c <= ' ' || c == 0x7f; }))
      return Status::InvalidArgument("server.api_keys (--api-key): keys must be non-empty and without spaces or control characters");
  }
  if (config.server.host.empty()) return Status::InvalidArgument("server.host (--host): must not be empty");
  if (config.server.io_threads == 0) return Status::InvalidArgument("server.io_threads (--io-threads): must be at least 1");
  if (!config.server.snapshot_dir.empty()) {
    // Inside data_dir a snapshot would land among RocksDB's own files.
    namespace fs = std::filesystem;
    std::error_code snapshots_error, data_error;
    const fs::path snapshots = fs::weakly_canonical(config.server.snapshot_dir, snapshots_error);
    const fs::path data = fs::weakly_canonical(config.data_dir, data_error);
    if (!snapshots_error && !data_error &&
        std::mismatch(data.begin(), data.end(), snapshots.begin(), snapshots.end()).first == data.end())
      return Status::InvalidArgument("server.snapshot_dir (--snapshot-dir): must be outside data_dir, got '" +
                                     config.server.snapshot_dir + "'");
  }
  if (config.server.max_body_bytes == 0)
    return Status::InvalidArgument("server.max_body_bytes (--max-body-bytes): must be at least 1");
  return Status::OK();
}

// ---- flags --------------------------------------------------------------------------------

struct ConfigFlags::Values {
  std::string config_path;
  std::vector<std::vector<std::string>> given;  // per key, in Specs() order
  std::vector<CLI::Option*> options;
};

ConfigFlags::ConfigFlags(CLI::App& command) : values_(std::make_unique<Values>()) {
  command.add_option("--config", values_->config_path, "YAML configuration file (flags override its keys)");
  values_->given.resize(Specs().size());
  for (size_t i = 0; i < Specs().size(); ++i) {
    const KeySpec& spec = Specs()[i];
    const std::string help = spec.help + " [" + spec.name + ", default " + spec.get(Config{}) + "]";
    CLI::Option* option = command.add_option(spec.flag, values_->given[i], help);
    option->allow_extra_args(false)->type_name(spec.type);
    if (!spec.list) option->expected(1)->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    values_->options.push_back(option);
  }
}

ConfigFlags::~ConfigFlags() = default;

Result<Config> ConfigFlags::Resolve() const {
  Config config;
  if (!values_->config_path.empty()) M3VDB_RETURN_IF_ERROR(ApplyConfigFile(values_->config_path, &config));
  for (size_t i = 0; i < Specs().size(); ++i) {
    if (values_->options[i]->count() == 0) continue;
    const KeySpec& spec = Specs()[i];
    Status status = spec.set(config, values_->given[i]);
    if (!status.ok()) return KeyError(spec, status);
  }
  M3VDB_RETURN_IF_ERROR(ValidateConfig(config));
  return config;
}

}  // namespace m3vdb::tools
