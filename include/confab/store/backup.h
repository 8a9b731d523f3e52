// SPDX-License-Identifier: Apache-2.0
#pragma once
// Backup and restore of a data directory, still encrypted (docs/operations.md, "Backup and
// restore"; the archive layout is in docs/storage-format.md, "Backup archives").
//
// A backup is one POSIX tar file: keystore.json, confab.db (a consistent snapshot taken with
// SQLite's online backup API through the encrypting VFS, so its pages are sealed under the same
// database key), every blob file the snapshot refers to, and last confab-backup.json, a manifest
// with the size and SHA-256 of every entry. Nothing in it is plaintext; it is as useless without
// the master key as the data directory itself. Backups run beside a live daemon.
//
// Restore goes the other way into an empty data directory with the daemon stopped: every entry is
// checked against the manifest, the master key must open the key store, the snapshot must pass
// PRAGMA integrity_check, and every data key listed in the shred ledger beside the master key is
// destroyed again, its files left out and its blob rows removed, so an older backup never brings
// back what was crypto-shredded after it was taken.

#include <confab/core/random.h>
#include <confab/core/result.h>
#include <confab/store/keys.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace confab::store {

struct BackupReport {
  std::int64_t database_bytes = 0;
  std::int64_t blobs = 0;
  std::int64_t blob_bytes = 0;
  // Blobs the snapshot listed whose files were deleted before they could be copied (a delete
  // that committed after the snapshot); the restored database will not find them.
  std::vector<std::string> vanished_blobs;
  std::int64_t archive_bytes = 0;
};

// Writes the backup of `data_dir` (whose keys `keys` holds) to `archive`, atomically: the file
// appears complete (mode 0600) or not at all. Errors: InvalidArgument when `archive` lies inside
// the data directory or exists already; Internal on I/O or SQLite failures.
Result<BackupReport> writeBackup(const std::filesystem::path& data_dir, KeyStore& keys,
                                 const std::filesystem::path& archive);

struct RestoreReport {
  std::int64_t database_bytes = 0;
  std::int64_t blobs = 0;
  std::int64_t blob_bytes = 0;
  std::vector<std::string> shredded_keys;  // data keys the ledger destroyed again
  std::int64_t shredded_blobs = 0;         // files left out because their key was shredded
};

// Restores `archive` into `data_dir`, which must hold no key store, database, WAL or blob files
// (created if missing). `master` must open the archive's key store; every id in any of
// `shred_ledgers` (one destroyed data key id per line; each file must be readable) is destroyed
// again; at least one ledger is required (an empty file when no account was ever terminated).
// Errors: FailedPrecondition for a wrong master key (the key store's message), no ledger,
// a data directory in use or not empty, or an archive that is not a Confab backup, is damaged
// (an entry's size or SHA-256 differs from the manifest), or fails the integrity check; the data
// directory is left as it was.
Result<RestoreReport> restoreBackup(const std::filesystem::path& archive,
                                    const std::filesystem::path& data_dir,
                                    const core::crypto::SecretKey& master,
                                    const std::vector<std::filesystem::path>& shred_ledgers,
                                    core::Random& random);

}  // namespace confab::store
