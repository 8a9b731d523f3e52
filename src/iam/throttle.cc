// SPDX-License-Identifier: Apache-2.0
#include <confab/iam/throttle.h>

#include <algorithm>
#include <string_view>

namespace confab::iam {
namespace {

constexpr std::string_view kPair =
    "SELECT failures, last_at FROM sign_in_failures WHERE account_id = ?1 AND user_id = ?2 AND "
    "client_address = ?3";
constexpr std::string_view kUser =
    "SELECT last_at FROM sign_in_users WHERE account_id = ?1 AND user_id = ?2";
constexpr std::string_view kCountPair = R"sql(
INSERT INTO sign_in_failures (account_id, user_id, client_address, failures, last_at)
VALUES (?1, ?2, ?3, ?4, ?5)
ON CONFLICT (account_id, user_id, client_address) DO UPDATE
SET failures = excluded.failures, last_at = excluded.last_at)sql";
constexpr std::string_view kCountUser = R"sql(
INSERT INTO sign_in_users (account_id, user_id, last_at) VALUES (?1, ?2, ?3)
ON CONFLICT (account_id, user_id) DO UPDATE SET last_at = excluded.last_at)sql";
constexpr std::string_view kForgetPair =
    "DELETE FROM sign_in_failures WHERE account_id = ?1 AND user_id = ?2 AND client_address = ?3";
constexpr std::string_view kForgetUser =
    "DELETE FROM sign_in_users WHERE account_id = ?1 AND user_id = ?2";

}  // namespace

Result<Admission> SignInThrottle::admit(store::Database& db, const SignInKey& key,
                                        std::int64_t now_ms) const {
  int failures = 0;
  std::int64_t pair_last = 0;
  {
    auto s = db.cached(kPair);
    if (!s.ok()) {
      return s.error();
    }
    auto row = (*s)->bind(1, key.account_id).bind(2, key.user).bind(3, key.client_address).step();
    if (!row.ok()) {
      return row.error();
    }
    if (*row) {
      failures = static_cast<int>((*s)->int64(0));
      pair_last = (*s)->int64(1);
    }
    (*s)->reset();
  }
  if (failures > 0 && now_ms - pair_last >= options_.forget_after_ms) {
    failures = 0;  // old failures no longer count
  }
  if (failures >= options_.threshold) {
    // 2^(failures - threshold) without overflow: the lock stops growing at its maximum.
    std::int64_t lock = options_.lock_base_ms;
    for (int i = options_.threshold; i < failures && lock < options_.lock_max_ms; ++i) {
      lock *= 2;
    }
    lock = std::min(lock, options_.lock_max_ms);
    if (now_ms < pair_last + lock) {
      return Admission{false, pair_last + lock - now_ms, failures};
    }
  }
  {
    auto s = db.cached(kUser);
    if (!s.ok()) {
      return s.error();
    }
    auto row = (*s)->bind(1, key.account_id).bind(2, key.user).step();
    if (!row.ok()) {
      return row.error();
    }
    std::int64_t user_last = *row ? (*s)->int64(0) : 0;
    (*s)->reset();
    if (user_last > 0 && now_ms < user_last + options_.user_delay_ms) {
      return Admission{false, user_last + options_.user_delay_ms - now_ms, failures};
    }
  }
  // Counted now, before the password is checked; succeeded() takes it back.
  ++failures;
  auto pair = db.cached(kCountPair);
  if (!pair.ok()) {
    return pair.error();
  }
  CONFAB_TRY((*pair)
                 ->bind(1, key.account_id)
                 .bind(2, key.user)
                 .bind(3, key.client_address)
                 .bind(4, std::int64_t{failures})
                 .bind(5, now_ms)
                 .run());
  auto user = db.cached(kCountUser);
  if (!user.ok()) {
    return user.error();
  }
  CONFAB_TRY((*user)->bind(1, key.account_id).bind(2, key.user).bind(3, now_ms).run());
  return Admission{true, 0, failures};
}

Status SignInThrottle::succeeded(store::Database& db, const SignInKey& key) const {
  auto pair = db.cached(kForgetPair);
  if (!pair.ok()) {
    return pair.error();
  }
  CONFAB_TRY((*pair)->bind(1, key.account_id).bind(2, key.user).bind(3, key.client_address).run());
  auto user = db.cached(kForgetUser);
  if (!user.ok()) {
    return user.error();
  }
  CONFAB_TRY((*user)->bind(1, key.account_id).bind(2, key.user).run());
  return {};
}

}  // namespace confab::iam
