// SPDX-License-Identifier: Apache-2.0
#pragma once
// The confabd command line: parses flags, loads the configuration and runs the daemon or the
// requested action. Exit codes: 0 ok, 1 runtime failure, 2 bad configuration, bad key or usage.
//
//   confabd [--config FILE] [--data-dir DIR] [--master-key-file FILE] [...]   run the daemon
//   confabd rekey --new-master-key-file NEW [--config F] [--data-dir D] [--master-key-file OLD]
//   confabd rekey --database [--config F] [--data-dir D] [--master-key-file K]
//   confabd backup FILE [--config F] [--data-dir D] [--master-key-file K]
//   confabd restore FILE [--config F] [--data-dir D] [--master-key-file K] [--shred-ledger L]...

#include <confab/config/config.h>

#include <string>
#include <vector>

namespace confab::store {
struct KeyHierarchy;
}

namespace confab::app {

int runCommandLine(int argc, char** argv);

// `confabd rekey --database`: re-encrypts the database of config.server.data_dir under a new
// database key (KeyStore::stageDatabaseKey / commitDatabaseKey), with confabd stopped. `keys` is
// open (the key store lock is held). Returns the exit code and has printed what happened.
// Defined, like the other maintenance commands, in src/app/maintenance.cc.
int rekeyDatabase(const config::Config& config, store::KeyHierarchy& keys);

// `confabd backup FILE`: store::writeBackup beside a running daemon (the keys are read without
// taking the key store lock).
int backupCommand(const config::Config& config, const std::string& file);
// `confabd restore FILE`: store::restoreBackup into config.server.data_dir with `backup_key_file`
// (empty: the configured master key). Every id in the ledgers beside that key and beside the
// configured key, and in `shred_ledgers`, stays destroyed; at least one ledger must exist.
int restoreCommand(const config::Config& config, const std::string& file,
                   const std::string& backup_key_file,
                   const std::vector<std::string>& shred_ledgers);

// The exit code for an error from the store: 2 for a bad key, file or input, 1 otherwise.
int exitCodeFor(const Error& e);

}  // namespace confab::app
