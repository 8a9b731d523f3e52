// SPDX-License-Identifier: Apache-2.0
#pragma once
// PasswordHasher: Argon2id (RFC 9106, libargon2) for stored passwords, as PHC strings
// ("$argon2id$v=19$m=65536,t=3,p=1$<salt>$<hash>", base64 without padding), so that each hash
// carries its own parameters and salt. A hash made under other parameters still verifies and
// says so (needs_rehash), which lets a sign-in upgrade it when the configuration changes.
//
// hash() and verify() are deliberately slow (tens of milliseconds and `memory_kib` of memory):
// call them off the I/O threads. Thread-safe.

#include <confab/core/random.h>
#include <confab/core/result.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace confab::iam {

struct Argon2Params {
  int memory_kib = 65536;  // 64 MiB: RFC 9106 §4's second recommendation, with t=3
  int iterations = 3;
  int parallelism = 1;  // lanes; 1 keeps a sign-in on one core of a small machine
};

class PasswordHasher {
 public:
  // Longest password accepted, in bytes: it bounds the work an unauthenticated caller can ask
  // for (the policy's 128 code points are at most 512 bytes of UTF-8).
  static constexpr std::size_t kMaxPasswordBytes = 1024;

  // `random` supplies the 16-byte salts; it must outlive the hasher.
  PasswordHasher(Argon2Params params, core::Random& random);

  // InvalidArgument (field "password") for an empty or over-long password; Internal when
  // libargon2 fails (out of memory).
  Result<std::string> hash(std::string_view password) const;

  struct Verdict {
    bool match = false;
    bool needs_rehash = false;  // matched under other parameters than the configured ones
  };
  // A wrong password is {false, false}, not an error. InvalidArgument when `encoded` is not an
  // Argon2id PHC string (a corrupt record).
  Result<Verdict> verify(std::string_view password, std::string_view encoded) const;

  const Argon2Params& params() const { return params_; }

 private:
  Argon2Params params_;
  core::Random& random_;
};

// The parameters of an Argon2id PHC string, if it is one.
std::optional<Argon2Params> argon2ParamsOf(std::string_view encoded);

}  // namespace confab::iam
