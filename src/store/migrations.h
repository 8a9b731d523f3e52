// SPDX-License-Identifier: Apache-2.0
#pragma once
// The schema steps embedded from src/store/migrations/*.sql, and the code that applies them.

#include <confab/core/result.h>
#include <confab/store/database.h>

#include <string>
#include <vector>

namespace confab::store {

struct Migration {
  int number;        // from the file-name prefix; contiguous from 1
  const char* name;  // file name
  const char* sql;
};

const std::vector<Migration>& embeddedMigrations();

// Applies every migration above PRAGMA user_version, each in its own transaction together with
// the new user_version. Returns the resulting version. Refuses a database newer than `migrations`.
Result<int> migrate(Database& db, const std::vector<Migration>& migrations);

}  // namespace confab::store
