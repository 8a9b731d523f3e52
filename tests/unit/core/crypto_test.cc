// SPDX-License-Identifier: Apache-2.0
// The crypto primitives against known answers: RFC 5869's test case 1 for HKDF-Expand, and
// vectors computed independently with python3-cryptography for AES-256-GCM and our page label.
#include <confab/core/crypto.h>

#include <gtest/gtest.h>

#include <numeric>
#include <vector>

namespace confab::core::crypto {
namespace {

std::vector<std::uint8_t> hex(std::string_view h) {
  auto raw = fromHex(h);
  EXPECT_TRUE(raw.has_value()) << h;
  return {raw->begin(), raw->end()};
}

std::vector<std::uint8_t> iota(std::size_t n) {
  std::vector<std::uint8_t> v(n);
  std::iota(v.begin(), v.end(), std::uint8_t{0});
  return v;
}

TEST(Crypto, HkdfExpandMatchesRfc5869TestCase1AndRepeats) {
  auto prk = hex("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5");
  auto info = hex("f0f1f2f3f4f5f6f7f8f9");
  HkdfSha256 h(prk);
  std::vector<std::uint8_t> okm(42);
  // Twice: the context is reused from its stored key schedule.
  for (int round = 0; round < 2; ++round) {
    ASSERT_TRUE(h.expand(info, okm));
    EXPECT_EQ(toHex(okm),
              "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208"
              "d5b887185865");
  }
  std::vector<std::uint8_t> pageInfo(asBytes("confab page v2").begin(),
                                     asBytes("confab page v2").end());
  auto salt = iota(12);
  pageInfo.insert(pageInfo.end(), salt.begin(), salt.end());
  HkdfSha256 page(iota(32));
  std::vector<std::uint8_t> subkey(32);
  ASSERT_TRUE(page.expand(pageInfo, subkey));
  EXPECT_EQ(toHex(subkey), "e43c114afdc2c9e379ce563e51d2f1dbfbb303a506786e00e5fac1b850e8012d");
}

// The keyed context gives Aes256Gcm's output for its key, in both directions and in any order,
// without re-keying.
TEST(Crypto, AesGcmKeySealsAndOpensLikeAes256Gcm) {
  auto key = iota(32);
  auto aad = asBytes("aad");
  auto plain = asBytes("confab plaintext");
  auto k = Aes256GcmKey::create(key);
  ASSERT_TRUE(k);
  EXPECT_FALSE(Aes256GcmKey::create(iota(16)));
  Aes256Gcm gcm;
  for (std::uint8_t n = 0; n < 3; ++n) {
    std::vector<std::uint8_t> nonce(12, n);
    std::vector<std::uint8_t> c1(plain.size()), t1(16), c2(plain.size()), t2(16);
    ASSERT_TRUE(k->seal(nonce, aad, plain, c1, t1));
    ASSERT_TRUE(gcm.seal(key, nonce, aad, plain, c2, t2));
    EXPECT_EQ(toHex(c1) + toHex(t1), toHex(c2) + toHex(t2));
    std::vector<std::uint8_t> back(plain.size());
    ASSERT_TRUE(k->open(nonce, aad, c1, back, t1));
    EXPECT_EQ(std::string(back.begin(), back.end()), "confab plaintext");
    t1[0] ^= 1;
    EXPECT_FALSE(k->open(nonce, aad, c1, back, t1));
  }
  std::vector<std::uint8_t> nonce = iota(12);
  std::vector<std::uint8_t> c(plain.size()), t(16);
  ASSERT_TRUE(k->seal(nonce, aad, plain, c, t));
  EXPECT_EQ(toHex(c) + toHex(t),
            "246db87da487e26be120fee5c58c001911b1757d6101242064d581aaf1843583");
}

// RFC 8032 §7.1, TEST 1 (the empty message), and tampering.
TEST(Crypto, Ed25519MatchesRfc8032AndRejectsForgeries) {
  auto seed = hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
  auto key = Ed25519Key::fromSeed(seed);
  ASSERT_TRUE(key);
  EXPECT_EQ(toHex(key->publicKey()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  auto sig = key->sign({});
  ASSERT_TRUE(sig);
  EXPECT_EQ(toHex(*sig),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39"
            "701cf9b46bd25bf5f0595bbe24655141438e7a100b");
  EXPECT_TRUE(ed25519Verify(key->publicKey(), {}, *sig));
  auto msg = asBytes("checkpoint");
  auto s2 = key->sign(msg);
  ASSERT_TRUE(s2);
  EXPECT_TRUE(ed25519Verify(key->publicKey(), msg, *s2));
  EXPECT_FALSE(ed25519Verify(key->publicKey(), asBytes("checkpoinT"), *s2));
  (*s2)[10] ^= 1;
  EXPECT_FALSE(ed25519Verify(key->publicKey(), msg, *s2));
  EXPECT_EQ(key->publicKeyPem().rfind("-----BEGIN PUBLIC KEY-----\n", 0), 0u);
  EXPECT_FALSE(Ed25519Key::fromSeed(iota(31)));
}

TEST(Crypto, Ed25519PublicKeyPemRoundTripsAndAnythingElseIsRefused) {
  auto key = Ed25519Key::fromSeed(iota(32));
  ASSERT_TRUE(key);
  auto back = ed25519PublicKeyFromPem(key->publicKeyPem());
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, key->publicKey());
  EXPECT_FALSE(ed25519PublicKeyFromPem(""));
  EXPECT_FALSE(
      ed25519PublicKeyFromPem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"));
  // A P-256 public key is a PUBLIC KEY block too, but not an Ed25519 one.
  constexpr std::string_view kP256 =
      "-----BEGIN PUBLIC KEY-----\n"
      "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEHlQQg3vlMTpDp3duQL4iBaLvse9k\n"
      "FBfhQnq08VPlv23U5NaWi1e1rbfl7L2P6sCHEBZsqdtFc+7Qa44/Ivxm8A==\n"
      "-----END PUBLIC KEY-----\n";
  EXPECT_FALSE(ed25519PublicKeyFromPem(kP256));
}

TEST(Crypto, AesGcmSealsLikeAnIndependentImplementationAndRejectsTampering) {
  auto key = iota(32);
  auto nonce = iota(12);
  auto aad = asBytes("aad");
  auto plain = asBytes("confab plaintext");
  std::vector<std::uint8_t> cipher(plain.size());
  std::vector<std::uint8_t> tag(16);
  Aes256Gcm gcm;
  ASSERT_TRUE(gcm.seal(key, nonce, aad, plain, cipher, tag));
  EXPECT_EQ(toHex(cipher) + toHex(tag),
            "246db87da487e26be120fee5c58c001911b1757d6101242064d581aaf1843583");
  std::vector<std::uint8_t> back(plain.size());
  ASSERT_TRUE(gcm.open(key, nonce, aad, cipher, back, tag));
  EXPECT_TRUE(equal(back, plain));
  cipher[3] ^= 1;
  EXPECT_FALSE(gcm.open(key, nonce, aad, cipher, back, tag));
  cipher[3] ^= 1;
  EXPECT_FALSE(gcm.open(key, nonce, asBytes("other"), cipher, back, tag));
  auto otherKey = iota(32);
  otherKey[0] = 1;
  EXPECT_FALSE(gcm.open(otherKey, nonce, aad, cipher, back, tag));
}

TEST(Crypto, EncodingsRoundTripAndRefuseGarbage) {
  auto data = iota(40);
  EXPECT_EQ(*fromHex(toHex(data)), std::string(data.begin(), data.end()));
  EXPECT_EQ(*fromBase64(toBase64(data)), std::string(data.begin(), data.end()));
  EXPECT_EQ(toBase64(asBytes("ab")), "YWI=");
  EXPECT_EQ(*fromBase64("YWI="), "ab");
  EXPECT_FALSE(fromHex("abc").has_value());
  EXPECT_FALSE(fromHex("zz").has_value());
  EXPECT_FALSE(fromBase64("YWI").has_value());
  EXPECT_FALSE(fromBase64("Y!I=").has_value());
  Sha256 streaming;
  streaming.update(asBytes("hello "));
  streaming.update(asBytes("world"));
  EXPECT_EQ(toHex(streaming.finish()), toHex(sha256(asBytes("hello world"))));
  EXPECT_EQ(toHex(sha256(asBytes(""))),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

}  // namespace
}  // namespace confab::core::crypto
