// SPDX-License-Identifier: Apache-2.0
#pragma once
// The confabd command line: parses flags, loads the configuration and runs the daemon or the
// requested action. Exit codes: 0 ok, 1 runtime failure, 2 bad configuration, bad key or usage.
//
//   confabd [--config FILE] [--data-dir DIR] [--master-key-file FILE] [...]   run the daemon
//   confabd rekey --new-master-key-file NEW [--config F] [--data-dir D] [--master-key-file OLD]
//   confabd rekey --database [--config F] [--data-dir D] [--master-key-file K]

#include <confab/config/config.h>

namespace confab::store {
struct KeyHierarchy;
}

namespace confab::app {

int runCommandLine(int argc, char** argv);

// `confabd rekey --database`: re-encrypts the database of config.server.data_dir under a new
// database key (KeyStore::stageDatabaseKey / commitDatabaseKey), with confabd stopped. `keys` is
// open (the key store lock is held). Returns the exit code and has printed what happened.
// Defined in src/app/rekey_database.cc.
int rekeyDatabase(const config::Config& config, store::KeyHierarchy& keys);

}  // namespace confab::app
