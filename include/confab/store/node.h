// SPDX-License-Identifier: Apache-2.0
#pragma once
// Node settings: facts recorded once in a data directory's database, so that a data directory
// cannot silently change its nature under a new configuration.

#include <confab/core/result.h>
#include <confab/store/database.h>

#include <string>

namespace confab::store {

// The storage region this database belongs to: on the first call `region` is recorded and
// returned; afterwards the recorded one is returned, whatever `region` says (the caller compares).
// Inside a write transaction.
Result<std::string> claimRegion(Database& db, const std::string& region);

}  // namespace confab::store
