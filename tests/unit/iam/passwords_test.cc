// SPDX-License-Identifier: Apache-2.0
#include <confab/core/random.h>
#include <confab/iam/passwords.h>

#include <gtest/gtest.h>

#include <set>

namespace confab::iam {
namespace {

// Small parameters keep the test fast; the code path is the same as with the defaults.
constexpr Argon2Params kFast{8192, 1, 1};

TEST(PasswordHasher, HashesVerifyAndEverySaltIsNew) {
  PasswordHasher h(kFast, core::CsprngRandom::instance());
  auto a = h.hash("Correct-horse-9!");
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->rfind("$argon2id$v=19$m=8192,t=1,p=1$", 0), 0u) << *a;
  auto ok = h.verify("Correct-horse-9!", *a);
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE(ok->match);
  EXPECT_FALSE(ok->needs_rehash);
  for (const char* wrong : {"correct-horse-9!", "Correct-horse-9", "Correct-horse-9!!", ""}) {
    auto no = h.verify(wrong, *a);
    ASSERT_TRUE(no.ok()) << wrong;
    EXPECT_FALSE(no->match) << wrong;
  }
  std::set<std::string> hashes;
  for (int i = 0; i < 4; ++i) {
    hashes.insert(*h.hash("same password"));
  }
  EXPECT_EQ(hashes.size(), 4u);  // a fresh salt each time
  // The password never appears in what is stored.
  EXPECT_EQ(a->find("Correct-horse"), std::string::npos);
}

TEST(PasswordHasher, AHashUnderOtherParametersStillVerifiesAndAsksForARehash) {
  auto& random = core::CsprngRandom::instance();
  PasswordHasher old_params(kFast, random);
  auto stored = old_params.hash("Summer-breeze-42");
  ASSERT_TRUE(stored.ok());
  PasswordHasher now(Argon2Params{16384, 2, 1}, random);
  auto v = now.verify("Summer-breeze-42", *stored);
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->match);
  EXPECT_TRUE(v->needs_rehash);
  auto wrong = now.verify("Summer-breeze-43", *stored);
  ASSERT_TRUE(wrong.ok());
  EXPECT_FALSE(wrong->match);
  EXPECT_FALSE(wrong->needs_rehash);  // nothing to upgrade for a failed sign-in
  auto params = argon2ParamsOf(*stored);
  ASSERT_TRUE(params);
  EXPECT_EQ(params->memory_kib, 8192);
  EXPECT_EQ(params->iterations, 1);
  EXPECT_EQ(params->parallelism, 1);
}

TEST(PasswordHasher, BoundsAndCorruptRecordsAreClearErrors) {
  PasswordHasher h(kFast, core::CsprngRandom::instance());
  auto empty = h.hash("");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().field, "password");
  auto huge = h.hash(std::string(PasswordHasher::kMaxPasswordBytes + 1, 'a'));
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.error().code, ErrorCode::InvalidArgument);
  EXPECT_TRUE(h.hash(std::string(PasswordHasher::kMaxPasswordBytes, 'a')).ok());
  auto good = *h.hash("Valid-pass-1");
  for (std::string bad :
       {std::string("plaintext"), std::string("$argon2i$v=19$m=8192,t=1,p=1$c2FsdA$aGFzaA"),
        std::string("$argon2id$v=16$m=8192,t=1,p=1$c2FsdA$aGFzaA"),
        std::string("$argon2id$v=19$t=1,m=8192,p=1$c2FsdA$aGFzaA"),
        std::string("$argon2id$v=19$m=8192,t=1,p=1$!!!$aGFzaA"), good.substr(0, good.size() - 5)}) {
    auto v = h.verify("Valid-pass-1", bad);
    if (v.ok()) {
      EXPECT_FALSE(v->match) << bad;  // a cut hash may parse, but never matches
    } else {
      EXPECT_EQ(v.error().field, "password_hash") << bad;
    }
  }
  EXPECT_FALSE(argon2ParamsOf("$argon2id$v=19$m=0,t=1,p=1$x$y"));
}

}  // namespace
}  // namespace confab::iam
