// SPDX-License-Identifier: Apache-2.0
#pragma once
// Crypto primitives over OpenSSL: AES-256-GCM, HKDF-Expand/HMAC with SHA-256, and the encodings
// keys travel in. Everything that encrypts at rest (the page VFS, the blob store, the key store)
// builds on these and on nothing else. Objects are not thread-safe: hot paths keep one per thread
// or per open file. Nothing here logs; key material never leaves through an error message.

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace confab::core::crypto {

inline constexpr std::size_t kKeyBytes = 32;    // AES-256
inline constexpr std::size_t kNonceBytes = 12;  // GCM's 96-bit IV
inline constexpr std::size_t kTagBytes = 16;    // GCM's full 128-bit tag

using Bytes = std::span<const std::uint8_t>;
using MutableBytes = std::span<std::uint8_t>;

// Overwrites memory in a way the compiler may not elide.
void wipe(void* p, std::size_t n);

// 32 bytes of key material, wiped when destroyed.
class SecretKey {
 public:
  SecretKey() { bytes_.fill(0); }
  explicit SecretKey(Bytes raw);  // raw.size() must be kKeyBytes
  SecretKey(const SecretKey& other) = default;
  SecretKey& operator=(const SecretKey& other) = default;
  ~SecretKey() { wipe(bytes_.data(), bytes_.size()); }
  Bytes bytes() const { return bytes_; }
  MutableBytes mutableBytes() { return bytes_; }
  bool operator==(const SecretKey& other) const;

 private:
  std::array<std::uint8_t, kKeyBytes> bytes_;
};

// A reusable AES-256-GCM context. seal() and open() take a key each call; re-keying an existing
// context costs only the key schedule, so per-page subkeys stay cheap.
class Aes256Gcm {
 public:
  Aes256Gcm();
  ~Aes256Gcm();
  Aes256Gcm(const Aes256Gcm&) = delete;
  Aes256Gcm& operator=(const Aes256Gcm&) = delete;

  // out.size() == in.size(); in and out may be the same buffer. False only on an OpenSSL failure.
  bool seal(Bytes key, Bytes nonce, Bytes aad, Bytes in, MutableBytes out, MutableBytes tag);
  // False when the tag does not authenticate (wrong key, tampered bytes, wrong associated data);
  // `out` then holds garbage the caller must not use.
  bool open(Bytes key, Bytes nonce, Bytes aad, Bytes in, MutableBytes out, Bytes tag);

 private:
  struct Ctx;
  Ctx* ctx_;
};

// AES-256-GCM under one fixed key: the key schedule (AES round keys, GHASH key) is computed once
// and each seal() or open() only sets the nonce. For a key used many times, such as a page epoch's
// subkey; Aes256Gcm is the one for a different key per call. One object serves both directions.
class Aes256GcmKey {
 public:
  // Null on an OpenSSL failure (no AES-256-GCM, no memory) or when key.size() != kKeyBytes.
  static std::unique_ptr<Aes256GcmKey> create(Bytes key) noexcept;
  ~Aes256GcmKey();
  Aes256GcmKey(const Aes256GcmKey&) = delete;
  Aes256GcmKey& operator=(const Aes256GcmKey&) = delete;

  // As Aes256Gcm::seal and Aes256Gcm::open, with the key given to create().
  bool seal(Bytes nonce, Bytes aad, Bytes in, MutableBytes out, MutableBytes tag) noexcept;
  bool open(Bytes nonce, Bytes aad, Bytes in, MutableBytes out, Bytes tag) noexcept;

 private:
  Aes256GcmKey() = default;
  void* ctx_ = nullptr;  // EVP_CIPHER_CTX
};

// HKDF-Expand (RFC 5869 §2.3) with SHA-256 and a fixed pseudorandom key. Our PRKs are uniformly
// random 256-bit keys, so the Extract step is skipped, as RFC 5869 §3.3 allows. The HMAC key
// schedule is computed once; expand() reuses it.
class HkdfSha256 {
 public:
  explicit HkdfSha256(Bytes prk);
  ~HkdfSha256();
  HkdfSha256(const HkdfSha256&) = delete;
  HkdfSha256& operator=(const HkdfSha256&) = delete;
  // out.size() <= 255 * 32. False only on an OpenSSL failure.
  bool expand(Bytes info, MutableBytes out);

 private:
  struct Ctx;
  Ctx* ctx_;
};

// SHA-256 over a stream of updates.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(Bytes data);
  std::array<std::uint8_t, 32> finish();  // the object is then reset for a new stream

 private:
  void* ctx_;
};

// Ed25519 signatures (RFC 8032) over OpenSSL. A key made from a 32-byte seed; thread-safe (each
// sign() uses its own OpenSSL context).
class Ed25519Key {
 public:
  // Null on an OpenSSL failure or when seed.size() != 32.
  static std::unique_ptr<Ed25519Key> fromSeed(Bytes seed) noexcept;
  ~Ed25519Key();
  Ed25519Key(const Ed25519Key&) = delete;
  Ed25519Key& operator=(const Ed25519Key&) = delete;

  const std::array<std::uint8_t, 32>& publicKey() const { return public_; }
  // The public key as a PEM "PUBLIC KEY" block (SubjectPublicKeyInfo, RFC 8410).
  std::string publicKeyPem() const;
  // Empty only on an OpenSSL failure.
  std::optional<std::array<std::uint8_t, 64>> sign(Bytes message) const;

 private:
  Ed25519Key() = default;
  void* pkey_ = nullptr;  // EVP_PKEY
  std::array<std::uint8_t, 32> public_{};
};

// True when `signature` (64 bytes) is a valid Ed25519 signature of `message` under `public_key`
// (32 bytes).
bool ed25519Verify(Bytes public_key, Bytes message, Bytes signature);

// The raw 32-byte key of an Ed25519 "PUBLIC KEY" PEM block (what publicKeyPem() writes); nullopt
// for anything else (another algorithm, a private key, garbage).
std::optional<std::array<std::uint8_t, 32>> ed25519PublicKeyFromPem(std::string_view pem);

// HMAC-SHA256(key, data).
std::array<std::uint8_t, 32> hmacSha256(Bytes key, Bytes data);
std::array<std::uint8_t, 32> sha256(Bytes data);

// Constant-time comparison of equal-length buffers (false if the lengths differ).
bool equal(Bytes a, Bytes b);

std::string toHex(Bytes data);
std::optional<std::string> fromHex(std::string_view hex);  // nullopt unless valid even-length hex
std::string toBase64(Bytes data);                          // standard alphabet, padded
std::optional<std::string> fromBase64(std::string_view text);

inline Bytes asBytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

}  // namespace confab::core::crypto
