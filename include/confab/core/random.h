// SPDX-License-Identifier: Apache-2.0
#pragma once
// Random: the one source of randomness. Production uses CsprngRandom (OpenSSL's RAND_bytes);
// tests inject a deterministic one. Implementations must be thread-safe.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace confab::core {

class Random {
 public:
  virtual ~Random() = default;
  // Fills `out` with random bytes. A CSPRNG failure is fatal (std::terminate): there is no safe
  // fallback for key or token material.
  virtual void fill(std::span<std::uint8_t> out) = 0;

  // `bytes` random bytes as lower-case hex (2 * bytes characters).
  std::string hex(std::size_t bytes);
  // A uniformly distributed integer in [0, bound), bound > 0, without modulo bias.
  std::uint64_t uniform(std::uint64_t bound);
};

class CsprngRandom final : public Random {
 public:
  void fill(std::span<std::uint8_t> out) override;
  static CsprngRandom& instance();
};

}  // namespace confab::core
