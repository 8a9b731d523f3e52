// SPDX-License-Identifier: Apache-2.0
#include <confab/core/random.h>

#include <openssl/rand.h>

#include <cstdio>
#include <exception>
#include <vector>

namespace confab::core {

std::string Random::hex(std::size_t bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::vector<std::uint8_t> buf(bytes);
  fill(buf);
  std::string out;
  out.reserve(bytes * 2);
  for (auto b : buf) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xf]);
  }
  return out;
}

std::uint64_t Random::uniform(std::uint64_t bound) {
  // Rejection sampling: draw until the value falls below the largest multiple of bound.
  const std::uint64_t limit = UINT64_MAX - (UINT64_MAX % bound);
  for (;;) {
    std::uint64_t v = 0;
    fill(std::span<std::uint8_t>(reinterpret_cast<std::uint8_t*>(&v), sizeof v));
    if (v < limit) {
      return v % bound;
    }
  }
}

void CsprngRandom::fill(std::span<std::uint8_t> out) {
  if (out.empty()) {
    return;
  }
  if (RAND_bytes(out.data(), static_cast<int>(out.size())) != 1) {
    std::fputs("confabd: the system CSPRNG failed\n", stderr);
    std::terminate();
  }
}

CsprngRandom& CsprngRandom::instance() {
  static CsprngRandom random;
  return random;
}

}  // namespace confab::core
