// POST /snapshots: a consistent copy of the whole database (Database::Checkpoint, a RocksDB
// checkpoint: hard links where the file system allows) written to <snapshot_dir>/<name> while
// the server goes on reading and writing. The client names the snapshot, never its path.
#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>
#include <system_error>

#include "net/detail/handlers.h"

namespace m3vdb::net::detail {
namespace {

constexpr size_t kMaxNameBytes = 128;

bool IsNameChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == '-';
}

// A name is one directory entry: 1 to 128 of [A-Za-z0-9._-], not "." or "..".
Status CheckName(const std::string& name) {
  bool ok = !name.empty() && name.size() <= kMaxNameBytes && name != "." && name != "..";
  for (char c : name) ok = ok && IsNameChar(c);
  if (ok) return Status::OK();
  return Status::InvalidArgument("name must be 1 to 128 characters from [A-Za-z0-9._-] and not '.' or '..', got '" +
                                 name + "'");
}

}  // namespace

Response PostSnapshot(Database& db, const ServiceOptions& options, std::mutex& one_at_a_time, const Request& request) {
  if (options.snapshot_dir.empty())
    return ErrorResponse(Status::FailedPrecondition(
        "snapshots are disabled on this server: set server.snapshot_dir (--snapshot-dir) to the directory they go to"));
  auto body = ParseJsonObject(request.body);
  if (!body.ok()) return ErrorResponse(body.status());
  auto snapshot = DecodeSnapshotRequest(*body);
  if (!snapshot.ok()) return ErrorResponse(snapshot.status());
  if (Status s = CheckName(snapshot->name); !s.ok()) return ErrorResponse(s);

  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path target = fs::absolute(fs::path(options.snapshot_dir) / snapshot->name, ec).lexically_normal();
  if (ec) return ErrorResponse(Status::IOError("cannot resolve " + options.snapshot_dir + ": " + ec.message()));

  std::lock_guard lock(one_at_a_time);
  if (fs::exists(fs::symlink_status(target, ec)))
    return ErrorResponse(Status::AlreadyExists("snapshot '" + snapshot->name + "' already exists at " + target.string()));
  fs::create_directories(target.parent_path(), ec);
  if (ec)
    return ErrorResponse(Status::IOError("cannot create the snapshot directory " + target.parent_path().string() + ": " +
                                         ec.message()));
  const auto start = std::chrono::steady_clock::now();
  if (Status s = db.Checkpoint(target.string()); !s.ok()) return ErrorResponse(s);
  const double took_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  spdlog::info("snapshot '{}' written to {} in {:.1f} ms", snapshot->name, target.string(), took_ms);
  return JsonResponse(201, {{"name", snapshot->name}, {"path", target.string()}, {"took_ms", took_ms}});
}

}  // namespace m3vdb::net::detail
