// SPDX-License-Identifier: Apache-2.0
// The access matrix of the audit actions, walked whole: every role, inside and outside its
// account, directly and under assume-role.
#include <confab/iam/policy.h>

#include <gtest/gtest.h>

namespace confab::iam {
namespace {

constexpr Action kAuditActions[] = {Action::AuditRead, Action::AuditExport,
                                    Action::AuditSettingsRead, Action::AuditSettingsUpdate,
                                    Action::AuditKeyRead};

Actor actor(std::string account, Role role) {
  Actor a;
  a.account_id = std::move(account);
  a.user_id = "u1";
  a.role = role;
  return a;
}

TEST(Policy, AuditIsForTheAdministratorsOfTheAccountAlone) {
  for (Action action : kAuditActions) {
    SCOPED_TRACE(std::string(actionName(action)));
    for (Role role : {Role::PartnerAdmin, Role::CustomerAdmin}) {
      EXPECT_TRUE(Policy::check(actor("acme", role), action, {"acme"}).allowed());
    }
    for (Role role : {Role::User, Role::Guest}) {
      auto v = Policy::check(actor("acme", role), action, {"acme"});
      EXPECT_EQ(v.decision, Decision::Forbidden);
      EXPECT_FALSE(v.reason.empty());
    }
    // The tenant boundary answers NotFound for every role, before the role is considered.
    for (Role role : {Role::PartnerAdmin, Role::CustomerAdmin, Role::User, Role::Guest}) {
      EXPECT_EQ(Policy::check(actor("acme", role), action, {"globex"}).decision,
                Decision::NotFound);
    }
    // No account at all is nobody's.
    EXPECT_EQ(Policy::check(actor("", Role::CustomerAdmin), action, {""}).decision,
              Decision::NotFound);
  }
}

TEST(Policy, APartnerAdminActsInACustomerOnlyAsAnAssumedCustomerAdmin) {
  // Directly, a partner's customer is another account.
  EXPECT_EQ(
      Policy::check(actor("partner1", Role::PartnerAdmin), Action::AuditRead, {"acme"}).decision,
      Decision::NotFound);
  Actor assumed = actor("acme", Role::CustomerAdmin);
  assumed.real_account_id = "partner1";
  assumed.real_user_id = "pat";
  ASSERT_TRUE(assumed.assumed());
  for (Action action : kAuditActions) {
    EXPECT_TRUE(Policy::check(assumed, action, {"acme"}).allowed());
    EXPECT_EQ(Policy::check(assumed, action, {"globex"}).decision, Decision::NotFound);
  }
  // An assumed role is never more (or other) than Customer Admin, and names who assumed it.
  for (Role role : {Role::PartnerAdmin, Role::User, Role::Guest}) {
    Actor odd = assumed;
    odd.role = role;
    EXPECT_EQ(Policy::check(odd, Action::AuditRead, {"acme"}).decision, Decision::Forbidden);
  }
  Actor anonymous = assumed;
  anonymous.real_user_id.clear();
  EXPECT_EQ(Policy::check(anonymous, Action::AuditRead, {"acme"}).decision, Decision::Forbidden);
}

TEST(Policy, RoleNamesRoundTrip) {
  for (Role role : {Role::PartnerAdmin, Role::CustomerAdmin, Role::User, Role::Guest}) {
    EXPECT_EQ(roleFromName(roleName(role)), role);
  }
  EXPECT_FALSE(roleFromName("admin"));
  EXPECT_EQ(actionName(Action::AuditExport), "audit.exported");
}

}  // namespace
}  // namespace confab::iam
