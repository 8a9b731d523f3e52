// SPDX-License-Identifier: Apache-2.0
#pragma once
// The key hierarchy (docs/storage-format.md, "Keys"):
//
//   master key (a file outside the data directory, mode 0600)
//     └─ wraps ─▶ database key   (one; the page-encrypting VFS seals every page with subkeys of it)
//     └─ wraps ─▶ data keys      (one per account; the blob store seals that account's files)
//
// The wrapped keys live in <data_dir>/keystore.json, rewritten atomically on every change, so
// re-wrapping under a new master key is one small file write. Destroying an account's data key
// (crypto-shredding) removes it from the key store and records its id in two shred ledgers — one
// in the key store, one beside the master key file — so restoring an older backup cannot bring the
// key back. Thread-safe.

#include <confab/core/crypto.h>
#include <confab/core/random.h>
#include <confab/core/result.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace confab::store {

// A data key as the blob store uses it: the id written into each blob's header, and the key.
struct DataKey {
  std::string id;  // 32 lower-case hex digits, never reused
  core::crypto::SecretKey key;
};

// What the blob store needs from the key hierarchy; KeyStore implements it, tests may fake it.
class DataKeys {
 public:
  virtual ~DataKeys() = default;
  // The account's current data key, created (and persisted) on first use.
  virtual Result<DataKey> keyForWriting(const std::string& account_id) = 0;
  // A key by id, for reading. NotFound with message "data key <id> was destroyed" when the
  // key was shredded, "unknown data key <id>" when it never existed here.
  virtual Result<DataKey> keyById(const std::string& key_id) = 0;
};

}  // namespace confab::store
