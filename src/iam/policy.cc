// SPDX-License-Identifier: Apache-2.0
#include <confab/iam/policy.h>

#include <array>
#include <utility>

namespace confab::iam {
namespace {

constexpr std::array<std::pair<Role, std::string_view>, 4> kRoles{{
    {Role::PartnerAdmin, "partner_admin"},
    {Role::CustomerAdmin, "customer_admin"},
    {Role::User, "user"},
    {Role::Guest, "guest"},
}};

bool isAdmin(Role role) {
  return role == Role::PartnerAdmin || role == Role::CustomerAdmin;
}

}  // namespace

std::string_view roleName(Role role) {
  for (const auto& [r, name] : kRoles) {
    if (r == role) {
      return name;
    }
  }
  return "unknown";
}

std::optional<Role> roleFromName(std::string_view name) {
  for (const auto& [r, n] : kRoles) {
    if (n == name) {
      return r;
    }
  }
  return std::nullopt;
}

std::string_view actionName(Action action) {
  switch (action) {
    case Action::AuditRead:
      return "audit.read";
    case Action::AuditExport:
      return "audit.exported";
    case Action::AuditSettingsRead:
      return "audit.settings_read";
    case Action::AuditSettingsUpdate:
      return "audit.settings_updated";
    case Action::AuditKeyRead:
      return "audit.key_read";
  }
  return "unknown";
}

Verdict Policy::check(const Actor& actor, Action action, const Resource& resource) {
  // The tenant boundary comes first, for every action: nothing crosses accounts. A Partner Admin
  // reaches inside a customer account only through assume-role, whose effective account is the
  // customer's — so the same comparison covers it.
  if (actor.account_id.empty() || resource.account_id != actor.account_id) {
    return {Decision::NotFound, "outside the actor's account"};
  }
  // Assume-role grants Customer Admin and nothing else (SPEC.md §1: no escalation, no chaining).
  if (actor.assumed() && (actor.role != Role::CustomerAdmin || actor.real_account_id.empty() ||
                          actor.real_user_id.empty())) {
    return {Decision::Forbidden, "an assumed role is Customer Admin only"};
  }
  switch (action) {
    case Action::AuditRead:
    case Action::AuditExport:
    case Action::AuditSettingsRead:
    case Action::AuditSettingsUpdate:
    case Action::AuditKeyRead:
      // SPEC.md §7: administrators read the audit log — each the log of its own account.
      if (isAdmin(actor.role)) {
        return {Decision::Allow, {}};
      }
      return {Decision::Forbidden, "the audit log is for the account's administrators"};
  }
  return {Decision::Forbidden, "unknown action"};
}

}  // namespace confab::iam
