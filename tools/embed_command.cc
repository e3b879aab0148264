// `m3vdb embed`: JSON lines {"text": ...} on stdin -> one JSON line per input on stdout, in
// input order: {"tokens":[...],"dense":[...],"sparse":{"<id>":w,...},"colbert":[[...],...]}.
// Lines are encoded in blocks as they arrive. A line that is not a JSON object with a string
// "text" stops the run: the lines before it are written, the error (with its line number)
// goes to stderr and the exit code is 1. Blank lines are skipped.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <charconv>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "embedder/embedder.h"
#include "tools/commands.h"

namespace m3vdb::tools {
namespace {

struct EmbedArgs {
  std::string model;
  size_t max_length = 8192;
  size_t batch_size = 16;
  int threads = 0;
  std::string long_input = "truncate";
  std::string device = "auto";
  std::string weights;
};

void AppendFloat(std::string& out, float v) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, ec == std::errc() ? end : buf);
}

std::string ToJson(const embedder::Embedding& e, size_t colbert_dim) {
  std::string out = "{\"tokens\":[";
  for (size_t i = 0; i < e.tokens.size(); ++i) (out += i ? "," : "") += std::to_string(e.tokens[i]);
  out += "],\"dense\":[";
  for (size_t i = 0; i < e.dense.size(); ++i) {
    if (i) out += ',';
    AppendFloat(out, e.dense[i]);
  }
  out += "],\"sparse\":{";
  for (size_t i = 0; i < e.sparse.ids.size(); ++i) {
    (out += i ? ",\"" : "\"") += std::to_string(e.sparse.ids[i]) + "\":";
    AppendFloat(out, e.sparse.weights[i]);
  }
  out += "},\"colbert\":[";
  for (size_t r = 0; r < e.colbert_rows; ++r) {
    out += r ? ",[" : "[";
    for (size_t k = 0; k < colbert_dim; ++k) {
      if (k) out += ',';
      AppendFloat(out, e.colbert[r * colbert_dim + k]);
    }
    out += ']';
  }
  return out + "]}\n";
}

int RunEmbed(const EmbedArgs& args) {
  // stdout carries the JSON lines: log (e.g. truncation warnings) to stderr.
  auto logger = spdlog::stderr_color_mt("m3vdb-embed");
  logger->set_level(spdlog::default_logger()->level());
  spdlog::set_default_logger(logger);
  embedder::Options options;
  options.max_length = args.max_length;
  options.batch_size = args.batch_size;
  options.threads = args.threads;
  options.weights_file = args.weights;
  if (args.long_input == "truncate") options.long_input = embedder::LongInputMode::kTruncate;
  else if (args.long_input == "interpolate") options.long_input = embedder::LongInputMode::kInterpolatePositions;
  else if (args.long_input == "chunk") options.long_input = embedder::LongInputMode::kChunkAverage;
  if (args.device == "cpu") options.device = embedder::Device::kCpu;
  else if (args.device == "cuda") options.device = embedder::Device::kCuda;
  auto opened = embedder::Embedder::Open(args.model, options);
  if (!opened.ok()) {
    std::fprintf(stderr, "embed: %s\n", opened.status().ToString().c_str());
    return 1;
  }
  const embedder::Embedder& model = **opened;

  const size_t block = std::max<size_t>(args.batch_size * 4, 64);
  std::vector<std::string> texts;
  auto flush = [&]() -> bool {
    if (texts.empty()) return true;
    auto out = model.Encode(texts);
    if (!out.ok()) {
      std::fprintf(stderr, "embed: %s\n", out.status().ToString().c_str());
      return false;
    }
    for (const auto& e : *out) std::fputs(ToJson(e, model.colbert_dim()).c_str(), stdout);
    std::fflush(stdout);
    texts.clear();
    return true;
  };

  std::string line;
  for (size_t number = 1; std::getline(std::cin, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto json = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    const char* problem = nullptr;
    if (json.is_discarded()) problem = "not valid JSON";
    else if (!json.is_object()) problem = "not a JSON object";
    else if (!json.contains("text")) problem = "no \"text\" field";
    else if (!json["text"].is_string()) problem = "\"text\" is not a string";
    if (problem != nullptr) {
      bool ok = flush();
      std::fprintf(stderr, "embed: line %zu: %s\n", number, problem);
      (void)ok;
      return 1;
    }
    texts.push_back(json["text"].get<std::string>());
    if (texts.size() >= block && !flush()) return 1;
  }
  return flush() ? 0 : 1;
}

}  // namespace

Runner AddEmbedCommand(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "embed", "Encode JSON lines {\"text\": ...} from stdin with a BGE-M3 model; one JSON line per input on stdout");
  auto args = std::make_shared<EmbedArgs>();
  cmd->add_option("--model", args->model, "BGE-M3 release directory")->required();
  cmd->add_option("--max-length", args->max_length, "tokens per input incl. <s> and </s>")->capture_default_str();
  cmd->add_option("--batch-size", args->batch_size, "texts per forward pass")->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--threads", args->threads, "worker threads (0 = all cores)")->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--long-input", args->long_input, "inputs longer than the positions: truncate, interpolate, chunk")
      ->capture_default_str()->check(CLI::IsMember({"truncate", "interpolate", "chunk"}));
  cmd->add_option("--device", args->device, "auto, cpu or cuda")->capture_default_str()
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  cmd->add_option("--weights", args->weights, "weights file in the model directory (default: model.safetensors "
                  "when present, else pytorch_model.bin)");
  return [args] { return RunEmbed(*args); };
}

}  // namespace m3vdb::tools
