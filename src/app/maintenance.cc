// SPDX-License-Identifier: Apache-2.0
// The offline and online maintenance commands of the storage layer: rekey --database, backup and
// restore. Each prints what it did (and what the operator does next) and returns an exit code.
#include <confab/app/cli.h>
#include <confab/app/daemon.h>
#include <confab/core/random.h>
#include <confab/store/backup.h>
#include <confab/store/keys.h>
#include <confab/store/rekey.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <vector>

namespace confab::app {

int exitCodeFor(const Error& e) {
  return e.code == ErrorCode::FailedPrecondition || e.code == ErrorCode::InvalidArgument
             ? kExitBadConfig
             : kExitFailure;
}

int rekeyDatabase(const config::Config& config, store::KeyHierarchy& keys) {
  auto r = store::rekeyDatabase(config.server.data_dir, *keys.keys);
  if (!r.ok()) {
    std::cerr << "confabd rekey --database: " << r.error().message << "\n";
    return exitCodeFor(r.error());
  }
  std::cout << "confabd rekey --database: re-encrypted " << r->pages << " pages (" << r->bytes
            << " bytes) under database key " << r->new_key_id << "; key " << r->old_key_id
            << " is forgotten.\n"
            << "Backups made before now are still sealed with the old database key, which their "
               "own keystore.json carries.\n";
  return kExitOk;
}

int backupCommand(const config::Config& config, const std::string& file) {
  // Online: the key store lock belongs to a running daemon, so the keys are read without it.
  auto hierarchy = store::openKeyHierarchy(config, core::CsprngRandom::instance(), false, nullptr,
                                           /*read_only=*/true);
  if (!hierarchy.ok()) {
    std::cerr << "confabd backup: " << hierarchy.error().message << "\n";
    return exitCodeFor(hierarchy.error());
  }
  auto r = store::writeBackup(config.server.data_dir, *hierarchy->keys, file);
  if (!r.ok()) {
    std::cerr << "confabd backup: " << r.error().message << "\n";
    return exitCodeFor(r.error());
  }
  std::cout << "confabd backup: wrote " << file << " (" << r->archive_bytes << " bytes): database "
            << r->database_bytes << " bytes, " << r->blobs << " blob file(s), " << r->blob_bytes
            << " bytes; everything in it is still encrypted.\n"
            << "It opens only with master key " << hierarchy->keys->masterKeyId() << " ("
            << hierarchy->master_key_path.string()
            << "): keep a copy of that key, separately from the backup.\n";
  if (!r->vanished_blobs.empty()) {
    std::cout << "  " << r->vanished_blobs.size()
              << " blob file(s) were deleted while the backup ran and are not in it.\n";
  }
  return kExitOk;
}

int restoreCommand(const config::Config& config, const std::string& file,
                   const std::string& backup_key_file,
                   const std::vector<std::string>& shred_ledgers) {
  // The deployment's key (configured, or the embedded default) and the backup's (if given).
  std::filesystem::path configured = config.master_key_file;
  if (configured.empty()) {
    auto d = store::defaultMasterKeyPath(config.server.data_dir);
    if (d.ok()) {
      configured = *d;
    }
  }
  std::filesystem::path key_path =
      backup_key_file.empty() ? configured : std::filesystem::path(backup_key_file);
  if (key_path.empty()) {
    std::cerr << "confabd restore: no master key: give --master-key-file (the key the backup was "
                 "made with)\n";
    return kExitBadConfig;
  }
  auto master = store::loadMasterKey(key_path.string());
  if (!master.ok()) {
    std::cerr << "confabd restore: " << master.error().message
              << " (give the key the backup was made with: --master-key-file)\n";
    return kExitBadConfig;
  }
  // Shredded keys must stay shredded, whichever key file the backup needs: read the ledger beside
  // it, the one beside the deployment's key (after a rekey they differ), and any named ones.
  std::vector<std::filesystem::path> ledgers(shred_ledgers.begin(), shred_ledgers.end());
  std::error_code ec;
  for (const auto& k : {key_path, configured}) {
    auto l = std::filesystem::path(k.string() + ".shredded");
    if (!k.empty() && std::filesystem::exists(l, ec) &&
        std::find(ledgers.begin(), ledgers.end(), l) == ledgers.end()) {
      ledgers.push_back(l);
    }
  }
  auto r = store::restoreBackup(file, config.server.data_dir, *master, ledgers,
                                core::CsprngRandom::instance());
  if (!r.ok()) {
    std::cerr << "confabd restore: " << r.error().message << "\n";
    return exitCodeFor(r.error());
  }
  std::cout << "confabd restore: restored " << file << " into " << config.server.data_dir
            << ": database " << r->database_bytes << " bytes, " << r->blobs << " blob file(s), "
            << r->blob_bytes << " bytes.\n";
  if (!r->shredded_keys.empty()) {
    std::cout << "  " << r->shredded_keys.size()
              << " data key(s) had been destroyed after this backup was made; their "
              << r->shredded_blobs << " file(s) were left out and stay unreadable.\n";
  }
  std::cout << "Start confabd with the same master key file (" << key_path.string() << ").\n";
  return kExitOk;
}

}  // namespace confab::app
