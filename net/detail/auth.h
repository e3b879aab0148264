// API-key authentication: `Authorization: Bearer <key>` checked against the configured keys.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace m3vdb::net::detail {

// True when `a` and `b` are equal. The time taken depends only on the length of `b` (the
// secret), never on where the first difference lies or on the contents of either.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// True when `authorization` is "Bearer <key>" (scheme case-insensitive) for one of `keys`.
// Every key is compared, so the time does not reveal which key matched.
bool IsAuthorized(std::string_view authorization, const std::vector<std::string>& keys);

}  // namespace m3vdb::net::detail
