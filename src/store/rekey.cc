// SPDX-License-Identifier: Apache-2.0
#include <confab/core/log.h>
#include <confab/store/database.h>
#include <confab/store/encrypting_vfs.h>
#include <confab/store/rekey.h>

#include "store/key_files.h"

namespace confab::store {

namespace fs = std::filesystem;

namespace {

constexpr char kDatabase[] = "confab.db";
constexpr char kRekeyCopy[] = "confab.db.rekey";

void removeDatabaseFiles(const fs::path& db) {
  std::error_code ec;
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    fs::remove(db.string() + suffix, ec);
  }
}

}  // namespace

Result<RekeyReport> rekeyDatabase(const fs::path& data_dir, KeyStore& keys) {
  auto log = core::logger("store");
  CONFAB_TRY(finishInterruptedRekey(data_dir, keys));
  auto db_path = data_dir / kDatabase;
  auto copy_path = data_dir / kRekeyCopy;
  std::error_code ec;
  if (!fs::exists(db_path, ec)) {
    return makeError(ErrorCode::FailedPrecondition, "no database in " + data_dir.string());
  }
  RekeyReport report;
  report.old_key_id = keys.databaseKeyId();
  auto old_vfs = EncryptingVfs::create(keys.databaseKey());
  if (!old_vfs.ok()) {
    return old_vfs.error();
  }
  CONFAB_TRY((*old_vfs)->checkDatabaseFile(db_path.string()));
  removeDatabaseFiles(copy_path);
  auto staged = keys.stageDatabaseKey();
  if (!staged.ok()) {
    return staged.error();
  }
  report.new_key_id = keys.pendingDatabaseKeyId().value_or("");
  auto new_vfs = EncryptingVfs::create(*staged);
  if (!new_vfs.ok()) {
    return new_vfs.error();
  }
  {
    OpenOptions src;
    src.path = db_path.string();
    src.vfs = (*old_vfs)->name();
    auto from = Database::open(src);
    if (!from.ok()) {
      return from.error();
    }
    OpenOptions dst;
    dst.path = copy_path.string();
    dst.vfs = (*new_vfs)->name();
    dst.reserve_bytes = kPageReserveBytes;
    auto to = Database::open(dst);
    if (!to.ok()) {
      return to.error();
    }
    auto pages = (*from)->copyTo(**to);
    if (!pages.ok()) {
      return pages.error();
    }
    report.pages = *pages;
    if (auto ok = (*to)->checkIntegrity(); !ok.ok()) {
      return makeError(ErrorCode::Internal, "the re-encrypted copy fails " + ok.error().message);
    }
    CONFAB_TRY((*to)->exec("PRAGMA wal_checkpoint(TRUNCATE)"));
    // Fold the old WAL into the old file too, so nothing outside confab.db is left behind.
    CONFAB_TRY((*from)->exec("PRAGMA wal_checkpoint(TRUNCATE)"));
  }
  report.bytes = std::int64_t(fs::file_size(copy_path, ec));
  for (const char* suffix : {"-wal", "-shm"}) {
    fs::remove(db_path.string() + suffix, ec);
    fs::remove(copy_path.string() + suffix, ec);
  }
  if (::rename(copy_path.c_str(), db_path.c_str()) != 0) {
    return makeError(ErrorCode::Internal,
                     "cannot move " + copy_path.string() + " into place: " + std::strerror(errno));
  }
  key_files::syncDirectory(data_dir);
  CONFAB_TRY(keys.commitDatabaseKey());
  log->info("database re-encrypted: {} pages under database key {} (was {})", report.pages,
            report.new_key_id, report.old_key_id);
  return report;
}

Status finishInterruptedRekey(const fs::path& data_dir, KeyStore& keys) {
  auto pending = keys.pendingDatabaseKey();
  if (!pending) {
    return {};
  }
  auto log = core::logger("store");
  auto db_path = (data_dir / kDatabase).string();
  auto vfs = EncryptingVfs::create(*pending);
  if (!vfs.ok()) {
    return vfs.error();
  }
  std::error_code ec;
  if (fs::exists(db_path, ec) && (*vfs)->checkDatabaseFile(db_path).ok()) {
    log->warn("finishing an interrupted re-encryption: {} is sealed with the new database key",
              db_path);
    removeDatabaseFiles(data_dir / kRekeyCopy);
    return keys.commitDatabaseKey();
  }
  log->warn("an interrupted re-encryption left {} under the old key; discarding the partial copy",
            db_path);
  removeDatabaseFiles(data_dir / kRekeyCopy);
  return keys.dropPendingDatabaseKey();
}

}  // namespace confab::store
