// SPDX-License-Identifier: Apache-2.0
#pragma once
// Policy: the one function that decides who may do what (SPEC.md §1, DESIGN.md "Authorization is
// one function"). Every handler calls Policy::check before it touches data. The tenant boundary is
// part of the decision: an object of another account is NotFound, exactly as one that does not
// exist, so that a caller cannot learn which ids exist elsewhere.
//
// The actions grow with the features; each one's rule is a row of the access matrix, written in
// policy.cc beside the others. Pure functions of their arguments: thread-safe.

#include <optional>
#include <string>
#include <string_view>

namespace confab::iam {

enum class Role { PartnerAdmin, CustomerAdmin, User, Guest };
std::string_view roleName(Role role);  // "partner_admin", "customer_admin", "user", "guest"
std::optional<Role> roleFromName(std::string_view name);

// An authenticated identity. Under assume-role (an RFC 8693 token exchange, identity issue) the
// effective identity is a Customer Admin of the customer account and the real one is the
// Partner Admin who assumed it.
struct Actor {
  std::string account_id;  // effective
  std::string user_id;     // effective
  Role role = Role::User;
  std::string real_account_id;  // empty unless assume-role
  std::string real_user_id;

  bool assumed() const { return !real_account_id.empty(); }
};

enum class Action {
  AuditRead,            // query the account's audit log and verify its chain
  AuditExport,          // export it as JSON Lines
  AuditSettingsRead,    // read the account's audit retention
  AuditSettingsUpdate,  // change it
  AuditKeyRead,         // the public key that verifies checkpoints
};
// As audit entries name the attempt: "audit.read", "audit.exported", "audit.settings_updated".
std::string_view actionName(Action action);

// What an action is applied to: always within one account.
struct Resource {
  std::string account_id;
};

enum class Decision {
  Allow,
  NotFound,   // outside the actor's account: answered as if it did not exist
  Forbidden,  // inside it, but not for this role
};

struct Verdict {
  Decision decision = Decision::NotFound;
  std::string reason;  // for the audit entry of a refusal and the 403 detail; never a secret

  bool allowed() const { return decision == Decision::Allow; }
};

class Policy {
 public:
  static Verdict check(const Actor& actor, Action action, const Resource& resource);
};

}  // namespace confab::iam
