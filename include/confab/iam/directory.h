// SPDX-License-Identifier: Apache-2.0
#pragma once
// Directory: accounts and users in the store (SPEC.md §1). A partner account owns customer
// accounts; a user belongs to exactly one account. Every change is recorded in the audit log of
// the account it happens in, in the same transaction. Every lookup names its account: there is
// no way to find a user by id alone.
//
// An account's storage region comes from its country (region.countries) when it is created, and
// a node creates only accounts of the region it serves (region.serves; SPEC.md §7).
//
// Functions run in the caller's transaction (Store::write / Store::read). Thread-safe; the config,
// audit log, clock and random source must outlive the Directory.

#include <confab/audit/audit_log.h>
#include <confab/config/config.h>
#include <confab/core/clock.h>
#include <confab/core/random.h>
#include <confab/core/result.h>
#include <confab/iam/policy.h>
#include <confab/store/database.h>

#include <cstdint>
#include <optional>
#include <string>

namespace confab::iam {

enum class AccountKind { Partner, Customer };
enum class AccountStatus { Active, Suspended, Terminating };
enum class UserStatus { Active, Disabled, Deleted };

struct Account {
  std::string id;
  AccountKind kind = AccountKind::Customer;
  std::string partner_id;  // empty for a partner
  std::string name;
  std::string country;
  std::string region;
  AccountStatus status = AccountStatus::Active;
  std::int64_t created_at = 0;
};

struct NewAccount {
  AccountKind kind = AccountKind::Customer;
  std::string partner_id;  // required for a customer: an existing partner account
  std::string name;        // 1..200 bytes
  std::string country;     // ISO 3166-1 alpha-2, any case
};

struct User {
  std::string account_id;
  std::string id;
  std::string username;
  std::string email;
  std::string display_name;
  Role role = Role::User;
  std::string password_hash;
  bool must_change_password = true;
  UserStatus status = UserStatus::Active;
  std::int64_t created_at = 0;
};

struct NewUser {
  std::string account_id;
  std::string username;  // [a-z0-9._-]{1,64} after lower-casing
  std::string email;     // local@domain, at most 254 bytes
  std::string display_name;
  Role role = Role::User;     // Partner Admin only in a partner, Customer Admin only in a customer
  std::string password_hash;  // from PasswordHasher::hash
  bool must_change_password = true;
};

// Who changes the directory, for the audit entry.
struct ChangeContext {
  audit::Actor actor;  // empty user: confabd itself (bootstrap, a command)
  audit::Client client;
};

class Directory {
 public:
  Directory(const config::Config& config, const audit::AuditLog& audit, core::Clock& clock,
            core::Random& random);

  // InvalidArgument naming the field (name, country, partner_id); FailedPrecondition when the
  // country's region is not the one this node serves (field "country"); NotFound when the
  // partner does not exist or is not a partner (field "partner_id").
  Result<Account> createAccount(store::Database& db, const NewAccount& account,
                                const ChangeContext& who) const;
  // NotFound for an unknown id.
  Result<Account> account(store::Database& db, const std::string& id) const;

  // InvalidArgument naming the field; AlreadyExists (field "username") when the account has that
  // user name, also for a deleted user; NotFound (field "account_id") for an unknown account.
  Result<User> createUser(store::Database& db, const NewUser& user, const ChangeContext& who) const;
  // NotFound for an unknown user of that account — the same for a user of another account.
  Result<User> user(store::Database& db, const std::string& account_id,
                    const std::string& user_id) const;

 private:
  std::string newId(std::string_view prefix) const;

  const config::Config& config_;
  const audit::AuditLog& audit_;
  core::Clock& clock_;
  core::Random& random_;
};

std::string_view accountKindName(AccountKind kind);  // "partner", "customer"
std::string_view accountStatusName(AccountStatus status);
std::string_view userStatusName(UserStatus status);

}  // namespace confab::iam
