#include "net/detail/router.h"

#include <array>

namespace m3vdb::net::detail {
namespace {

struct Route {
  std::string_view method;
  std::string_view pattern;  // segments; "{name}" and "{id}" are parameters
  RouteId id;
};

constexpr std::array<Route, 14> kRoutes = {{
    {"GET", "/healthz", RouteId::kHealthz},
    {"GET", "/metrics", RouteId::kMetrics},
    {"GET", "/collections", RouteId::kListCollections},
    {"PUT", "/collections/{name}", RouteId::kPutCollection},
    {"GET", "/collections/{name}", RouteId::kGetCollection},
    {"DELETE", "/collections/{name}", RouteId::kDeleteCollection},
    {"POST", "/collections/{name}/documents", RouteId::kPostDocuments},
    {"GET", "/collections/{name}/documents/{id}", RouteId::kGetDocument},
    {"DELETE", "/collections/{name}/documents/{id}", RouteId::kDeleteDocument},
    {"POST", "/collections/{name}/search", RouteId::kSearch},
    {"POST", "/collections/{name}/train", RouteId::kTrain},
    {"GET", "/jobs/{id}", RouteId::kGetJob},
    {"POST", "/embed", RouteId::kEmbed},
    {"POST", "/snapshots", RouteId::kPostSnapshot},
}};

std::vector<std::string_view> Split(std::string_view path) {
  std::vector<std::string_view> parts;
  if (path.empty() || path.front() != '/') return parts;
  path.remove_prefix(1);
  while (true) {
    const size_t slash = path.find('/');
    parts.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return parts;
}

// Matches raw (still encoded) segments against a pattern; fills the raw parameters.
bool Matches(const std::vector<std::string_view>& pattern, const std::vector<std::string_view>& parts,
             std::string_view* name, std::string_view* id) {
  if (pattern.size() != parts.size()) return false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == "{name}") {
      if (parts[i].empty()) return false;
      *name = parts[i];
    } else if (pattern[i] == "{id}") {
      if (parts[i].empty()) return false;
      *id = parts[i];
    } else if (pattern[i] != parts[i]) {
      return false;
    }
  }
  return true;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

bool PercentDecode(std::string_view in, std::string* out) {
  out->clear();
  out->reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      *out += in[i];
      continue;
    }
    if (i + 2 >= in.size()) return false;
    const int hi = HexValue(in[i + 1]), lo = HexValue(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    *out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return true;
}

std::vector<std::pair<std::string_view, std::string_view>> AllRoutes() {
  std::vector<std::pair<std::string_view, std::string_view>> routes;
  for (const Route& route : kRoutes) routes.emplace_back(route.method, route.pattern);
  return routes;
}

RouteMatch MatchRoute(std::string_view method, std::string_view target) {
  RouteMatch match;
  match.label = "unmatched";
  const std::string_view path = target.substr(0, target.find('?'));
  const std::vector<std::string_view> parts = Split(path);
  for (const Route& route : kRoutes) {
    std::string_view name, id;
    if (!Matches(Split(route.pattern), parts, &name, &id)) continue;
    if (route.method != method) {
      if (match.kind != RouteMatch::Kind::kWrongMethod) {
        match.kind = RouteMatch::Kind::kWrongMethod;
        match.label = std::string(route.pattern);
      } else {
        match.allow += ", ";
      }
      match.allow += route.method;
      continue;
    }
    match.kind = RouteMatch::Kind::kFound;
    match.route = route.id;
    match.label = std::string(route.pattern);
    match.allow.clear();
    if (!PercentDecode(name, &match.collection) || !PercentDecode(id, &match.id)) {
      match.kind = RouteMatch::Kind::kBadPath;
      match.error = "the path has a malformed percent escape";
    }
    return match;
  }
  return match;
}

}  // namespace m3vdb::net::detail
