// SPDX-License-Identifier: Apache-2.0
#pragma once
// Clock: the one source of time. Production uses SystemClock; tests inject a ManualClock.
// Implementations must be thread-safe.

#include <atomic>
#include <chrono>
#include <cstdint>

namespace confab::core {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time (for timestamps stored or shown).
  virtual std::chrono::system_clock::time_point now() const = 0;
  // Monotonic time (for durations, deadlines and rate limits).
  virtual std::chrono::steady_clock::time_point steadyNow() const = 0;
};

class SystemClock final : public Clock {
 public:
  std::chrono::system_clock::time_point now() const override;
  std::chrono::steady_clock::time_point steadyNow() const override;
  static SystemClock& instance();
};

// A clock that moves only when told to. Both of its times advance together.
class ManualClock final : public Clock {
 public:
  std::chrono::system_clock::time_point now() const override;
  std::chrono::steady_clock::time_point steadyNow() const override;
  void advance(std::chrono::nanoseconds d) { offset_ += d.count(); }

 private:
  std::atomic<std::int64_t> offset_{0};
};

// Milliseconds since the Unix epoch: the form timestamps take in the store and on the wire.
std::int64_t toUnixMillis(std::chrono::system_clock::time_point t);

}  // namespace confab::core
