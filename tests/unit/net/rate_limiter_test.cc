// SPDX-License-Identifier: Apache-2.0
#include "net/rate_limiter.h"

#include <gtest/gtest.h>

namespace confab::net {
namespace {

using namespace std::chrono_literals;

TEST(RateLimiter, AllowsTheBurstThenRefusesWithRetryAfter) {
  RateLimiter limiter(10, 5);
  auto t = std::chrono::steady_clock::time_point{} + 1h;
  std::chrono::milliseconds retry{0};
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(limiter.allow("10.0.0.1", t, &retry)) << i;
  }
  EXPECT_FALSE(limiter.allow("10.0.0.1", t, &retry));
  EXPECT_EQ(retry, 100ms);  // one token at 10/s
  // Another address has its own bucket.
  EXPECT_TRUE(limiter.allow("10.0.0.2", t, &retry));
  // Refill at the configured rate.
  EXPECT_TRUE(limiter.allow("10.0.0.1", t + 100ms, &retry));
  EXPECT_FALSE(limiter.allow("10.0.0.1", t + 100ms, &retry));
}

TEST(RateLimiter, TableStaysBoundedByDroppingQuietClients) {
  RateLimiter limiter(1, 1, 3);
  auto t = std::chrono::steady_clock::time_point{} + 1h;
  for (int i = 0; i < 3; ++i) {
    limiter.allow("c" + std::to_string(i), t, nullptr);
  }
  EXPECT_EQ(limiter.size(), 3u);
  // Ten seconds later the three are full again, so a new client evicts them.
  limiter.allow("new", t + 10s, nullptr);
  EXPECT_EQ(limiter.size(), 1u);
}

}  // namespace
}  // namespace confab::net
