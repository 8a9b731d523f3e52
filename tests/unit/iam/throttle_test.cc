// SPDX-License-Identifier: Apache-2.0
// Sign-in throttling: attempts counted before the password is checked, so concurrent guesses get
// no more than the threshold; locks that grow; a small per-user delay that no address can turn
// into a lock-out of everyone.
#include <confab/iam/throttle.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "test_support.h"

namespace confab::iam {
namespace {

class ThrottleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = confab::testing::openTestStore(dir_.path());
    ASSERT_TRUE(store_);
  }
  Admission admit(const SignInThrottle& t, const SignInKey& k, std::int64_t now) {
    auto a = store_->writeNow<Admission>([&](store::Database& db) { return t.admit(db, k, now); });
    EXPECT_TRUE(a.ok()) << a.error().message;
    return a.ok() ? *a : Admission{};
  }
  confab::testing::TestDir dir_{"throttle"};
  std::unique_ptr<store::Store> store_;
  const SignInKey ann_{"acme", "u_ann", "192.0.2.1"};
};

// 50 guesses at once, from one address: every one is counted in the writer before any password
// is checked, so no more than the threshold are ever let through.
TEST_F(ThrottleTest, FiftyConcurrentGuessesGetNoMoreThanTheThreshold) {
  SignInThrottle t(ThrottleOptions{.threshold = 5, .user_delay_ms = 0});
  boost::asio::io_context io;
  int allowed = 0;
  int refused = 0;
  for (int i = 0; i < 50; ++i) {
    boost::asio::co_spawn(
        io,
        [&]() -> boost::asio::awaitable<void> {
          auto a = co_await store_->write<Admission>(
              [&](store::Database& db) { return t.admit(db, ann_, 1'000'000); });
          EXPECT_TRUE(a.ok());
          (a.ok() && a->allowed ? allowed : refused)++;
        },
        boost::asio::detached);
  }
  io.run();
  EXPECT_EQ(allowed, 5);
  EXPECT_EQ(refused, 45);
}

TEST_F(ThrottleTest, LocksGrowAndEndAndASuccessForgets) {
  SignInThrottle t(ThrottleOptions{
      .threshold = 3, .lock_base_ms = 1000, .lock_max_ms = 4000, .user_delay_ms = 0});
  std::int64_t now = 10'000'000;
  for (int i = 1; i <= 3; ++i) {
    auto a = admit(t, ann_, now);
    EXPECT_TRUE(a.allowed);
    EXPECT_EQ(a.failures, i);
  }
  auto locked = admit(t, ann_, now + 10);
  EXPECT_FALSE(locked.allowed);
  EXPECT_EQ(locked.retry_after_ms, 990);
  // Another address is another pair: not locked.
  EXPECT_TRUE(admit(t, {"acme", "u_ann", "198.51.100.7"}, now + 10).allowed);
  // After the lock, one more attempt; its failure doubles the lock (2 s), then 4 s, capped.
  EXPECT_TRUE(admit(t, ann_, now + 1000).allowed);
  EXPECT_EQ(admit(t, ann_, now + 2999).retry_after_ms, 1);
  EXPECT_TRUE(admit(t, ann_, now + 3000).allowed);
  EXPECT_EQ(admit(t, ann_, now + 3000).retry_after_ms, 4000);
  EXPECT_TRUE(admit(t, ann_, now + 7000).allowed);
  EXPECT_EQ(admit(t, ann_, now + 7000).retry_after_ms, 4000);  // at the maximum
  // The right password: forgotten.
  ASSERT_TRUE(store_
                  ->writeNow<int>([&](store::Database& db) -> Result<int> {
                    CONFAB_TRY(t.succeeded(db, ann_));
                    return 0;
                  })
                  .ok());
  auto fresh = admit(t, ann_, now + 7001);
  EXPECT_TRUE(fresh.allowed);
  EXPECT_EQ(fresh.failures, 1);
}

TEST_F(ThrottleTest, TheUserDelayIsShortAndOldFailuresAreForgotten) {
  SignInThrottle t(
      ThrottleOptions{.threshold = 5, .user_delay_ms = 1000, .forget_after_ms = 60'000});
  std::int64_t now = 50'000'000;
  EXPECT_TRUE(admit(t, ann_, now).allowed);
  // From anywhere, the next try for that user waits a second — no longer.
  auto other = admit(t, {"acme", "u_ann", "203.0.113.9"}, now + 400);
  EXPECT_FALSE(other.allowed);
  EXPECT_EQ(other.retry_after_ms, 600);
  EXPECT_TRUE(admit(t, {"acme", "u_ann", "203.0.113.9"}, now + 1000).allowed);
  // Another user is not delayed.
  EXPECT_TRUE(admit(t, {"acme", "u_bob", "192.0.2.1"}, now + 400).allowed);
  // Failures a day old no longer count toward a lock.
  for (int i = 0; i < 4; ++i) {
    now += 1000;
    EXPECT_TRUE(admit(t, ann_, now + 1000).allowed);
  }
  auto later = admit(t, ann_, now + 1000 + 60'000);
  EXPECT_TRUE(later.allowed);
  EXPECT_EQ(later.failures, 1);
}

}  // namespace
}  // namespace confab::iam
