// The one table from engine status codes to HTTP status codes, and the JSON error body.
#pragma once

#include <string>
#include <string_view>

#include "m3vdb/status.h"

namespace m3vdb::net::detail {

// 400 invalid_argument, 404 not_found, 409 already_exists, 413 resource_exhausted,
// 422 failed_precondition, 503 unavailable, 500 for corruption, io_error and internal.
int HttpStatusFor(StatusCode code);

// `{"error":{"code":"<code>","message":"<message>"}}`.
std::string ErrorBody(std::string_view code, std::string_view message);

}  // namespace m3vdb::net::detail
