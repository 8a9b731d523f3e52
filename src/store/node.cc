// SPDX-License-Identifier: Apache-2.0
#include <confab/store/node.h>

#include <string_view>

namespace confab::store {
namespace {

constexpr std::string_view kSelect = "SELECT value FROM node_settings WHERE name = 'region'";
constexpr std::string_view kInsert =
    "INSERT INTO node_settings (name, value) VALUES ('region', ?1)";

}  // namespace

Result<std::string> claimRegion(Database& db, const std::string& region) {
  auto select = db.prepare(kSelect);
  if (!select.ok()) {
    return select.error();
  }
  auto row = select->step();
  if (!row.ok()) {
    return row.error();
  }
  if (*row) {
    return select->text(0);
  }
  auto insert = db.prepare(kInsert);
  if (!insert.ok()) {
    return insert.error();
  }
  CONFAB_TRY(insert->bind(1, region).run());
  return region;
}

}  // namespace confab::store
