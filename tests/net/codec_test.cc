// The pieces under the handlers: base64 float encoding, route matching, API-key comparison,
// and the status-code table.
#include <gtest/gtest.h>

#include <cctype>
#include <cstring>
#include <fstream>
#include <sstream>
#include <limits>

#include "net/detail/auth.h"
#include "net/detail/base64.h"
#include "net/detail/http_status.h"
#include "net/detail/router.h"

namespace m3vdb::net::detail {
namespace {

TEST(Base64, MatchesRfc4648Vectors) {
  const std::pair<std::string, std::string> vectors[] = {
      {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(EncodeBase64({reinterpret_cast<const unsigned char*>(plain.data()), plain.size()}), encoded);
    auto decoded = DecodeBase64(encoded);
    ASSERT_TRUE(decoded.ok()) << encoded;
    EXPECT_EQ(*decoded, plain);
  }
  for (const char* bad : {"Zg=", "Zg==Zg==", "Z===", "Zm9*", "Zm=v", "===="})
    EXPECT_FALSE(DecodeBase64(bad).ok()) << bad;
}

TEST(Base64, FloatsAreLittleEndianFloat32) {
  const std::vector<float> values = {1.0f, -0.0f, 3.5e-20f, std::numeric_limits<float>::max(), 0.1f};
  const std::string text = EncodeFloatsBase64(values);
  auto bytes = DecodeBase64(text);
  ASSERT_TRUE(bytes.ok());
  ASSERT_EQ(bytes->size(), values.size() * 4);
  EXPECT_EQ(std::string(bytes->substr(0, 4)), std::string("\x00\x00\x80\x3f", 4));  // 1.0f
  auto back = DecodeFloatsBase64(text);
  ASSERT_TRUE(back.ok());
  ASSERT_EQ(back->size(), values.size());
  EXPECT_EQ(std::memcmp(back->data(), values.data(), values.size() * 4), 0);
  ASSERT_TRUE(DecodeFloatsBase64("AAAAAA==").ok());
  EXPECT_EQ(DecodeFloatsBase64("AAAAAA==")->size(), 1u);
  EXPECT_FALSE(DecodeFloatsBase64("AAAA").ok());  // 3 bytes
}

TEST(Router, MatchesRoutesAndDecodesParameters) {
  RouteMatch m = MatchRoute("GET", "/collections/my%20docs/documents/a%2Fb?x=1");
  ASSERT_EQ(m.kind, RouteMatch::Kind::kFound);
  EXPECT_EQ(m.route, RouteId::kGetDocument);
  EXPECT_EQ(m.label, "/collections/{name}/documents/{id}");
  EXPECT_EQ(m.collection, "my docs");
  EXPECT_EQ(m.id, "a/b");
  EXPECT_EQ(MatchRoute("POST", "/collections/c/search").route, RouteId::kSearch);
  EXPECT_EQ(MatchRoute("GET", "/collections").route, RouteId::kListCollections);
  EXPECT_EQ(MatchRoute("GET", "/collections/").kind, RouteMatch::Kind::kUnknownPath);  // empty name
  EXPECT_EQ(MatchRoute("GET", "/collections/c/documents/").kind, RouteMatch::Kind::kUnknownPath);
  EXPECT_EQ(MatchRoute("GET", "collections").kind, RouteMatch::Kind::kUnknownPath);
  EXPECT_EQ(MatchRoute("GET", "/healthz/").kind, RouteMatch::Kind::kUnknownPath);
  m = MatchRoute("POST", "/collections/c/documents/d");
  EXPECT_EQ(m.kind, RouteMatch::Kind::kWrongMethod);
  EXPECT_EQ(m.allow, "GET, DELETE");
  EXPECT_EQ(MatchRoute("GET", "/collections/%4").kind, RouteMatch::Kind::kBadPath);
  EXPECT_EQ(MatchRoute("GET", "/collections/%g0").kind, RouteMatch::Kind::kBadPath);
  std::string out;
  EXPECT_TRUE(PercentDecode("a+b%41%7e", &out));
  EXPECT_EQ(out, "a+bA~");
}

// docs/openapi.yaml describes every route the router knows, with its method.
TEST(Router, EveryRouteIsInTheOpenApiDescription) {
  std::ifstream in(std::string(M3VDB_SOURCE_DIR) + "/docs/openapi.yaml");
  ASSERT_TRUE(in) << "docs/openapi.yaml is missing";
  std::stringstream text;
  text << in.rdbuf();
  const std::string doc = text.str();
  for (const auto& [method, pattern] : AllRoutes()) {
    const size_t at = doc.find("\n  " + std::string(pattern) + ":\n");
    ASSERT_NE(at, std::string::npos) << pattern << " is not in docs/openapi.yaml";
    const size_t next = doc.find("\n  /", at + 1);
    std::string verb(method);
    for (char& c : verb) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    EXPECT_NE(doc.substr(at, next - at).find("\n    " + verb + ":"), std::string::npos)
        << method << " " << pattern << " is not in docs/openapi.yaml";
  }
}

TEST(Auth, ComparesKeysExactly) {
  EXPECT_TRUE(ConstantTimeEquals("secret", "secret"));
  EXPECT_FALSE(ConstantTimeEquals("secreT", "secret"));
  EXPECT_FALSE(ConstantTimeEquals("secretsecret", "secret"));  // a repetition is not the key
  EXPECT_FALSE(ConstantTimeEquals("sec", "secret"));
  EXPECT_FALSE(ConstantTimeEquals("", "secret"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  const std::vector<std::string> keys = {"alpha", "beta"};
  EXPECT_TRUE(IsAuthorized("Bearer beta", keys));
  EXPECT_TRUE(IsAuthorized("BEARER   alpha ", keys));
  EXPECT_FALSE(IsAuthorized("Bearer gamma", keys));
  EXPECT_FALSE(IsAuthorized("Bearer ", keys));
  EXPECT_FALSE(IsAuthorized("alpha", keys));
  EXPECT_FALSE(IsAuthorized("Token alpha", keys));
  EXPECT_FALSE(IsAuthorized("", keys));
}

TEST(HttpStatus, OneCodePerEngineStatus) {
  EXPECT_EQ(HttpStatusFor(StatusCode::kInvalidArgument), 400);
  EXPECT_EQ(HttpStatusFor(StatusCode::kNotFound), 404);
  EXPECT_EQ(HttpStatusFor(StatusCode::kAlreadyExists), 409);
  EXPECT_EQ(HttpStatusFor(StatusCode::kResourceExhausted), 413);
  EXPECT_EQ(HttpStatusFor(StatusCode::kFailedPrecondition), 422);
  EXPECT_EQ(HttpStatusFor(StatusCode::kUnavailable), 503);
  EXPECT_EQ(HttpStatusFor(StatusCode::kCorruption), 500);
  EXPECT_EQ(HttpStatusFor(StatusCode::kIOError), 500);
  EXPECT_EQ(HttpStatusFor(StatusCode::kInternal), 500);
  EXPECT_EQ(ErrorBody("not_found", "no \"x\""), R"({"error":{"code":"not_found","message":"no \"x\""}})");
}

}  // namespace
}  // namespace m3vdb::net::detail
