// SPDX-License-Identifier: Apache-2.0
#include <confab/core/log.h>

#include "store/migrations.h"

namespace confab::store {

Result<int> migrate(Database& db, const std::vector<Migration>& migrations) {
  auto current = db.userVersion();
  if (!current.ok()) {
    return current.error();
  }
  int version = static_cast<int>(*current);
  int latest = 0;
  for (std::size_t i = 0; i < migrations.size(); ++i) {
    if (migrations[i].number != static_cast<int>(i) + 1) {
      return makeError(ErrorCode::Internal,
                       std::string("migrations are not numbered 1..N: ") + migrations[i].name);
    }
    latest = migrations[i].number;
  }
  if (version > latest) {
    return makeError(ErrorCode::FailedPrecondition,
                     "the database has schema version " + std::to_string(version) +
                         " but this confabd knows only up to " + std::to_string(latest) +
                         "; run a newer confabd");
  }
  auto log = core::logger("store");
  for (const auto& m : migrations) {
    if (m.number <= version) {
      continue;
    }
    CONFAB_TRY(db.exec("BEGIN IMMEDIATE"));
    auto applied = db.exec(m.sql);
    if (applied.ok()) {
      applied = db.exec("PRAGMA user_version = " + std::to_string(m.number));
    }
    if (applied.ok()) {
      applied = db.exec("COMMIT");
    }
    if (!applied.ok()) {
      (void)db.exec("ROLLBACK");
      return makeError(ErrorCode::Internal,
                       std::string("migration ") + m.name + " failed: " + applied.error().message);
    }
    log->info("applied migration {}", m.name);
    version = m.number;
  }
  return version;
}

}  // namespace confab::store
