// SPDX-License-Identifier: Apache-2.0
// The directory: accounts placed in their region, partners owning customers, users with the roles
// their account allows, ids never reused, and every change in the audit log of its account.
#include <confab/audit/audit_log.h>
#include <confab/core/clock.h>
#include <confab/core/random.h>
#include <confab/iam/directory.h>
#include <confab/iam/passwords.h>

#include <gtest/gtest.h>

#include <set>

#include "test_support.h"

namespace confab::iam {
namespace {

using confab::testing::TestDir;

class DirectoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = confab::testing::openTestStore(dir_.path());
    ASSERT_TRUE(store_);
    std::array<std::uint8_t, 32> seed{};
    core::CsprngRandom::instance().fill(seed);
    key_ = core::crypto::Ed25519Key::fromSeed(seed);
    audit_ = std::make_unique<audit::AuditLog>(key_, clock_);
    directory_ =
        std::make_unique<Directory>(config_, *audit_, clock_, core::CsprngRandom::instance());
    hash_ =
        *PasswordHasher(Argon2Params{8192, 1, 1}, core::CsprngRandom::instance()).hash("Pw-1x!yz");
  }

  template <typename T>
  Result<T> write(const std::function<Result<T>(store::Database&)>& job) {
    return store_->writeNow<T>(job);
  }
  Result<Account> create(NewAccount a) {
    return write<Account>(
        [&](store::Database& db) { return directory_->createAccount(db, a, who_); });
  }
  Result<User> add(NewUser u) {
    if (u.password_hash.empty()) {
      u.password_hash = hash_;
    }
    return write<User>([&](store::Database& db) { return directory_->createUser(db, u, who_); });
  }
  std::vector<std::string> actions(const std::string& account) {
    auto p = write<audit::Page>([&](store::Database& db) {
      return audit_->query(db, audit::Query{.account_id = account, .limit = 1000});
    });
    std::vector<std::string> out;
    for (const auto& r : p.ok() ? p->records : std::vector<audit::Record>{}) {
      out.push_back(r.action + " " + r.target_id);
    }
    return out;
  }

  TestDir dir_{"directory"};
  config::Config config_;  // region.serves = eu, the default country map
  core::ManualClock clock_;
  std::shared_ptr<const core::crypto::Ed25519Key> key_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<audit::AuditLog> audit_;
  std::unique_ptr<Directory> directory_;
  std::string hash_;
  ChangeContext who_{{"", "", "", ""}, {"", 0}};
};

TEST_F(DirectoryTest, AccountsGetTheirRegionAndOnlyThisNodesRegionIsServed) {
  auto partner = create({AccountKind::Partner, "", "Reseller GmbH", "de"});
  ASSERT_TRUE(partner.ok()) << partner.error().message;
  EXPECT_EQ(partner->country, "DE");
  EXPECT_EQ(partner->region, "eu");
  EXPECT_EQ(partner->id.rfind("a_", 0), 0u);
  auto customer = create({AccountKind::Customer, partner->id, "Acme SAS", "FR"});
  ASSERT_TRUE(customer.ok()) << customer.error().message;
  EXPECT_EQ(customer->partner_id, partner->id);
  // A Canadian account belongs to the us region, which this node does not serve.
  auto canada = create({AccountKind::Customer, partner->id, "Maple Inc", "CA"});
  ASSERT_FALSE(canada.ok());
  EXPECT_EQ(canada.error().code, ErrorCode::FailedPrecondition);
  EXPECT_EQ(canada.error().field, "country");
  EXPECT_EQ(canada.error().message,
            "accounts in CA belong to region us, and this node serves region eu");
  auto nowhere = create({AccountKind::Customer, partner->id, "Far Away", "JP"});
  ASSERT_FALSE(nowhere.ok());
  EXPECT_EQ(nowhere.error().field, "country");
  // A customer needs a partner that exists and is a partner.
  auto orphan = create({AccountKind::Customer, "a_nobody", "Orphan", "DE"});
  ASSERT_FALSE(orphan.ok());
  EXPECT_EQ(orphan.error().field, "partner_id");
  auto nested = create({AccountKind::Customer, customer->id, "Nested", "DE"});
  ASSERT_FALSE(nested.ok());
  EXPECT_EQ(nested.error().code, ErrorCode::NotFound);
  for (auto [name, field] : {std::pair<std::string, std::string>{"", "name"},
                             {std::string(201, 'x'), "name"},
                             {"bad\nname", "name"}}) {
    auto bad = create({AccountKind::Partner, "", name, "DE"});
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().field, field);
  }
  // Recorded in the new account's log, and a customer's creation in its partner's too.
  EXPECT_EQ(actions(partner->id), (std::vector<std::string>{"account.created " + partner->id,
                                                            "account.created " + customer->id}));
  EXPECT_EQ(actions(customer->id), (std::vector<std::string>{"account.created " + customer->id}));
  // Refused creations changed nothing.
  auto count = write<std::int64_t>(
      [](store::Database& db) { return db.queryInt("SELECT count(*) FROM accounts"); });
  EXPECT_EQ(*count, 2);
}

TEST_F(DirectoryTest, UsersHaveTheRolesTheirAccountAllowsAndUniqueNames) {
  auto partner = *create({AccountKind::Partner, "", "Reseller", "NL"});
  auto customer = *create({AccountKind::Customer, partner.id, "Acme", "NL"});
  auto admin = add({partner.id, "Pat", "pat@reseller.example", "Pat", Role::PartnerAdmin});
  ASSERT_TRUE(admin.ok()) << admin.error().message;
  EXPECT_EQ(admin->username, "pat");
  EXPECT_TRUE(admin->must_change_password);
  auto ann = add({customer.id, "ann", "ann@acme.example", "Ann", Role::CustomerAdmin});
  ASSERT_TRUE(ann.ok());
  for (auto [account, role] : {std::pair{customer.id, Role::PartnerAdmin},
                               {partner.id, Role::CustomerAdmin},
                               {customer.id, Role::Guest}}) {
    auto bad = add({account, "x" + std::string(roleName(role)), "x@y.example", "X", role});
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().field, "role");
  }
  auto twice = add({customer.id, "ANN", "other@acme.example", "Other Ann", Role::User});
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.error().code, ErrorCode::AlreadyExists);
  // The same name in another account is another user.
  EXPECT_TRUE(add({partner.id, "ann", "ann@reseller.example", "Ann", Role::User}).ok());
  for (auto [field, user] :
       {std::pair<std::string, NewUser>{"username", {customer.id, "a b", "a@b.c", "", Role::User}},
        {"email", {customer.id, "bob", "bob", "", Role::User}},
        {"email", {customer.id, "bob", "a@b@c", "", Role::User}},
        {"account_id", {"a_nope", "bob", "bob@x.example", "", Role::User}},
        {"password_hash", {customer.id, "bob", "bob@x.example", "", Role::User, "secret"}}}) {
    auto bad = add(user);
    ASSERT_FALSE(bad.ok()) << field;
    EXPECT_EQ(bad.error().field, field);
  }
  // Lookups name the account: another account's user is not found.
  auto found =
      write<User>([&](store::Database& db) { return directory_->user(db, customer.id, ann->id); });
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->role, Role::CustomerAdmin);
  EXPECT_EQ(found->password_hash, hash_);
  auto elsewhere =
      write<User>([&](store::Database& db) { return directory_->user(db, partner.id, ann->id); });
  ASSERT_FALSE(elsewhere.ok());
  EXPECT_EQ(elsewhere.error().code, ErrorCode::NotFound);
  EXPECT_EQ(actions(customer.id).back(), "user.created " + ann->id);
}

TEST_F(DirectoryTest, IdsAreRandomAndDistinct) {
  auto partner = *create({AccountKind::Partner, "", "Reseller", "SE"});
  std::set<std::string> ids;
  for (int i = 0; i < 50; ++i) {
    auto u = add({partner.id, "user" + std::to_string(i), "u@x.example", "", Role::User});
    ASSERT_TRUE(u.ok());
    EXPECT_EQ(u->id.size(), 2u + 26u);
    ids.insert(u->id);
  }
  EXPECT_EQ(ids.size(), 50u);
}

}  // namespace
}  // namespace confab::iam
