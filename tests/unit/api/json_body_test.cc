// SPDX-License-Identifier: Apache-2.0
#include <confab/api/json_body.h>
#include <confab/api/problem.h>

#include <gtest/gtest.h>

namespace confab::api {
namespace {

TEST(JsonBody, DepthIgnoresBracketsInStrings) {
  EXPECT_EQ(jsonDepth(R"({"a":[1,{"b":2}]})", 10), 3);
  EXPECT_EQ(jsonDepth(R"({"a":"[[[[{{{{\"]]"})", 10), 1);
  EXPECT_EQ(jsonDepth(std::string(100000, '['), 32), 33);  // stops early
}

TEST(JsonBody, RefusesDeepInvalidAndNonObjectBodies) {
  auto deep = parseJsonObject(std::string(40, '[') + std::string(40, ']'), 32);
  ASSERT_FALSE(deep.ok());
  EXPECT_EQ(deep.error().field, "body");
  EXPECT_NE(deep.error().message.find("32"), std::string::npos);
  EXPECT_FALSE(parseJsonObject("{\"a\":", 32).ok());
  EXPECT_FALSE(parseJsonObject("[1,2]", 32).ok());
  EXPECT_FALSE(parseJsonObject("\xff\xfe", 32).ok());
  auto ok = parseJsonObject(R"({"type":"auth","n":[1,2]})", 32);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ((*ok)["type"], "auth");
}

TEST(Problem, MapsErrorCodesAndHidesInternalDetail) {
  net::Request req;
  req.request_id = "r1";
  auto bad = errorResponse(makeError(ErrorCode::InvalidArgument, "name is empty", "name"), req);
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find(R"("field":"name")"), std::string::npos);
  EXPECT_NE(bad.body.find("name is empty"), std::string::npos);
  auto internal = errorResponse(makeError(ErrorCode::Internal, "open /srv/x.db: disk I/O"), req);
  EXPECT_EQ(internal.status, 500);
  EXPECT_EQ(internal.body.find("/srv/x.db"), std::string::npos);
  EXPECT_EQ(errorResponse(makeError(ErrorCode::NotFound, "no"), req).status, 404);
  auto unauth = errorResponse(makeError(ErrorCode::Unauthenticated, "no"), req);
  EXPECT_EQ(unauth.status, 401);
  ASSERT_FALSE(unauth.headers.empty());
  EXPECT_EQ(unauth.headers[0].first, "WWW-Authenticate");
}

}  // namespace
}  // namespace confab::api
