// `m3vdb snapshot`: a consistent copy of a database (RocksDB checkpoint: hard links where the
// file system allows, so it is fast and small), in one of two ways:
//
//   m3vdb snapshot DIR --to DIR2                         a directory no process holds
//   m3vdb snapshot --url http://HOST:PORT --name NAME   ask the server holding it (POST /snapshots)
//
// RocksDB lets one process open a directory, so the first form fails while `m3vdb serve` (or a
// program embedding the library) holds DIR; the error then says so and points to the second
// form, which writes to the server's `server.snapshot_dir`/NAME while it goes on serving. A
// program that embeds the library snapshots with Database::Checkpoint.
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>

#include <m3vdb/m3vdb.h>

#include "net/client.h"
#include "tools/commands.h"

namespace m3vdb::tools {
namespace {

struct SnapshotFlags {
  std::string dir, to;
  std::string url, name, api_key;
};

// The process holding the RocksDB lock of `dir` (its LOCK file, an fcntl lock), or nullopt when
// none does (or the lock file cannot be read).
std::optional<pid_t> LockHolder(const std::string& dir) {
  const std::string lock_file = (std::filesystem::path(dir) / "LOCK").string();
  const int fd = ::open(lock_file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  struct flock probe = {};
  probe.l_type = F_WRLCK;
  probe.l_whence = SEEK_SET;
  const bool held = ::fcntl(fd, F_GETLK, &probe) == 0 && probe.l_type != F_UNLCK;
  ::close(fd);
  if (!held) return std::nullopt;
  return probe.l_pid;
}

int SnapshotDirectory(const SnapshotFlags& f) {
  if (std::filesystem::exists(f.to)) {
    spdlog::error("--to {} already exists: the snapshot needs a new directory", f.to);
    return 2;
  }
  Options options;
  options.create_if_missing = false;
  auto db = Database::Open(options, f.dir);
  if (!db.ok()) {
    if (auto pid = LockHolder(f.dir)) {
      spdlog::error(
          "{} is in use: process {} holds its RocksDB lock, and only one process may open a database. Ask the "
          "server holding it for the snapshot instead: m3vdb snapshot --url http://HOST:PORT --name NAME (POST "
          "/snapshots; the server needs server.snapshot_dir / --snapshot-dir)",
          f.dir, *pid);
      return 1;
    }
    spdlog::error("{}", db.status().ToString());
    return 1;
  }
  if (Status s = (*db)->Checkpoint(f.to); !s.ok()) {
    spdlog::error("{}", s.ToString());
    return 1;
  }
  std::printf("snapshot of %s written to %s\n", f.dir.c_str(), f.to.c_str());
  return 0;
}

struct HostPort {
  std::string host;
  uint16_t port = 0;
};

// "http://HOST:PORT" with an optional trailing "/"; HOST may be "[v6 address]".
Result<HostPort> ParseUrl(std::string_view url) {
  const auto bad = [&](std::string_view why) {
    return Status::InvalidArgument("--url must look like http://HOST:PORT (" + std::string(why) + "), got '" +
                                   std::string(url) + "'");
  };
  constexpr std::string_view kScheme = "http://";
  if (!url.starts_with(kScheme)) return bad("plain http:// only");
  std::string_view rest = url.substr(kScheme.size());
  if (rest.ends_with('/')) rest.remove_suffix(1);
  const size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return bad("the port is required");
  HostPort out;
  out.host = std::string(rest.substr(0, colon));
  if (out.host.size() > 2 && out.host.front() == '[' && out.host.back() == ']') out.host = out.host.substr(1, out.host.size() - 2);
  if (out.host.find_first_of("/[]") != std::string::npos) return bad("no path after the port");
  const std::string_view port = rest.substr(colon + 1);
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535)
    return bad("the port must be 1..65535");
  out.port = static_cast<uint16_t>(value);
  return out;
}

int SnapshotOverHttp(const SnapshotFlags& f) {
  auto address = ParseUrl(f.url);
  if (!address.ok()) {
    spdlog::error("{}", address.status().message());
    return 2;
  }
  auto client = net::HttpClient::Connect(address->host, address->port);
  if (!client.ok()) {
    spdlog::error("cannot reach the server at {}: {}", f.url, client.status().ToString());
    return 1;
  }
  if (!f.api_key.empty()) (*client)->SetHeader("Authorization", "Bearer " + f.api_key);
  auto reply = (*client)->Send("POST", "/snapshots", nlohmann::json{{"name", f.name}}.dump());
  if (!reply.ok()) {
    spdlog::error("POST {}/snapshots failed: {}", f.url, reply.status().ToString());
    return 1;
  }
  const nlohmann::json body = nlohmann::json::parse(reply->body, nullptr, false);
  if (reply->status != 201) {
    const bool has_error = body.is_object() && body.contains("error") && body["error"].is_object();
    spdlog::error("the server answered {}: {}", reply->status,
                  has_error ? body["error"].value("code", "") + ": " + body["error"].value("message", "") : reply->body);
    return 1;
  }
  if (!body.is_object() || !body.contains("path") || !body["path"].is_string()) {
    spdlog::error("the server answered 201 without a snapshot path: {}", reply->body);
    return 1;
  }
  std::printf("snapshot %s written by the server at %s to %s (%.1f ms)\n", f.name.c_str(), f.url.c_str(),
              body["path"].get<std::string>().c_str(), body.value("took_ms", 0.0));
  return 0;
}

int RunSnapshot(const SnapshotFlags& f) {
  if (f.dir.empty() == f.url.empty()) {
    spdlog::error("give either DIR --to DIR2 (a directory no process holds) or --url http://HOST:PORT --name NAME "
                  "(a running server)");
    return 2;
  }
  if (!f.dir.empty() && f.to.empty()) {
    spdlog::error("DIR needs --to DIR2: the new directory for the copy");
    return 2;
  }
  return f.dir.empty() ? SnapshotOverHttp(f) : SnapshotDirectory(f);
}

}  // namespace

Runner AddSnapshotCommand(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "snapshot", "Write a consistent copy of a database (RocksDB checkpoint): of a directory, or through a running server");
  auto f = std::make_shared<SnapshotFlags>();
  auto* dir = cmd->add_option("dir", f->dir, "database directory that no process holds")->check(CLI::ExistingDirectory);
  auto* to = cmd->add_option("--to", f->to, "with DIR: new directory for the copy");
  auto* url = cmd->add_option("--url", f->url, "a running `m3vdb serve`: http://HOST:PORT (it writes the snapshot)");
  auto* name = cmd->add_option("--name", f->name, "with --url: snapshot name, written to the server's snapshot_dir/NAME");
  auto* key = cmd->add_option("--api-key", f->api_key, "with --url: the server's API key");
  dir->excludes(url);  // checked before the `needs` below, so DIR with --url says just that
  to->needs(dir);
  url->needs(name);
  name->needs(url);
  key->needs(url);
  return [f] { return RunSnapshot(*f); };
}

}  // namespace m3vdb::tools
