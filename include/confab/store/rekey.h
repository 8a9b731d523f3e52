// SPDX-License-Identifier: Apache-2.0
#pragma once
// Re-encrypting the database under a new database key (`confabd rekey --database`), and
// finishing one that a crash interrupted. The daemon must be stopped: the key store's lock,
// held by the caller, guarantees it.
//
// The steps, each durable before the next:
//   1. a new database key is staged in the key store as pending;
//   2. the database is copied page by page (SQLite's online backup) into confab.db.rekey,
//      sealed under the pending key, and checked with PRAGMA integrity_check;
//   3. confab.db.rekey replaces confab.db (rename);
//   4. the pending key becomes the database key.
// After a crash, finishInterruptedRekey() decides by page 1 of confab.db which key it is sealed
// with: the pending one (step 3 happened: commit it) or the old one (drop the pending key and the
// partial copy). Either way no committed data is lost.

#include <confab/core/result.h>
#include <confab/store/keys.h>

#include <cstdint>
#include <filesystem>

namespace confab::store {

struct RekeyReport {
  std::int64_t pages = 0;
  std::int64_t bytes = 0;
  std::string old_key_id;
  std::string new_key_id;
};

Result<RekeyReport> rekeyDatabase(const std::filesystem::path& data_dir, KeyStore& keys);

// Ok (and does nothing) when no re-encryption was pending.
Status finishInterruptedRekey(const std::filesystem::path& data_dir, KeyStore& keys);

}  // namespace confab::store
