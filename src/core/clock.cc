// SPDX-License-Identifier: Apache-2.0
#include <confab/core/clock.h>

namespace confab::core {

std::chrono::system_clock::time_point SystemClock::now() const {
  return std::chrono::system_clock::now();
}
std::chrono::steady_clock::time_point SystemClock::steadyNow() const {
  return std::chrono::steady_clock::now();
}
SystemClock& SystemClock::instance() {
  static SystemClock clock;
  return clock;
}

// Starts at a fixed, recognisable instant (2026-01-01T00:00:00Z) so that test output is stable.
std::chrono::system_clock::time_point ManualClock::now() const {
  return std::chrono::system_clock::time_point{} + std::chrono::seconds{1767225600} +
         std::chrono::nanoseconds{offset_.load()};
}
std::chrono::steady_clock::time_point ManualClock::steadyNow() const {
  return std::chrono::steady_clock::time_point{} + std::chrono::hours{1} +
         std::chrono::nanoseconds{offset_.load()};
}

std::int64_t toUnixMillis(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

}  // namespace confab::core
