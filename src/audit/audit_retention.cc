// SPDX-License-Identifier: Apache-2.0
// The audit log's own retention: oldest entries first, one checkpointed segment at a time, so
// that what remains always starts right after a signed checkpoint (docs/audit.md, "Retention").
#include <confab/audit/audit_log.h>
#include <confab/core/log.h>

namespace confab::audit {
namespace {

constexpr std::string_view kAccountsFrom =
    "SELECT account_id FROM audit_heads WHERE account_id >= ?1 ORDER BY account_id";

constexpr std::string_view kFirstEntry =
    "SELECT seq FROM audit_entries WHERE account_id = ?1 ORDER BY seq LIMIT 1";

// The oldest checkpoint at or after the first remaining entry that is itself older than the
// limit: every entry it covers is older still (a checkpoint is signed after its entries).
constexpr std::string_view kOldCheckpoint = R"sql(
SELECT account_id, seq, hash, ts, key_id, signature FROM audit_checkpoints
WHERE account_id = ?1 AND seq >= ?2 AND ts < ?3 ORDER BY seq LIMIT 1)sql";

constexpr std::string_view kSegmentSize = R"sql(
SELECT count(*), coalesce(sum(length(actor_account) + length(actor_user) + length(real_account)
  + length(real_user) + length(client_address) + length(action) + length(target_type)
  + length(target_id) + length(outcome) + length(details) + length(prev_hash) + length(hash)
  + 24), 0)
FROM audit_entries WHERE account_id = ?1 AND seq <= ?2)sql";

constexpr std::string_view kDeleteEntries =
    "DELETE FROM audit_entries WHERE account_id = ?1 AND seq <= ?2";

// The checkpoint at the segment's end stays: the signed starting point of what remains.
constexpr std::string_view kDeleteCheckpoints =
    "DELETE FROM audit_checkpoints WHERE account_id = ?1 AND seq < ?2";

constexpr std::int64_t kDayMs = 24LL * 3600 * 1000;

class AuditRetentionJob final : public RetentionJob {
 public:
  explicit AuditRetentionJob(const AuditLog& log) : log_(log) {}
  std::string name() const override { return "audit"; }

  Result<Batch> runBatch(store::Database& db, std::int64_t now_ms, int limit) override {
    Batch batch;
    std::vector<std::string> accounts;
    {
      auto s = db.prepare(kAccountsFrom);
      if (!s.ok()) {
        return s.error();
      }
      s->bind(1, cursor_);
      CONFAB_TRY(
          s->forEachRow([&](const store::Statement& row) { accounts.push_back(row.text(0)); }));
    }
    std::int64_t removed = 0;
    for (const auto& account : accounts) {
      auto days = log_.retentionDays(db, account);
      if (!days.ok()) {
        return days.error();
      }
      // Segment after segment, oldest first, until nothing old enough is left or the batch is
      // full (the next batch resumes with this account).
      for (;;) {
        auto first = single(db, kFirstEntry, account, 0, 0, 1);
        if (!first.ok()) {
          return first.error();
        }
        if (*first == 0) {
          break;  // nothing stored (all removed, or never written)
        }
        auto end = oldCheckpoint(db, account, *first, now_ms - *days * kDayMs);
        if (!end.ok()) {
          return end.error();
        }
        if (*end == 0) {
          break;  // nothing old enough is covered by a valid signed checkpoint yet
        }
        auto size = db.prepare(kSegmentSize);
        if (!size.ok()) {
          return size.error();
        }
        size->bind(1, account).bind(2, *end);
        auto row = size->step();
        if (!row.ok()) {
          return row.error();
        }
        Removal r{size->int64(0), size->int64(1)};
        for (auto sql : {kDeleteEntries, kDeleteCheckpoints}) {
          auto del = db.prepare(sql);
          if (!del.ok()) {
            return del.error();
          }
          del->bind(1, account).bind(2, *end);
          CONFAB_TRY(del->run());
        }
        auto& total = batch.removed[account];
        total.items += r.items;
        total.bytes += r.bytes;
        total.through_seq = *end;
        removed += r.items;
        if (removed >= limit) {
          cursor_ = account;  // this account may have more segments: start the next batch here
          batch.more = true;
          return batch;
        }
      }
    }
    cursor_.clear();
    return batch;
  }

 private:
  // The first column of the first row (0 if none) of `sql` bound to (account, a[, b]).
  static Result<std::int64_t> single(store::Database& db, std::string_view sql,
                                     const std::string& account, std::int64_t a, std::int64_t b,
                                     int params) {
    auto s = db.prepare(sql);
    if (!s.ok()) {
      return s.error();
    }
    s->bind(1, account);
    if (params >= 2) {
      s->bind(2, a);
    }
    if (params >= 3) {
      s->bind(3, b);
    }
    auto row = s->step();
    if (!row.ok()) {
      return row.error();
    }
    return *row && !s->isNull(0) ? s->int64(0) : 0;
  }

  // The seq of the oldest checkpoint at or after `first` signed before `limit_ms`, if its
  // signature verifies; 0 when there is none. A checkpoint that does not verify is never acted
  // on: retention would otherwise delete what a forged row claims is old.
  Result<std::int64_t> oldCheckpoint(store::Database& db, const std::string& account,
                                     std::int64_t first, std::int64_t limit_ms) const {
    auto s = db.prepare(kOldCheckpoint);
    if (!s.ok()) {
      return s.error();
    }
    s->bind(1, account).bind(2, first).bind(3, limit_ms);
    auto row = s->step();
    if (!row.ok()) {
      return row.error();
    }
    if (!*row) {
      return std::int64_t{0};
    }
    Checkpoint c{s->text(0), s->int64(1), s->text(2), s->int64(3), s->text(4), s->text(5)};
    if (!log_.verifies(c)) {
      core::logger("retention")
          ->error(
              "audit retention: account {}'s checkpoint at entry {} has no valid signature; "
              "nothing of that chain is removed (run confabd audit verify)",
              account, c.seq);
      return std::int64_t{0};
    }
    return c.seq;
  }

  const AuditLog& log_;
  std::string cursor_;  // where the next batch resumes within one run
};

}  // namespace

std::unique_ptr<RetentionJob> makeAuditRetentionJob(const AuditLog& log) {
  return std::make_unique<AuditRetentionJob>(log);
}

}  // namespace confab::audit
