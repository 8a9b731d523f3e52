// SPDX-License-Identifier: Apache-2.0
#pragma once
// Token buckets keyed by client address: `rate` tokens per second up to `burst`. Thread-safe.
// The table is bounded: when it grows past max_keys, buckets that have refilled completely
// (clients that went quiet) are dropped; they would start full again anyway.

#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>

namespace confab::net {

class TokenBucket {
 public:
  TokenBucket(double rate, double burst) : rate_(rate), burst_(burst), tokens_(burst) {}
  // Takes one token if available; otherwise returns false and the wait until one is.
  bool take(std::chrono::steady_clock::time_point now, std::chrono::milliseconds* retry_after);
  bool full(std::chrono::steady_clock::time_point now) const;

 private:
  double rate_;
  double burst_;
  double tokens_;
  std::chrono::steady_clock::time_point last_{};
};

class RateLimiter {
 public:
  RateLimiter(double rate, double burst, std::size_t max_keys = 100000)
      : rate_(rate), burst_(burst), max_keys_(max_keys) {}
  bool allow(const std::string& key, std::chrono::steady_clock::time_point now,
             std::chrono::milliseconds* retry_after);
  std::size_t size() const;

 private:
  double rate_;
  double burst_;
  std::size_t max_keys_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, TokenBucket> buckets_;
};

}  // namespace confab::net
