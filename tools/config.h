// The configuration of the `m3vdb` command (`serve`, and the offline `build` to come): one YAML
// file and/or flags, parsed in this one place into plain option structs and validated before
// anything is opened.
//
// Every key has a default, a flag (`server.port` is `--port`) and a line in
// docs/configuration.md. Precedence: built-in defaults < the YAML file (`--config`) < flags.
// Errors name the key and its flag ("server.io_threads (--io-threads): must be at least 1").
// Unknown keys in the file are errors, so a misspelt key never silently keeps its default.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "m3vdb/m3vdb.h"
#include "net/server.h"

namespace m3vdb::tools {

struct Config {
  std::string data_dir;   // database directory (required)
  std::string log_level;  // trace, debug, info, warn, error, off; empty: leave as the command set it
  Options engine;         // engine.model_dir: BGE-M3 checkpoint directory (key `model`)
  net::ServerOptions server;
};

// One configuration key, for help texts and the documentation check.
struct ConfigKey {
  std::string name;           // "server.port"
  std::string flag;           // "--port"
  std::string help;
  std::string default_value;  // as written in YAML
};
const std::vector<ConfigKey>& ConfigKeys();

// Applies a YAML document to `config` (keys absent from it keep their values), then checks
// nothing else: call ValidateConfig after every source is applied. InvalidArgument naming the
// key (and the line) for unknown keys, wrong types and malformed YAML.
Status ApplyConfigYaml(std::string_view yaml, Config* config);
// The same for a file; IOError when it cannot be read.
Status ApplyConfigFile(const std::string& path, Config* config);

// Checks every value and that the required ones are set.
Status ValidateConfig(const Config& config);

// Registers `--config FILE` and one flag per key on a CLI11 (sub)command. After parsing,
// `Resolve` builds the configuration: defaults, then the file, then the flags that were given.
class ConfigFlags {
 public:
  explicit ConfigFlags(CLI::App& command);
  ~ConfigFlags();
  ConfigFlags(const ConfigFlags&) = delete;
  ConfigFlags& operator=(const ConfigFlags&) = delete;

  Result<Config> Resolve() const;

 private:
  struct Values;
  std::unique_ptr<Values> values_;
};

}  // namespace m3vdb::tools
