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
//   confabd audit verify [--account A]... [--log FILE]... [--public-key PEM] [--config F] [...]
//   confabd audit public-key [--config F] [--data-dir D] [--master-key-file K]
//   confabd retention run [--config F] [--data-dir D] [--master-key-file K]

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

// `confabd audit verify`: every chain of the data directory (or the accounts named) against its
// stored checkpoints and those in the log files; with `public_key_file`, only that key is
// trusted. Read-only, so confabd may run. Exit 0 when every chain holds, 1 when one does not
// (the first broken link of each is printed), 2 for bad input or keys.
int auditVerifyCommand(const config::Config& config, const std::vector<std::string>& accounts,
                       const std::vector<std::string>& log_files,
                       const std::string& public_key_file);
// `confabd audit public-key`: the PEM of the checkpoint key on stdout.
int auditPublicKeyCommand(const config::Config& config);
// `confabd retention run`: every retention job to completion, with confabd stopped (it holds the
// key store lock; a running daemon is asked with SIGUSR1 instead). Progress per batch.
int retentionRunCommand(const config::Config& config);

// The exit code for an error from the store: 2 for a bad key, file or input, 1 otherwise.
int exitCodeFor(const Error& e);

}  // namespace confab::app
