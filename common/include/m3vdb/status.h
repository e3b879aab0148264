// m3vdb error vocabulary.
//
// Every fallible operation in m3vdb returns a `Status` (success or a code plus a message that
// names what was wrong) or a `Result<T>` (a value or a non-OK Status). Both are [[nodiscard]]:
// ignoring an error is a compile-time warning. No exception crosses an m3vdb module boundary;
// exceptions thrown by third-party libraries are converted to a Status by the module that
// wraps the library. Status and Result are plain values: cheap to move, safe to copy, and not
// tied to any thread.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace m3vdb {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,    // the caller's input is wrong (bad dimension, NaN, bad id, ...)
  kNotFound,           // a named collection or document does not exist
  kAlreadyExists,      // a collection with that name exists
  kCorruption,         // stored bytes could not be decoded
  kIOError,            // the file system or RocksDB failed
  kResourceExhausted,  // a size limit was exceeded
  kUnavailable,        // temporarily unable (shutting down, overloaded)
  kFailedPrecondition, // the object is in the wrong state (e.g. the collection was dropped)
  kInternal,           // a bug: an invariant of m3vdb itself does not hold
};

// Stable lower-case name of a code ("invalid_argument", ...), used in logs and the HTTP API.
std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK

  static Status OK() { return Status(); }
  static Status InvalidArgument(std::string msg) { return {StatusCode::kInvalidArgument, std::move(msg)}; }
  static Status NotFound(std::string msg) { return {StatusCode::kNotFound, std::move(msg)}; }
  static Status AlreadyExists(std::string msg) { return {StatusCode::kAlreadyExists, std::move(msg)}; }
  static Status Corruption(std::string msg) { return {StatusCode::kCorruption, std::move(msg)}; }
  static Status IOError(std::string msg) { return {StatusCode::kIOError, std::move(msg)}; }
  static Status ResourceExhausted(std::string msg) { return {StatusCode::kResourceExhausted, std::move(msg)}; }
  static Status Unavailable(std::string msg) { return {StatusCode::kUnavailable, std::move(msg)}; }
  static Status FailedPrecondition(std::string msg) { return {StatusCode::kFailedPrecondition, std::move(msg)}; }
  static Status Internal(std::string msg) { return {StatusCode::kInternal, std::move(msg)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "OK" or "<code name>: <message>".
  std::string ToString() const;

  // Returns a copy whose message is prefixed with `context` ("context: message").
  Status WithContext(std::string_view context) const;

 private:
  Status(StatusCode code, std::string msg) : code_(code), message_(std::move(msg)) {}
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// A value of type T, or the Status saying why there is none. Constructing a Result from an OK
// Status is a programmer error.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : data_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : data_(std::move(status)) {  // NOLINT: implicit by design
    assert(!std::get<Status>(data_).ok() && "Result built from an OK status");
  }

  bool ok() const { return std::holds_alternative<T>(data_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(data_);
  }
  T& value() & { return std::get<T>(data_); }
  const T& value() const& { return std::get<T>(data_); }
  T&& value() && { return std::get<T>(std::move(data_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> data_;
};

}  // namespace m3vdb

// Returns from the enclosing function when `expr` (a Status) is not OK.
#define M3VDB_RETURN_IF_ERROR(expr)            \
  do {                                         \
    ::m3vdb::Status m3vdb_status_ = (expr);    \
    if (!m3vdb_status_.ok()) return m3vdb_status_; \
  } while (0)

#define M3VDB_CONCAT_INNER_(a, b) a##b
#define M3VDB_CONCAT_(a, b) M3VDB_CONCAT_INNER_(a, b)
// `M3VDB_ASSIGN_OR_RETURN(auto x, F())`: evaluates F() (a Result), returns its Status on error,
// otherwise moves the value into the declaration.
#define M3VDB_ASSIGN_OR_RETURN(decl, expr)                                  \
  auto M3VDB_CONCAT_(m3vdb_result_, __LINE__) = (expr);                     \
  if (!M3VDB_CONCAT_(m3vdb_result_, __LINE__).ok())                         \
    return M3VDB_CONCAT_(m3vdb_result_, __LINE__).status();                 \
  decl = std::move(M3VDB_CONCAT_(m3vdb_result_, __LINE__)).value()
