// SPDX-License-Identifier: Apache-2.0
#include <confab/core/log.h>
#include <confab/store/shred.h>

#include <vector>

namespace confab::store {

Result<ShredReport> shredAccountFiles(Store& store, KeyStore& keys, BlobStore& blobs,
                                      const std::string& account_id,
                                      std::chrono::system_clock::time_point now, int batch) {
  if (account_id.empty()) {
    return makeError(ErrorCode::InvalidArgument, "account id must not be empty", "account_id");
  }
  ShredReport report;
  auto before = keys.destroyedIds().size();
  CONFAB_TRY(keys.destroyAccountKeys(account_id, now));
  report.keys_destroyed = std::int64_t(keys.destroyedIds().size() - before);

  struct Row {
    std::string id;
    std::int64_t bytes;
  };
  for (;;) {
    // One batch: forget the rows in a transaction, then delete the files (a crash between the
    // two leaves unrecorded files, which the start-up sweep removes).
    auto rows = store.writeNow<std::vector<Row>>([&](Database& db) -> Result<std::vector<Row>> {
      auto q =
          db.prepare("SELECT id, stored_bytes FROM blobs WHERE account_id = ? ORDER BY id LIMIT ?");
      if (!q.ok()) {
        return q.error();
      }
      q->bind(1, account_id).bind(2, std::int64_t(batch));
      std::vector<Row> out;
      for (;;) {
        auto row = q->step();
        if (!row.ok()) {
          return row.error();
        }
        if (!*row) {
          break;
        }
        out.push_back({q->text(0), q->int64(1)});
      }
      for (const auto& r : out) {
        CONFAB_TRY(forgetBlob(db, account_id, r.id));
      }
      return out;
    });
    if (!rows.ok()) {
      return rows.error();
    }
    for (const auto& r : *rows) {
      CONFAB_TRY(blobs.removeFile(r.id));
      ++report.files_deleted;
      report.bytes_deleted += r.bytes;
    }
    if (rows->size() < std::size_t(batch)) {
      break;
    }
  }
  core::logger("store")->info("account {}: {} data key(s) destroyed, {} file(s) ({} bytes) deleted",
                              account_id, report.keys_destroyed, report.files_deleted,
                              report.bytes_deleted);
  return report;
}

}  // namespace confab::store
