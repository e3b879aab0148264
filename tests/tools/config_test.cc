// The configuration loader: YAML keys into option structs, flags over the file, errors that
// name the key, and docs/configuration.md listing every key with its default.
#include "tools/config.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "tests/engine/temp_dir.h"

namespace m3vdb::tools {
namespace {

using namespace std::chrono_literals;

TEST(Config, YamlSetsNestedKeys) {
  Config config;
  Status s = ApplyConfigYaml(R"(
data_dir: /var/lib/m3vdb
model: /models/bge-m3
log_level: debug
engine:
  sync: false
  block_cache_bytes: 1GiB
  limits:
    max_batch_documents: 5000
    max_top_k: 100
server:
  host: 0.0.0.0
  port: 9000
  api_keys: [one, two]
  io_threads: 4
  compute_threads: 8
  queue_capacity: 10
  max_body_bytes: 16MiB
  header_timeout_ms: 2500
  idle_timeout_ms: 1000
  body_timeout_ms: 3000
  shutdown_timeout_ms: 4000
)",
                             &config);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(config.data_dir, "/var/lib/m3vdb");
  EXPECT_EQ(config.engine.model_dir, "/models/bge-m3");
  EXPECT_EQ(config.log_level, "debug");
  EXPECT_FALSE(config.engine.sync);
  EXPECT_EQ(config.engine.block_cache_bytes, size_t{1} << 30);
  EXPECT_EQ(config.engine.limits.max_batch_documents, 5000u);
  EXPECT_EQ(config.engine.limits.max_top_k, 100);
  EXPECT_EQ(config.server.host, "0.0.0.0");
  EXPECT_EQ(config.server.port, 9000);
  EXPECT_EQ(config.server.api_keys, (std::vector<std::string>{"one", "two"}));
  EXPECT_EQ(config.server.io_threads, 4u);
  EXPECT_EQ(config.server.compute_threads, 8u);
  EXPECT_EQ(config.server.queue_capacity, 10u);
  EXPECT_EQ(config.server.max_body_bytes, size_t{16} << 20);
  EXPECT_EQ(config.server.header_timeout, 2500ms);
  EXPECT_EQ(config.server.idle_timeout, 1000ms);
  EXPECT_EQ(config.server.body_timeout, 3000ms);
  EXPECT_EQ(config.server.shutdown_timeout, 4000ms);
  EXPECT_TRUE(ValidateConfig(config).ok());
  // Absent keys keep their defaults.
  EXPECT_TRUE(config.engine.create_if_missing);
  EXPECT_EQ(config.engine.limits.max_id_bytes, Limits{}.max_id_bytes);
}

void ExpectYamlError(const std::string& yaml, const std::string& needle) {
  Config config;
  Status s = ApplyConfigYaml(yaml, &config);
  ASSERT_FALSE(s.ok()) << yaml;
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find(needle), std::string::npos) << "'" << s.message() << "' lacks '" << needle << "'";
}

TEST(Config, YamlErrorsNameTheKey) {
  ExpectYamlError("server:\n  prot: 80\n", "line 2: unknown configuration key 'server.prot'");
  ExpectYamlError("servr:\n  port: 80\n", "unknown configuration section 'servr'");
  ExpectYamlError("server: 80\n", "'server' is a section");
  ExpectYamlError("server:\n  port: eighty\n", "server.port (--port): must be an integer in 0..65535, got 'eighty'");
  ExpectYamlError("server:\n  port: 70000\n", "server.port (--port)");
  ExpectYamlError("server:\n  port: [1, 2]\n", "server.port must be a single value");
  ExpectYamlError("server:\n  max_body_bytes: 12 MB\n", "server.max_body_bytes (--max-body-bytes)");
  ExpectYamlError("engine:\n  sync: maybe\n", "engine.sync (--sync): must be true or false");
  ExpectYamlError("server:\n  io_threads: 0\n", "server.io_threads (--io-threads)");
  ExpectYamlError("server:\n  header_timeout_ms: -5\n", "server.header_timeout_ms");
  ExpectYamlError("server:\n  api_keys: [[a]]\n", "server.api_keys must be a list of strings");
  ExpectYamlError("server: {port: 1\n", "malformed YAML");
  ExpectYamlError("- a\n- b\n", "must be a map");
}

TEST(Config, EncoderKeys) {
  Config config;
  Status s = ApplyConfigYaml(R"(
model: /models/bge-m3
encoder:
  max_length: 512
  batch_size: 8
  batch_tokens: 4096
  threads: 3
  long_input: chunk
  device: cpu
  weights: pytorch_model.bin
server:
  max_embed_texts: 10
  max_embed_text_bytes: 4KiB
)",
                             &config);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(config.engine.model_dir, "/models/bge-m3");
  EXPECT_EQ(config.engine.encoder.max_length, 512u);
  EXPECT_EQ(config.engine.encoder.batch_size, 8u);
  EXPECT_EQ(config.engine.encoder.batch_tokens, 4096u);
  EXPECT_EQ(config.engine.encoder.threads, 3);
  EXPECT_EQ(config.engine.encoder.long_input, LongInputMode::kChunkAverage);
  EXPECT_EQ(config.engine.encoder.device, EncoderDevice::kCpu);
  EXPECT_EQ(config.engine.encoder.weights_file, "pytorch_model.bin");
  EXPECT_EQ(config.server.max_embed_texts, 10u);
  EXPECT_EQ(config.server.max_embed_text_bytes, 4096u);
  ExpectYamlError("encoder:\n  long_input: stretch\n",
                  "encoder.long_input (--long-input): must be one of truncate, interpolate, chunk, got 'stretch'");
  ExpectYamlError("encoder:\n  device: tpu\n", "encoder.device (--device)");
  ExpectYamlError("encoder:\n  batch_size: 0\n", "encoder.batch_size (--batch-size)");
}

TEST(Config, ValidationNamesTheKey) {
  Config config;
  Status s = ValidateConfig(config);
  EXPECT_NE(s.message().find("data_dir (--data-dir)"), std::string::npos) << s.ToString();
  config.data_dir = "/tmp/x";
  config.log_level = "loud";
  EXPECT_NE(ValidateConfig(config).message().find("log_level"), std::string::npos);
  config.log_level = "warn";
  config.server.api_keys = {"has space"};
  EXPECT_NE(ValidateConfig(config).message().find("server.api_keys"), std::string::npos);
  config.server.api_keys = {"ok"};
  EXPECT_TRUE(ValidateConfig(config).ok());
}

TEST(Config, SnapshotDirIsOptionalAndOutsideDataDir) {
  Config config;
  ASSERT_TRUE(ApplyConfigYaml("data_dir: /var/lib/m3vdb\nserver:\n  snapshot_dir: /backup/m3vdb\n", &config).ok());
  EXPECT_EQ(config.server.snapshot_dir, "/backup/m3vdb");
  EXPECT_TRUE(ValidateConfig(config).ok());
  EXPECT_TRUE(Config{}.server.snapshot_dir.empty());  // the default: POST /snapshots disabled
  for (const std::string inside : {"/var/lib/m3vdb", "/var/lib/m3vdb/snaps", "/var/lib/m3vdb/../m3vdb/x"}) {
    config.server.snapshot_dir = inside;
    const Status s = ValidateConfig(config);
    EXPECT_NE(s.message().find("server.snapshot_dir (--snapshot-dir): must be outside data_dir"), std::string::npos)
        << inside << ": " << s.ToString();
  }
  config.server.snapshot_dir = "/var/lib/m3vdb-snapshots";  // a sibling whose name starts alike
  EXPECT_TRUE(ValidateConfig(config).ok());
}

// Parses `args` (in command-line order) into `app`; CLI11 takes the vector reversed.
void Parse(CLI::App& app, std::vector<std::string> args) {
  std::reverse(args.begin(), args.end());
  app.parse(args);
}

TEST(Config, FlagsOverrideTheFile) {
  test::TempDir dir;
  const std::string path = dir.Sub("m3vdb.yaml");
  std::ofstream(path) << "data_dir: /from/file\nserver:\n  port: 7000\n  host: 10.0.0.1\n  api_keys: [file-key]\n";
  CLI::App app;
  auto* serve = app.add_subcommand("serve");
  ConfigFlags flags(*serve);
  Parse(app, {"serve", "--config", path, "--port", "0", "--api-key", "a", "--api-key", "b"});
  auto config = flags.Resolve();
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->data_dir, "/from/file");
  EXPECT_EQ(config->server.host, "10.0.0.1");
  EXPECT_EQ(config->server.port, 0);
  EXPECT_EQ(config->server.api_keys, (std::vector<std::string>{"a", "b"}));

  CLI::App app2;
  auto* serve2 = app2.add_subcommand("serve");
  ConfigFlags flags2(*serve2);
  Parse(app2, {"serve", "--data-dir", "/d", "--max-body-bytes", "12XB"});
  auto error = flags2.Resolve();
  ASSERT_FALSE(error.ok());
  EXPECT_NE(error.status().message().find("server.max_body_bytes (--max-body-bytes)"), std::string::npos)
      << error.status().ToString();

  CLI::App app3;
  auto* serve3 = app3.add_subcommand("serve");
  ConfigFlags flags3(*serve3);
  Parse(app3, {"serve", "--config", dir.Sub("absent.yaml")});
  EXPECT_EQ(flags3.Resolve().status().code(), StatusCode::kIOError);
}

TEST(Config, DocumentationListsEveryKeyWithItsDefault) {
  std::ifstream in(std::string(M3VDB_SOURCE_DIR) + "/docs/configuration.md");
  ASSERT_TRUE(in) << "docs/configuration.md is missing";
  std::stringstream text;
  text << in.rdbuf();
  const std::string doc = text.str();
  for (const ConfigKey& key : ConfigKeys()) {
    const std::string row = "| `" + key.name + "` | `" + key.flag + "` | `" + key.default_value + "` |";
    EXPECT_NE(doc.find(row), std::string::npos) << "docs/configuration.md lacks the row " << row;
  }
}

}  // namespace
}  // namespace m3vdb::tools
