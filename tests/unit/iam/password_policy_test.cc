// SPDX-License-Identifier: Apache-2.0
// SPEC.md §2's password rules, with the real john-data list and cracklib dictionary.
#include <confab/core/random.h>
#include <confab/iam/password_policy.h>

#include <gtest/gtest.h>

#include <set>

namespace confab::iam {
namespace {

class PasswordPolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto p = PasswordPolicy::load({});
    ASSERT_TRUE(p.ok()) << p.error().message;
    policy_ = std::move(*p);
  }
  std::string ruleOf(std::string_view pw, const PersonalInfo& who = {}) {
    auto s = policy_->check(pw, who);
    return s.ok() ? "ok" : s.error().field;
  }
  std::unique_ptr<PasswordPolicy> policy_;
};

TEST_F(PasswordPolicyTest, TheCompositionRulesOfTheSpec) {
  EXPECT_EQ(ruleOf("Zq7#vbnt"), "ok");                      // 8 characters, one of each
  EXPECT_EQ(ruleOf("Zq7#vbn"), "password.length");          // 7
  EXPECT_EQ(ruleOf("Zq7#" + std::string(124, 'v')), "ok");  // 128
  EXPECT_EQ(ruleOf("Zq7#" + std::string(125, 'v')), "password.length");  // 129: never truncated
  EXPECT_EQ(ruleOf("Zq7*vbnt"), "password.special");  // '*' is not in @ ! # $ % & _ = +
  EXPECT_EQ(ruleOf("Zqx#vbnt"), "password.digit");
  EXPECT_EQ(ruleOf("zq7#vbnt"), "password.upper");
  EXPECT_EQ(ruleOf("ZQ7#VBNT"), "password.lower");
  EXPECT_EQ(ruleOf("Zq7#vb\tnt"), "password.characters");
  EXPECT_EQ(ruleOf(std::string("Zq7#vb\xff"
                               "nt")),
            "password.characters");  // not UTF-8
  // Unicode letters count by category; length is in code points after NFKC.
  EXPECT_EQ(ruleOf("Äpfel7#ßx"), "ok");
  EXPECT_EQ(ruleOf("ÄÖÜ7#ßäö"), "ok");
  EXPECT_EQ(ruleOf("Ωmega7#w"), "ok");
  EXPECT_EQ(ruleOf("Zq7#vbn\xef\xac\x81"), "ok");  // "ﬁ" is two characters after NFKC: 9
}

TEST_F(PasswordPolicyTest, CommonAndBreachedPasswordsAreRefusedUnderTheirDisguises) {
  for (const char* weak : {"Password1!", "P@ssw0rd1", "Welcome1!", "Qwerty123!", "Dragon2024#",
                           "!!Monkey99=", "Sunshine#1", "Ｐａｓｓｗｏｒｄ1!"}) {
    EXPECT_EQ(ruleOf(weak), "password.common") << weak;
  }
  EXPECT_EQ(ruleOf("Vx8#kq2mTz"), "ok");
  EXPECT_EQ(ruleOf("Orbit-Mantle-Quill7#"), "ok");
  EXPECT_EQ(normalisedForCommonCheck("P@ssw0rd1"), "password");
  EXPECT_EQ(normalisedForCommonCheck("!!Welcome2024"), "welcome");
}

TEST_F(PasswordPolicyTest, ThePasswordMustNotBeBuiltOnTheUsersName) {
  PersonalInfo ann{"annika", "annika.berg@example.com", "Annika Berg"};
  EXPECT_EQ(ruleOf("Annika#2026x", ann), "password.personal");
  EXPECT_EQ(ruleOf("xx@Annika.berg7", ann), "password.personal");
  EXPECT_EQ(ruleOf("Vx8#kq2mTz", ann), "ok");
}

TEST_F(PasswordPolicyTest, GeneratedPasswordsPassAndDiffer) {
  std::set<std::string> seen;
  for (int i = 0; i < 20; ++i) {
    auto pw = policy_->generate(core::CsprngRandom::instance());
    EXPECT_EQ(pw.size(), 20u);
    EXPECT_TRUE(policy_->check(pw).ok()) << pw;
    seen.insert(pw);
  }
  EXPECT_EQ(seen.size(), 20u);
}

TEST(PasswordPolicyLoad, AMissingListIsAClearError) {
  PasswordRules rules;
  rules.common_list = "/nonexistent/password.lst";
  auto p = PasswordPolicy::load(rules);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code, ErrorCode::FailedPrecondition);
  EXPECT_NE(p.error().message.find("john-data"), std::string::npos);
  rules.reject_common = false;
  EXPECT_TRUE(PasswordPolicy::load(rules).ok());
}

}  // namespace
}  // namespace confab::iam
