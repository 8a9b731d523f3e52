// SPDX-License-Identifier: Apache-2.0
#include <confab/net/router.h>

#include <gtest/gtest.h>

namespace confab::net {
namespace {

Handler ok() {
  return [](Request&) -> boost::asio::awaitable<Response> { co_return Response::json(200, "{}"); };
}

TEST(Router, MatchesLiteralAndParameterSegments) {
  Router r;
  r.add("GET", "/api/v1/users/{id}", ok());
  r.add("DELETE", "/api/v1/users/{id}", ok());
  r.add("GET", "/healthz", ok());
  std::map<std::string, std::string> params;
  auto m = r.match("GET", "/api/v1/users/u42", params);
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.route->pattern, "/api/v1/users/{id}");
  EXPECT_EQ(params["id"], "u42");
  EXPECT_EQ(r.match("GET", "/healthz", params).route->pattern, "/healthz");
}

TEST(Router, UnknownPathAndWrongMethodAreDistinguished) {
  Router r;
  r.add("GET", "/api/v1/users/{id}", ok());
  r.add("DELETE", "/api/v1/users/{id}", ok());
  std::map<std::string, std::string> params;
  auto none = r.match("GET", "/api/v1/groups/1", params);
  EXPECT_EQ(none.route, nullptr);
  EXPECT_FALSE(none.path_known);
  auto wrong = r.match("POST", "/api/v1/users/1", params);
  EXPECT_EQ(wrong.route, nullptr);
  EXPECT_TRUE(wrong.path_known);
  EXPECT_EQ(wrong.allow, "GET, HEAD, DELETE");
}

TEST(Router, HeadIsServedByGetAndTrailingSlashesAndEmptySegmentsDoNotMatch) {
  Router r;
  r.add("GET", "/healthz", ok());
  r.add("GET", "/a/{x}/b", ok());
  std::map<std::string, std::string> params;
  EXPECT_NE(r.match("HEAD", "/healthz", params).route, nullptr);
  EXPECT_EQ(r.match("GET", "/healthz/", params).route, nullptr);
  EXPECT_EQ(r.match("GET", "/a//b", params).route, nullptr);
  EXPECT_EQ(r.match("GET", "/a/1/b/c", params).route, nullptr);
}

TEST(Router, WebSocketRoutesAreSeparate) {
  Router r;
  r.addWebSocket("/api/v1/events", nullptr);
  std::map<std::string, std::string> params;
  EXPECT_EQ(r.match("GET", "/api/v1/events", params).route, nullptr);
  ASSERT_NE(r.matchWebSocket("/api/v1/events"), nullptr);
  EXPECT_EQ(r.matchWebSocket("/api/v1/other"), nullptr);
}

TEST(Request, HeadersAreCaseInsensitiveAndQueryIsDecoded) {
  Request req;
  req.headers = {{"origin", "https://a.example"}};
  req.query = "since=12&name=J%C3%BCrgen+X&empty&bad=%zz";
  EXPECT_EQ(req.header("Origin").value(), "https://a.example");
  EXPECT_FALSE(req.header("Host").has_value());
  EXPECT_EQ(req.queryParam("since").value(), "12");
  EXPECT_EQ(req.queryParam("name").value(), "J\xc3\xbcrgen X");
  EXPECT_EQ(req.queryParam("empty").value(), "");
  EXPECT_EQ(req.queryParam("bad").value(), "%zz");
  EXPECT_FALSE(req.queryParam("missing").has_value());
}

TEST(Problem, BodyIsJsonWithRequestIdAndEscapedDetail) {
  auto r = problem(400, "", "bad \"quote\"\n", "rid1", {}, {{"field", jsonString("name")}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.content_type, "application/problem+json");
  EXPECT_EQ(r.body, R"({"type":"about:blank","title":"Bad Request","status":400,)"
                    R"("detail":"bad \"quote\"\n","request_id":"rid1","field":"name"})");
}

}  // namespace
}  // namespace confab::net
