// SPDX-License-Identifier: Apache-2.0
#include "net/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace confab::net {

bool TokenBucket::take(std::chrono::steady_clock::time_point now,
                       std::chrono::milliseconds* retry_after) {
  if (last_ != std::chrono::steady_clock::time_point{}) {
    double elapsed = std::chrono::duration<double>(now - last_).count();
    tokens_ = std::min(burst_, tokens_ + std::max(0.0, elapsed) * rate_);
  }
  last_ = now;
  if (tokens_ >= 1.0) {
    tokens_ -= 1.0;
    return true;
  }
  if (retry_after) {
    *retry_after = std::chrono::milliseconds(
        static_cast<std::int64_t>(std::ceil((1.0 - tokens_) / rate_ * 1000.0)));
  }
  return false;
}

bool TokenBucket::full(std::chrono::steady_clock::time_point now) const {
  double elapsed = std::chrono::duration<double>(now - last_).count();
  return tokens_ + elapsed * rate_ >= burst_;
}

bool RateLimiter::allow(const std::string& key, std::chrono::steady_clock::time_point now,
                        std::chrono::milliseconds* retry_after) {
  std::lock_guard lock(mu_);
  if (buckets_.size() >= max_keys_ && buckets_.find(key) == buckets_.end()) {
    std::erase_if(buckets_, [&](const auto& kv) { return kv.second.full(now); });
  }
  auto [it, inserted] = buckets_.try_emplace(key, rate_, burst_);
  return it->second.take(now, retry_after);
}

std::size_t RateLimiter::size() const {
  std::lock_guard lock(mu_);
  return buckets_.size();
}

}  // namespace confab::net
