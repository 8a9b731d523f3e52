// SPDX-License-Identifier: Apache-2.0
// The retention scheduler with an injected clock: what is older than its limit disappears — rows
// and their blob files — and what is newer stays; every removal is reported in each account's
// audit trail; a run killed half-way (kill -9 between a batch's commit and the removal of its
// files) is finished by the next run into a consistent state; and the audit log's own retention
// leaves a chain that still verifies from its signed starting point.
#include <confab/audit/audit_log.h>
#include <confab/audit/retention.h>
#include <confab/core/crypto.h>
#include <confab/core/random.h>
#include <confab/store/blob_store.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <sys/wait.h>

#include "test_support.h"

namespace confab::audit {
namespace {

using confab::testing::TestDir;
namespace crypto = core::crypto;
namespace fs = std::filesystem;

constexpr std::int64_t kDayMs = 24LL * 3600 * 1000;

class OneDataKey final : public store::DataKeys {
 public:
  OneDataKey() {
    key_.id = std::string(32, 'a');
    core::CsprngRandom::instance().fill(key_.key.mutableBytes());
  }
  Result<store::DataKey> keyForWriting(const std::string&) override { return key_; }
  Result<store::DataKey> keyById(const std::string& id) override {
    if (id != key_.id) {
      return makeError(ErrorCode::NotFound, "unknown data key " + id);
    }
    return key_;
  }

 private:
  store::DataKey key_;
};

// A job over a table of items, each with a blob file, kept `max_age_ms`: the shape the messaging
// and meetings jobs will have.
class ItemsJob final : public RetentionJob {
 public:
  explicit ItemsJob(std::int64_t max_age_ms) : max_age_ms_(max_age_ms) {}
  std::string name() const override { return "items"; }
  Result<Batch> runBatch(store::Database& db, std::int64_t now_ms, int limit) override {
    Batch batch;
    auto s = db.prepare(
        "SELECT i.id, i.account_id, i.blob_id, b.stored_bytes FROM items i JOIN blobs b ON b.id = "
        "i.blob_id WHERE i.created_at < ?1 ORDER BY i.created_at LIMIT ?2");
    if (!s.ok()) {
      return s.error();
    }
    s->bind(1, now_ms - max_age_ms_).bind(2, std::int64_t(limit + 1));
    std::vector<std::tuple<std::string, std::string, std::string, std::int64_t>> due;
    CONFAB_TRY(s->forEachRow([&](const store::Statement& row) {
      due.emplace_back(row.text(0), row.text(1), row.text(2), row.int64(3));
    }));
    if (static_cast<int>(due.size()) > limit) {
      due.pop_back();
      batch.more = true;
    }
    for (const auto& [id, account, blob, bytes] : due) {
      auto del = db.prepare("DELETE FROM items WHERE id = ?1");
      del->bind(1, id);
      CONFAB_TRY(del->run());
      CONFAB_TRY(store::forgetBlob(db, account, blob));
      batch.removed[account].items += 1;
      batch.removed[account].bytes += bytes;
      batch.blob_files.push_back(blob);
    }
    return batch;
  }

 private:
  std::int64_t max_age_ms_;
};

class RetentionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::array<std::uint8_t, 32> seed{};
    core::CsprngRandom::instance().fill(seed);
    key_ = crypto::Ed25519Key::fromSeed(seed);
    AuditOptions o;
    o.checkpoint_entries = 10;
    o.default_retention_days = 180;
    o.min_retention_days = 180;
    audit_ = std::make_unique<AuditLog>(key_, clock_, o);
    open();
    ASSERT_TRUE(store_
                    ->writeNow<int>([](store::Database& db) -> Result<int> {
                      CONFAB_TRY(db.exec(
                          "CREATE TABLE items (id TEXT PRIMARY KEY, account_id TEXT NOT NULL, "
                          "created_at INTEGER NOT NULL, blob_id TEXT NOT NULL)"));
                      return 0;
                    })
                    .ok());
  }

  void open() {
    store_ = confab::testing::openTestStore(dir_.path());
    blobs_ = std::make_unique<store::BlobStore>(dir_.path() / "blobs", keys_,
                                                core::CsprngRandom::instance(), 4096);
  }
  void close() {
    blobs_.reset();
    store_.reset();
  }

  // One item with a blob file, created now, recorded with its audit entry.
  std::string addItem(const std::string& account, const std::string& id) {
    auto w = blobs_->create(account, std::nullopt, 1 << 20);
    EXPECT_TRUE(w.ok());
    std::string text(5000, 'x');
    EXPECT_TRUE((*w)->write(crypto::asBytes(text)).ok());
    auto info = (*w)->seal();
    EXPECT_TRUE(info.ok());
    auto now = core::toUnixMillis(clock_.now());
    auto r = store_->writeNow<int>([&](store::Database& db) -> Result<int> {
      CONFAB_TRY(store::recordBlob(db, *info, now));
      auto ins = db.prepare("INSERT INTO items VALUES (?1, ?2, ?3, ?4)");
      ins->bind(1, id).bind(2, account).bind(3, now).bind(4, info->id);
      CONFAB_TRY(ins->run());
      Entry e;
      e.account_id = account;
      e.actor = {account, "u1"};
      e.action = "item.created";
      e.target_type = "item";
      e.target_id = id;
      auto a = audit_->append(db, e);
      if (!a.ok()) {
        return a.error();
      }
      return 0;
    });
    EXPECT_TRUE(r.ok()) << r.error().message;
    return info->id;
  }

  std::unique_ptr<RetentionScheduler> scheduler(RetentionOptions o = {}) {
    o.batch_size = 3;
    auto s =
        std::make_unique<RetentionScheduler>(*store_, blobs_.get(), *audit_, clock_, &metrics_, o);
    s->add(std::make_unique<ItemsJob>(30 * kDayMs));
    s->add(makeAuditRetentionJob(*audit_));
    return s;
  }

  std::set<std::string> itemIds() {
    std::set<std::string> out;
    (void)store_->writeNow<int>([&](store::Database& db) -> Result<int> {
      auto s = db.prepare("SELECT id FROM items");
      while (*s->step()) {
        out.insert(s->text(0));
      }
      return 0;
    });
    return out;
  }

  std::set<std::string> blobFiles() {
    std::set<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::recursive_directory_iterator(dir_.path() / "blobs", ec)) {
      if (e.is_regular_file() && e.path().extension() == ".blob") {
        out.insert(e.path().stem().string());
      }
    }
    return out;
  }

  // Sum of the items removed that the audit trail of `account` reports for job `job`.
  std::int64_t reportedRemovals(const std::string& account, const std::string& job) {
    auto page = store_->writeNow<Page>([&](store::Database& db) {
      return audit_->query(db, Query{.account_id = account,
                                     .action = "retention.removed",
                                     .target_type = "retention_job",
                                     .target_id = job,
                                     .limit = 1000});
    });
    std::int64_t sum = 0;
    for (const auto& r : page->records) {
      auto at = r.details.find("\"items\":");
      sum += std::stoll(r.details.substr(at + 8));
      EXPECT_EQ(r.actor.user_id, "");  // the system acted
    }
    return sum;
  }

  bool chainsHold() {
    for (const char* account : {"acct-a", "acct-b"}) {
      auto v = store_->writeNow<VerifyReport>(
          [&](store::Database& db) { return audit_->verify(db, account); });
      if (!v.ok() || v->broken) {
        ADD_FAILURE() << account << ": " << (v.ok() ? v->broken->reason : v.error().message);
        return false;
      }
    }
    return true;
  }

  TestDir dir_{"retention"};
  core::ManualClock clock_;
  OneDataKey keys_;
  core::Metrics metrics_;
  std::shared_ptr<const crypto::Ed25519Key> key_;
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<store::BlobStore> blobs_;
};

TEST_F(RetentionTest, OldRowsAndTheirFilesGoNewOnesStay) {
  std::set<std::string> old_ids, new_ids, new_files;
  for (int i = 0; i < 7; ++i) {
    old_ids.insert("old-a" + std::to_string(i));
    addItem("acct-a", "old-a" + std::to_string(i));
  }
  for (int i = 0; i < 2; ++i) {
    addItem("acct-b", "old-b" + std::to_string(i));
  }
  clock_.advance(std::chrono::hours(24 * 20));
  for (int i = 0; i < 3; ++i) {
    new_ids.insert("new-a" + std::to_string(i));
    new_files.insert(addItem("acct-a", "new-a" + std::to_string(i)));
  }
  clock_.advance(std::chrono::hours(24 * 15));  // old: 35 days, new: 15 days
  auto report = scheduler()->runNow();
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report.jobs[0].job, "items");
  EXPECT_EQ(report.jobs[0].items, 9);
  EXPECT_EQ(report.jobs[0].batches, 3);  // 3 + 3 + 3 in batches of 3 (the last finds no more)
  EXPECT_EQ(report.jobs[0].files_removed, 9);
  EXPECT_EQ(report.jobs[0].by_account["acct-a"].items, 7);
  EXPECT_EQ(report.jobs[0].by_account["acct-b"].items, 2);
  EXPECT_GT(report.jobs[0].bytes, 9 * 5000);
  EXPECT_EQ(itemIds(), new_ids);
  EXPECT_EQ(blobFiles(), new_files);
  EXPECT_EQ(reportedRemovals("acct-a", "items"), 7);
  EXPECT_EQ(reportedRemovals("acct-b", "items"), 2);
  EXPECT_NE(metrics_.render().find("confab_retention_removed_items_total{job=\"items\"} 9"),
            std::string::npos)
      << metrics_.render();
  // Idempotent: a second run removes nothing more.
  auto again = scheduler()->runNow();
  EXPECT_EQ(again.jobs[0].items, 0);
  EXPECT_EQ(itemIds(), new_ids);
  EXPECT_TRUE(chainsHold());
}

// kill -9 of a run right after its first batch committed and before that batch's files were
// removed; start-up's blob sweep and a second run then leave exactly what a clean run leaves.
TEST_F(RetentionTest, ARunKilledHalfWayIsFinishedByTheNext) {
  std::set<std::string> new_ids, new_files;
  for (int i = 0; i < 8; ++i) {
    addItem(i % 2 ? "acct-a" : "acct-b", "old" + std::to_string(i));
  }
  clock_.advance(std::chrono::hours(24 * 40));
  for (int i = 0; i < 2; ++i) {
    new_ids.insert("new" + std::to_string(i));
    new_files.insert(addItem("acct-a", "new" + std::to_string(i)));
  }
  close();

  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(pipe_fds[0]);
    open();
    RetentionOptions o;
    o.on_batch = [&](const std::string& job, const Batch&) {
      if (job == "items") {
        (void)!::write(pipe_fds[1], "c", 1);
        ::pause();  // committed, files not yet removed: wait for the kill
      }
    };
    scheduler(o)->runNow();
    ::_exit(3);  // not reached
  }
  ::close(pipe_fds[1]);
  char c = 0;
  ASSERT_EQ(::read(pipe_fds[0], &c, 1), 1);
  ASSERT_EQ(::kill(child, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status));
  ::close(pipe_fds[0]);

  open();
  // What the kill left: the first batch's rows are gone, its files are not.
  EXPECT_EQ(itemIds().size(), 7u);
  EXPECT_EQ(blobFiles().size(), 10u);
  // Start-up: the blob sweep removes files without rows, then the next run finishes the work.
  auto swept =
      store_->writeNow<store::SweepReport>([&](store::Database& db) { return blobs_->sweep(db); });
  ASSERT_TRUE(swept.ok());
  EXPECT_EQ(swept->orphans_removed, 3);
  auto report = scheduler()->runNow();
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report.jobs[0].items, 5);
  EXPECT_EQ(itemIds(), new_ids);
  EXPECT_EQ(blobFiles(), new_files);
  // Every removal is in the audit trail exactly once, the killed batch's included.
  EXPECT_EQ(reportedRemovals("acct-a", "items") + reportedRemovals("acct-b", "items"), 8);
  EXPECT_TRUE(chainsHold());
}

// The audit log's own retention: old entries go up to a signed checkpoint older than the limit,
// the chain still verifies from it, and entries newer than the limit stay.
TEST_F(RetentionTest, AuditRetentionKeepsASignedStartingPoint) {
  auto append = [&](const std::string& account, int n) {
    for (int i = 0; i < n; ++i) {
      Entry e;
      e.account_id = account;
      e.actor = {account, "u1"};
      e.action = "user.updated";
      ASSERT_TRUE(
          store_->writeNow<Record>([&](store::Database& db) { return audit_->append(db, e); })
              .ok());
    }
  };
  append("acct-a", 25);  // checkpoints at 10 and 20
  append("acct-b", 4);
  ASSERT_TRUE(store_
                  ->writeNow<int>([&](store::Database& db) {
                    return audit_->checkpointAll(db);  // signs a at 25, b at 4
                  })
                  .ok());
  clock_.advance(std::chrono::hours(24 * 200));
  append("acct-a", 3);  // 26..28, new
  // acct-b keeps a longer retention.
  ASSERT_TRUE(store_
                  ->writeNow<int>([&](store::Database& db) -> Result<int> {
                    CONFAB_TRY(audit_->setRetentionDays(db, "acct-b", 365));
                    return 0;
                  })
                  .ok());
  auto report = scheduler()->runNow();
  ASSERT_TRUE(report.ok());
  const auto& audit_job = report.jobs[1];
  EXPECT_EQ(audit_job.job, "audit");
  EXPECT_EQ(audit_job.by_account.at("acct-a").items, 25);
  EXPECT_EQ(audit_job.by_account.count("acct-b"), 0u);
  auto v = store_->writeNow<VerifyReport>(
      [&](store::Database& db) { return audit_->verify(db, "acct-a"); });
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(v->broken) << v->broken->reason;
  EXPECT_EQ(v->first_seq, 26);  // after the checkpoint at 25, which stays as the anchor
  EXPECT_GE(v->last_seq, 29);   // 26..28 and the retention entries after them
  auto b = store_->writeNow<VerifyReport>(
      [&](store::Database& db) { return audit_->verify(db, "acct-b"); });
  EXPECT_EQ(b->first_seq, 1);
  EXPECT_EQ(b->entries, 4);
  // Deleting the anchor after retention breaks verification.
  ASSERT_TRUE(store_
                  ->writeNow<int>([&](store::Database& db) -> Result<int> {
                    CONFAB_TRY(db.exec(
                        "DELETE FROM audit_checkpoints WHERE account_id = 'acct-a' AND seq = 25"));
                    return 0;
                  })
                  .ok());
  auto gone = store_->writeNow<VerifyReport>(
      [&](store::Database& db) { return audit_->verify(db, "acct-a"); });
  ASSERT_TRUE(gone->broken);
  EXPECT_EQ(gone->broken->reason,
            "entries before 26 are missing and no signed checkpoint anchors entry 25");
}

// Retention acts only on checkpoints whose signature verifies: a forged "old" checkpoint row does
// not make it delete young entries.
TEST_F(RetentionTest, AForgedOldCheckpointIsNotActedOn) {
  for (int i = 0; i < 5; ++i) {
    Entry e;
    e.account_id = "acct-c";
    e.actor = {"acct-c", "u1"};
    e.action = "user.updated";
    ASSERT_TRUE(
        store_->writeNow<Record>([&](store::Database& db) { return audit_->append(db, e); }).ok());
  }
  ASSERT_TRUE(store_
                  ->writeNow<int>([&](store::Database& db) -> Result<int> {
                    CONFAB_TRY(
                        db.exec("INSERT INTO audit_checkpoints VALUES ('acct-c', 3, '00', 1, "
                                "'0000000000000000', 'AAAA')"));
                    return 0;
                  })
                  .ok());
  auto report = scheduler()->runNow();
  ASSERT_TRUE(report.ok());
  for (const auto& j : report.jobs) {
    EXPECT_EQ(j.by_account.count("acct-c"), 0u) << j.job;
  }
  auto left = store_->writeNow<std::int64_t>([&](store::Database& db) {
    return db.queryInt("SELECT count(*) FROM audit_entries WHERE account_id = 'acct-c'");
  });
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(*left, 5);
}

// The schedule survives a restart: the first periodic run after start is due one interval after
// the last recorded one, not at once.
TEST_F(RetentionTest, TriggerRunsAtOnceAndTheScheduleIsKept) {
  addItem("acct-a", "old");
  clock_.advance(std::chrono::hours(24 * 40));
  boost::asio::io_context io;
  auto guard = boost::asio::make_work_guard(io);  // keeps run_for() running between phases
  RetentionOptions o;
  o.interval = std::chrono::hours(24 * 365);  // longer than the 40 days the clock moves
  int runs = 0;
  o.on_batch = [&](const std::string& job, const Batch&) { runs += job == "items"; };
  auto s = scheduler(o);
  s->start(io.get_executor());
  // Nothing recorded yet: the first run is due at once.
  for (int i = 0; i < 2000 && itemIds().size() == 1; ++i) {
    io.run_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(itemIds().empty());
  EXPECT_GE(runs, 1);
  // A restarted scheduler waits an interval; a trigger runs it now.
  s->stop();
  io.run_for(std::chrono::milliseconds(50));
  addItem("acct-a", "older");
  clock_.advance(std::chrono::hours(24 * 40));
  auto again = scheduler(o);
  again->start(io.get_executor());
  io.run_for(std::chrono::milliseconds(200));
  EXPECT_EQ(itemIds().size(), 1u);  // not due yet
  again->trigger();
  for (int i = 0; i < 2000 && !itemIds().empty(); ++i) {
    io.run_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(itemIds().empty());
  again->stop();
  io.run_for(std::chrono::milliseconds(50));
}

}  // namespace
}  // namespace confab::audit
