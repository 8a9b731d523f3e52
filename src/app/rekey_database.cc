// SPDX-License-Identifier: Apache-2.0
// Placeholder so that confabd links: the re-encryption of the database under a new database key
// replaces this file.
#include <confab/app/cli.h>
#include <confab/store/keys.h>

#include <iostream>

namespace confab::app {

int rekeyDatabase(const config::Config& /*config*/, store::KeyHierarchy& /*keys*/) {
  std::cerr << "rekey --database: not built yet\n";
  return 1;
}

}  // namespace confab::app
