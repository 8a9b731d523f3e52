// SPDX-License-Identifier: Apache-2.0
#include <confab/core/crypto.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/pem.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <new>
#include <stdexcept>

namespace confab::core::crypto {

void wipe(void* p, std::size_t n) {
  OPENSSL_cleanse(p, n);
}

SecretKey::SecretKey(Bytes raw) {
  if (raw.size() != kKeyBytes) {
    throw std::invalid_argument("SecretKey needs 32 bytes");
  }
  std::memcpy(bytes_.data(), raw.data(), kKeyBytes);
}

bool SecretKey::operator==(const SecretKey& other) const {
  return equal(bytes_, other.bytes_);
}

struct Aes256Gcm::Ctx {
  EVP_CIPHER_CTX* enc = nullptr;
  EVP_CIPHER_CTX* dec = nullptr;
  EVP_CIPHER* cipher = nullptr;
};

Aes256Gcm::Aes256Gcm() : ctx_(new Ctx) {
  // Fetch the implementation once; later inits pass a null cipher and only re-key.
  ctx_->cipher = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  ctx_->enc = EVP_CIPHER_CTX_new();
  ctx_->dec = EVP_CIPHER_CTX_new();
  if (!ctx_->cipher || !ctx_->enc || !ctx_->dec ||
      EVP_EncryptInit_ex2(ctx_->enc, ctx_->cipher, nullptr, nullptr, nullptr) != 1 ||
      EVP_DecryptInit_ex2(ctx_->dec, ctx_->cipher, nullptr, nullptr, nullptr) != 1) {
    throw std::runtime_error("OpenSSL has no AES-256-GCM");
  }
}

Aes256Gcm::~Aes256Gcm() {
  EVP_CIPHER_CTX_free(ctx_->enc);
  EVP_CIPHER_CTX_free(ctx_->dec);
  EVP_CIPHER_free(ctx_->cipher);
  delete ctx_;
}

namespace {

// One GCM operation on a context whose cipher is set. A null key keeps the key schedule the
// context already holds and only sets the nonce (and the direction).
bool gcmSeal(EVP_CIPHER_CTX* c, const std::uint8_t* key, Bytes nonce, Bytes aad, Bytes in,
             MutableBytes out, MutableBytes tag) {
  if (nonce.size() != kNonceBytes || tag.size() != kTagBytes || out.size() != in.size()) {
    return false;
  }
  int len = 0;
  if (EVP_EncryptInit_ex2(c, nullptr, key, nonce.data(), nullptr) != 1) {
    return false;
  }
  if (!aad.empty() && EVP_EncryptUpdate(c, nullptr, &len, aad.data(), int(aad.size())) != 1) {
    return false;
  }
  if (!in.empty() && EVP_EncryptUpdate(c, out.data(), &len, in.data(), int(in.size())) != 1) {
    return false;
  }
  if (EVP_EncryptFinal_ex(c, out.data() + in.size(), &len) != 1) {
    return false;
  }
  return EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, int(kTagBytes), tag.data()) == 1;
}

bool gcmOpen(EVP_CIPHER_CTX* c, const std::uint8_t* key, Bytes nonce, Bytes aad, Bytes in,
             MutableBytes out, Bytes tag) {
  if (nonce.size() != kNonceBytes || tag.size() != kTagBytes || out.size() != in.size()) {
    return false;
  }
  int len = 0;
  if (EVP_DecryptInit_ex2(c, nullptr, key, nonce.data(), nullptr) != 1) {
    return false;
  }
  if (!aad.empty() && EVP_DecryptUpdate(c, nullptr, &len, aad.data(), int(aad.size())) != 1) {
    return false;
  }
  if (!in.empty() && EVP_DecryptUpdate(c, out.data(), &len, in.data(), int(in.size())) != 1) {
    return false;
  }
  if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, int(kTagBytes),
                          const_cast<std::uint8_t*>(tag.data())) != 1) {
    return false;
  }
  return EVP_DecryptFinal_ex(c, out.data() + in.size(), &len) == 1;
}

// The AES-256-GCM implementation, fetched once per process.
EVP_CIPHER* gcmCipher() {
  static EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  return cipher;
}

}  // namespace

bool Aes256Gcm::seal(Bytes key, Bytes nonce, Bytes aad, Bytes in, MutableBytes out,
                     MutableBytes tag) {
  return key.size() == kKeyBytes && gcmSeal(ctx_->enc, key.data(), nonce, aad, in, out, tag);
}

bool Aes256Gcm::open(Bytes key, Bytes nonce, Bytes aad, Bytes in, MutableBytes out, Bytes tag) {
  return key.size() == kKeyBytes && gcmOpen(ctx_->dec, key.data(), nonce, aad, in, out, tag);
}

std::unique_ptr<Aes256GcmKey> Aes256GcmKey::create(Bytes key) noexcept {
  if (key.size() != kKeyBytes || !gcmCipher()) {
    return nullptr;
  }
  std::unique_ptr<Aes256GcmKey> self(new (std::nothrow) Aes256GcmKey);
  EVP_CIPHER_CTX* c = self ? EVP_CIPHER_CTX_new() : nullptr;
  if (!c) {
    return nullptr;
  }
  self->ctx_ = c;
  if (EVP_EncryptInit_ex2(c, gcmCipher(), key.data(), nullptr, nullptr) != 1) {
    return nullptr;
  }
  return self;
}

Aes256GcmKey::~Aes256GcmKey() {
  EVP_CIPHER_CTX_free(static_cast<EVP_CIPHER_CTX*>(ctx_));  // cleanses the key schedule
}

bool Aes256GcmKey::seal(Bytes nonce, Bytes aad, Bytes in, MutableBytes out,
                        MutableBytes tag) noexcept {
  return gcmSeal(static_cast<EVP_CIPHER_CTX*>(ctx_), nullptr, nonce, aad, in, out, tag);
}

bool Aes256GcmKey::open(Bytes nonce, Bytes aad, Bytes in, MutableBytes out, Bytes tag) noexcept {
  return gcmOpen(static_cast<EVP_CIPHER_CTX*>(ctx_), nullptr, nonce, aad, in, out, tag);
}

struct HkdfSha256::Ctx {
  EVP_MAC* mac = nullptr;
  EVP_MAC_CTX* ctx = nullptr;  // keyed with the PRK once; re-initialised without a key per block
};

HkdfSha256::HkdfSha256(Bytes prk) : ctx_(new Ctx) {
  ctx_->mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  ctx_->ctx = ctx_->mac ? EVP_MAC_CTX_new(ctx_->mac) : nullptr;
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_end()};
  if (!ctx_->ctx || EVP_MAC_init(ctx_->ctx, prk.data(), prk.size(), params) != 1) {
    EVP_MAC_CTX_free(ctx_->ctx);
    EVP_MAC_free(ctx_->mac);
    delete ctx_;
    throw std::runtime_error("OpenSSL has no HMAC-SHA256");
  }
}

HkdfSha256::~HkdfSha256() {
  EVP_MAC_CTX_free(ctx_->ctx);
  EVP_MAC_free(ctx_->mac);
  delete ctx_;
}

bool HkdfSha256::expand(Bytes info, MutableBytes out) {
  if (out.size() > 255 * 32) {
    return false;
  }
  std::uint8_t t[32];
  std::size_t produced = 0;
  for (std::uint8_t i = 1; produced < out.size(); ++i) {
    // T(i) = HMAC(PRK, T(i-1) | info | i). A null key restarts HMAC from the key schedule kept
    // in the context (no allocation, no re-keying).
    if (EVP_MAC_init(ctx_->ctx, nullptr, 0, nullptr) != 1 ||
        (i > 1 && EVP_MAC_update(ctx_->ctx, t, sizeof t) != 1) ||
        EVP_MAC_update(ctx_->ctx, info.data(), info.size()) != 1 ||
        EVP_MAC_update(ctx_->ctx, &i, 1) != 1) {
      return false;
    }
    std::size_t n = 0;
    if (EVP_MAC_final(ctx_->ctx, t, &n, sizeof t) != 1 || n != sizeof t) {
      return false;
    }
    std::size_t take = std::min(out.size() - produced, sizeof t);
    std::memcpy(out.data() + produced, t, take);
    produced += take;
  }
  wipe(t, sizeof t);
  return true;
}

std::unique_ptr<Ed25519Key> Ed25519Key::fromSeed(Bytes seed) noexcept {
  if (seed.size() != 32) {
    return nullptr;
  }
  std::unique_ptr<Ed25519Key> self(new (std::nothrow) Ed25519Key);
  if (!self) {
    return nullptr;
  }
  EVP_PKEY* k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed.data(), seed.size());
  self->pkey_ = k;
  std::size_t len = self->public_.size();
  if (!k || EVP_PKEY_get_raw_public_key(k, self->public_.data(), &len) != 1 || len != 32) {
    return nullptr;
  }
  return self;
}

Ed25519Key::~Ed25519Key() {
  EVP_PKEY_free(static_cast<EVP_PKEY*>(pkey_));
}

std::string Ed25519Key::publicKeyPem() const {
  BIO* bio = BIO_new(BIO_s_mem());
  std::string out;
  if (bio && PEM_write_bio_PUBKEY(bio, static_cast<EVP_PKEY*>(pkey_)) == 1) {
    char* data = nullptr;
    long n = BIO_get_mem_data(bio, &data);
    out.assign(data, static_cast<std::size_t>(n));
  }
  BIO_free(bio);
  return out;
}

std::optional<std::array<std::uint8_t, 32>> ed25519PublicKeyFromPem(std::string_view pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* key = bio ? PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr) : nullptr;
  BIO_free(bio);
  std::optional<std::array<std::uint8_t, 32>> out;
  if (key && EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519) {
    std::array<std::uint8_t, 32> raw{};
    std::size_t len = raw.size();
    if (EVP_PKEY_get_raw_public_key(key, raw.data(), &len) == 1 && len == raw.size()) {
      out = raw;
    }
  }
  EVP_PKEY_free(key);
  ERR_clear_error();
  return out;
}

std::optional<std::array<std::uint8_t, 64>> Ed25519Key::sign(Bytes message) const {
  std::array<std::uint8_t, 64> sig{};
  std::size_t len = sig.size();
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok =
      ctx &&
      EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, static_cast<EVP_PKEY*>(pkey_)) == 1 &&
      EVP_DigestSign(ctx, sig.data(), &len, message.data(), message.size()) == 1 &&
      len == sig.size();
  EVP_MD_CTX_free(ctx);
  if (!ok) {
    return std::nullopt;
  }
  return sig;
}

bool ed25519Verify(Bytes public_key, Bytes message, Bytes signature) {
  if (public_key.size() != 32 || signature.size() != 64) {
    return false;
  }
  EVP_PKEY* k =
      EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, public_key.data(), public_key.size());
  EVP_MD_CTX* ctx = k ? EVP_MD_CTX_new() : nullptr;
  bool ok = ctx && EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, k) == 1 &&
            EVP_DigestVerify(ctx, signature.data(), signature.size(), message.data(),
                             message.size()) == 1;
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(k);
  return ok;
}

std::array<std::uint8_t, 32> hmacSha256(Bytes key, Bytes data) {
  std::array<std::uint8_t, 32> out{};
  std::size_t n = 0;
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  EVP_MAC_CTX* ctx = mac ? EVP_MAC_CTX_new(mac) : nullptr;
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_end()};
  bool ok = ctx && EVP_MAC_init(ctx, key.data(), key.size(), params) == 1 &&
            EVP_MAC_update(ctx, data.data(), data.size()) == 1 &&
            EVP_MAC_final(ctx, out.data(), &n, out.size()) == 1;
  EVP_MAC_CTX_free(ctx);
  EVP_MAC_free(mac);
  if (!ok) {
    throw std::runtime_error("HMAC-SHA256 failed");
  }
  return out;
}

std::array<std::uint8_t, 32> sha256(Bytes data) {
  std::array<std::uint8_t, 32> out{};
  unsigned int n = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &n, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("SHA-256 failed");
  }
  return out;
}

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (!ctx_ || EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("SHA-256 failed");
  }
}

Sha256::~Sha256() {
  EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_));
}

void Sha256::update(Bytes data) {
  if (EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data.data(), data.size()) != 1) {
    throw std::runtime_error("SHA-256 failed");
  }
}

std::array<std::uint8_t, 32> Sha256::finish() {
  std::array<std::uint8_t, 32> out{};
  unsigned int n = 0;
  auto* c = static_cast<EVP_MD_CTX*>(ctx_);
  if (EVP_DigestFinal_ex(c, out.data(), &n) != 1 ||
      EVP_DigestInit_ex(c, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("SHA-256 failed");
  }
  return out;
}

bool equal(Bytes a, Bytes b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string toHex(Bytes data) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(data.size() * 2);
  for (auto b : data) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xf]);
  }
  return out;
}

std::optional<std::string> fromHex(std::string_view hex) {
  if (hex.size() % 2 != 0) {
    return std::nullopt;
  }
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9')
      return c - '0';
    if (c >= 'a' && c <= 'f')
      return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
      return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(hex.size() / 2);
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    int hi = nibble(hex[i]);
    int lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) {
      return std::nullopt;
    }
    out.push_back(static_cast<char>(hi << 4 | lo));
  }
  return out;
}

std::string toBase64(Bytes data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data.data(),
                          static_cast<int>(data.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::optional<std::string> fromBase64(std::string_view text) {
  if (text.size() % 4 != 0) {
    return std::nullopt;
  }
  for (char c : text) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/' || c == '=')) {
      return std::nullopt;
    }
  }
  std::string out(3 * (text.size() / 4), '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0) {
    return std::nullopt;
  }
  // EVP_DecodeBlock counts padding as zero bytes; drop them.
  std::size_t pad = 0;
  if (!text.empty() && text.back() == '=')
    ++pad;
  if (text.size() >= 2 && text[text.size() - 2] == '=')
    ++pad;
  out.resize(static_cast<std::size_t>(n) - pad);
  return out;
}

}  // namespace confab::core::crypto
