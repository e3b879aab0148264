#include "net/detail/auth.h"

#include <cctype>

namespace m3vdb::net::detail {

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  // Walk the whole secret; a shorter or longer `a` is compared cyclically and still fails.
  volatile unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < b.size(); ++i) {
    const unsigned char x = a.empty() ? 0 : static_cast<unsigned char>(a[i % a.size()]);
    diff = diff | (x ^ static_cast<unsigned char>(b[i]));
  }
  return diff == 0;
}

bool IsAuthorized(std::string_view authorization, const std::vector<std::string>& keys) {
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() <= kScheme.size()) return false;
  for (size_t i = 0; i < kScheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(authorization[i])) != kScheme[i]) return false;
  std::string_view presented = authorization.substr(kScheme.size());
  while (!presented.empty() && presented.front() == ' ') presented.remove_prefix(1);
  while (!presented.empty() && presented.back() == ' ') presented.remove_suffix(1);
  bool ok = false;
  for (const std::string& key : keys) ok |= ConstantTimeEquals(presented, key);
  return ok;
}

}  // namespace m3vdb::net::detail
