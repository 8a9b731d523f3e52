// SPDX-License-Identifier: Apache-2.0
#pragma once
// Crypto-shredding an account's files: what account termination does to storage (the identity
// issue's termination job calls it). The account's data keys are destroyed first — recorded in
// the shred ledger beside the master key, then removed from the key store — so from that moment
// every file of the account is unreadable, wherever a copy of it lies (a backup, a disk image).
// Then the files are deleted and their rows removed, in bounded batches. Idempotent: running it
// again after a crash finishes what is left.

#include <confab/core/result.h>
#include <confab/store/blob_store.h>
#include <confab/store/keys.h>
#include <confab/store/store.h>

#include <chrono>
#include <cstdint>
#include <string>

namespace confab::store {

struct ShredReport {
  std::int64_t keys_destroyed = 0;  // data keys of the account that were still live
  std::int64_t files_deleted = 0;
  std::int64_t bytes_deleted = 0;  // stored bytes of the deleted files
};

// Synchronous (file I/O and fsync): call from a store or maintenance thread, never an I/O thread.
Result<ShredReport> shredAccountFiles(Store& store, KeyStore& keys, BlobStore& blobs,
                                      const std::string& account_id,
                                      std::chrono::system_clock::time_point now, int batch = 500);

}  // namespace confab::store
