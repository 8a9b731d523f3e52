// SPDX-License-Identifier: Apache-2.0
#pragma once
// SignInThrottle: how many password guesses a client gets (SPEC.md §2, NIST SP 800-63B §5.2.2).
//
// Every attempt is counted *before* the password is checked: admit() runs in a write transaction
// and counts the attempt as a failure; succeeded() takes it back. Attempts are therefore counted
// one at a time in the store's writer, and of 50 concurrent guesses at most `threshold` are ever
// checked before the pair (user, client address) is locked.
//
// - Per (user, client address): from the `threshold`-th failure on, the pair waits
//   `lock_base_ms` × 2^(failures − threshold), at most `lock_max_ms`, before its next attempt.
// - Per user, from any address: after a failure the next attempt waits `user_delay_ms` — small,
//   so one address cannot lock the only administrator out, but a spray over many addresses is
//   slowed down.
// - Unknown users are throttled like known ones (the caller passes the name it was given), so the
//   answer and its timing do not tell them apart.
//
// Functions run in the caller's write transaction. Thread-safe.

#include <confab/core/result.h>
#include <confab/store/database.h>

#include <cstdint>
#include <string>

namespace confab::iam {

struct ThrottleOptions {
  int threshold = 5;
  std::int64_t lock_base_ms = 30'000;
  std::int64_t lock_max_ms = 15 * 60'000;
  std::int64_t user_delay_ms = 1'000;
  std::int64_t forget_after_ms = 24 * 3600'000;  // failures older than this no longer count
};

struct SignInKey {
  std::string account_id;
  std::string user;  // the user id, or the name given for an unknown user
  std::string client_address;
};

struct Admission {
  bool allowed = false;
  std::int64_t retry_after_ms = 0;  // when refused
  int failures = 0;                 // counted for the pair, this attempt included when allowed
};

class SignInThrottle {
 public:
  explicit SignInThrottle(ThrottleOptions options = {}) : options_(options) {}

  // Refused while the pair is locked or the user's delay runs; otherwise counts this attempt as
  // a failure and lets the caller check the password.
  Result<Admission> admit(store::Database& db, const SignInKey& key, std::int64_t now_ms) const;
  // The password was right: the pair's failures are forgotten (the user's delay is not kept).
  Status succeeded(store::Database& db, const SignInKey& key) const;

  const ThrottleOptions& options() const { return options_; }

 private:
  ThrottleOptions options_;
};

}  // namespace confab::iam
