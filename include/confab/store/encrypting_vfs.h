// SPDX-License-Identifier: Apache-2.0
#pragma once
// EncryptingVfs: a SQLite VFS that seals every page of the main database, its WAL and its rollback
// journal with AES-256-GCM before it reaches the base VFS, and every temporary file with a
// throw-away key. The format is specified in docs/storage-format.md ("Database pages"):
//
//   page image (4096 bytes) = ciphertext (4064) || epoch (12) || counter (u32 BE) || tag (16)
//   subkey = HKDF-Expand(database key, "confab page v2" || epoch, 32)
//   nonce = 8 zero bytes || counter
//   AAD = kind (u32 BE: 1 database, 2 WAL, 3 journal, 4 temporary) || offset (u64 BE)
//
// Each instance draws a random epoch and numbers its writes under it (a new epoch every 2^32), so
// no (subkey, nonce) pair repeats; the 32 bytes live in the page's reserved area (Database::open
// sets reserve_bytes = 32). Open files keep the keyed contexts of the epochs they read.
// A page that fails authentication is reported as SQLITE_IOERR_DATA for that read, logged, and
// counted; the process carries on.
//
// One instance per database key, registered under its own name; pass name() as OpenOptions::vfs.
// The instance must outlive every connection opened through it. Thread-safe: each open file owns
// its cipher contexts.

#include <confab/core/crypto.h>
#include <confab/core/result.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

namespace confab::store {

inline constexpr int kPageBytes = 4096;
inline constexpr int kPageReserveBytes = 32;  // epoch (12) + counter (4) + GCM tag (16)

class EncryptingVfs {
 public:
  // Registers a VFS sealing with `database_key` on top of `base_vfs` (empty: SQLite's default).
  static Result<std::unique_ptr<EncryptingVfs>> create(const core::crypto::SecretKey& database_key,
                                                       const std::string& base_vfs = {});
  ~EncryptingVfs();
  EncryptingVfs(const EncryptingVfs&) = delete;
  EncryptingVfs& operator=(const EncryptingVfs&) = delete;

  const std::string& name() const { return name_; }
  // Pages and chunks that failed authentication since start-up.
  std::uint64_t corruptPages() const { return corrupt_.load(); }

  // Checks a database file before the store opens it, with a message an operator can act on:
  // Ok when the file is absent or empty (a new database) or when page 1 authenticates under this
  // VFS's key; FailedPrecondition when the file is a plaintext SQLite database or page 1 does not
  // authenticate (wrong database key, or a corrupt file).
  Status checkDatabaseFile(const std::string& path) const;

  struct Impl;

 private:
  EncryptingVfs() = default;
  std::string name_;
  std::unique_ptr<Impl> impl_;
  mutable std::atomic<std::uint64_t> corrupt_{0};
};

}  // namespace confab::store
