// SPDX-License-Identifier: Apache-2.0
// The audit log at module level: an entry commits with its change or not at all; verification
// names the first broken link for every kind of tampering the chain and its signed checkpoints
// exist to catch; queries stay inside one account.
#include <confab/audit/audit_log.h>
#include <confab/core/crypto.h>
#include <confab/core/random.h>

#include <gtest/gtest.h>

#include <sstream>

#include "audit/chain.h"
#include "test_support.h"

namespace confab::audit {
namespace {

using confab::testing::TestDir;
namespace crypto = core::crypto;

std::shared_ptr<const crypto::Ed25519Key> newKey() {
  std::array<std::uint8_t, 32> seed{};
  core::CsprngRandom::instance().fill(seed);
  return crypto::Ed25519Key::fromSeed(seed);
}

Entry entry(const std::string& account, const std::string& action, const std::string& user = "u1",
            const std::string& target = "t1") {
  Entry e;
  e.account_id = account;
  e.actor = {account, user, "", ""};
  e.client = {"127.0.0.1", 40000};
  e.action = action;
  e.target_type = "user";
  e.target_id = target;
  e.details = {{"size", std::int64_t(12)}, {"ok", true}, {"name", std::string("report.pdf")}};
  return e;
}

class AuditLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = confab::testing::openTestStore(dir_.path());
    ASSERT_TRUE(store_);
    AuditOptions o;
    o.checkpoint_entries = 5;
    log_ = std::make_unique<AuditLog>(key_, clock_, o);
  }

  // Appends `n` entries to `account`, one transaction each, a second apart.
  void append(const std::string& account, int n, const std::string& action = "user.updated") {
    for (int i = 0; i < n; ++i) {
      clock_.advance(std::chrono::seconds(1));
      auto r = store_->writeNow<Record>(
          [&](store::Database& db) { return log_->append(db, entry(account, action)); });
      ASSERT_TRUE(r.ok()) << r.error().message;
    }
  }

  Status sql(const std::string& statement) {
    auto r = store_->writeNow<int>([&](store::Database& db) -> Result<int> {
      CONFAB_TRY(db.exec(statement));
      return 0;
    });
    return r.ok() ? Status() : Status(r.error());
  }

  VerifyReport verify(const std::string& account, const std::vector<Checkpoint>& logged = {}) {
    auto r = store_->writeNow<VerifyReport>(
        [&](store::Database& db) { return log_->verify(db, account, logged); });
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? *r : VerifyReport{};
  }

  std::vector<Checkpoint> storedCheckpoints(const std::string& account) {
    std::vector<Checkpoint> out;
    (void)store_->writeNow<int>([&](store::Database& db) -> Result<int> {
      auto s = db.prepare(
          "SELECT account_id, seq, hash, ts, key_id, signature FROM audit_checkpoints WHERE "
          "account_id = ?1 ORDER BY seq");
      s->bind(1, account);
      while (*s->step()) {
        out.push_back({s->text(0), s->int64(1), s->text(2), s->int64(3), s->text(4), s->text(5)});
      }
      return 0;
    });
    return out;
  }

  TestDir dir_{"audit"};
  core::ManualClock clock_;
  std::shared_ptr<const crypto::Ed25519Key> key_ = newKey();
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<AuditLog> log_;
};

TEST_F(AuditLogTest, EntriesChainAndVerify) {
  append("acct-a", 12);
  append("acct-b", 3);
  auto a = verify("acct-a");
  EXPECT_FALSE(a.broken) << a.broken->reason;
  EXPECT_EQ(a.first_seq, 1);
  EXPECT_EQ(a.last_seq, 12);
  EXPECT_EQ(a.entries, 12);
  EXPECT_EQ(a.checkpoints, 2);  // at 5 and 10
  auto b = verify("acct-b");
  EXPECT_FALSE(b.broken);
  EXPECT_EQ(b.entries, 3);
  auto none = verify("acct-none");
  EXPECT_FALSE(none.broken);
  EXPECT_EQ(none.entries, 0);
}

// No change without its record, no record without its change.
TEST_F(AuditLogTest, AnEntryCommitsWithItsChangeOrNotAtAll) {
  ASSERT_TRUE(sql("CREATE TABLE widgets (id TEXT PRIMARY KEY)").ok());
  // A failure injected after the change and its record, before the commit: neither stays.
  auto failed = store_->writeNow<int>([&](store::Database& db) -> Result<int> {
    CONFAB_TRY(db.exec("INSERT INTO widgets VALUES ('w1')"));
    auto r = log_->append(db, entry("acct-a", "widget.created"));
    if (!r.ok()) {
      return r.error();
    }
    return makeError(ErrorCode::Internal, "injected failure before commit");
  });
  ASSERT_FALSE(failed.ok());
  // A record that cannot be written (a detail that is too long) fails its change too.
  auto refused = store_->writeNow<int>([&](store::Database& db) -> Result<int> {
    CONFAB_TRY(db.exec("INSERT INTO widgets VALUES ('w2')"));
    Entry e = entry("acct-a", "widget.created");
    e.details.emplace_back("note", std::string(2000, 'x'));
    auto r = log_->append(db, e);
    if (!r.ok()) {
      return r.error();
    }
    return 0;
  });
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::InvalidArgument);
  EXPECT_EQ(refused.error().field, "details.note");
  auto counts = store_->writeNow<std::pair<std::int64_t, std::int64_t>>(
      [](store::Database& db) -> Result<std::pair<std::int64_t, std::int64_t>> {
        return std::pair{*db.queryInt("SELECT count(*) FROM widgets"),
                         *db.queryInt("SELECT count(*) FROM audit_entries")};
      });
  EXPECT_EQ(counts->first, 0);
  EXPECT_EQ(counts->second, 0);
  // The same change that commits carries its record.
  auto ok = store_->writeNow<int>([&](store::Database& db) -> Result<int> {
    CONFAB_TRY(db.exec("INSERT INTO widgets VALUES ('w3')"));
    auto r = log_->append(db, entry("acct-a", "widget.created"));
    if (!r.ok()) {
      return r.error();
    }
    return 0;
  });
  ASSERT_TRUE(ok.ok());
  auto page = store_->writeNow<Page>([&](store::Database& db) {
    return log_->query(db, Query{.account_id = "acct-a", .action = "widget.created"});
  });
  ASSERT_EQ(page->records.size(), 1u);
  EXPECT_EQ(page->records[0].seq, 1);
}

TEST_F(AuditLogTest, AnEditedRowIsCaught) {
  append("acct-a", 8);
  ASSERT_TRUE(sql("UPDATE audit_entries SET details = '{\"size\":13}' WHERE seq = 3").ok());
  auto r = verify("acct-a");
  ASSERT_TRUE(r.broken);
  EXPECT_EQ(r.broken->seq, 3);
  EXPECT_EQ(r.broken->reason, "entry 3 does not match its hash (edited)");
}

TEST_F(AuditLogTest, ADeletedRowIsCaught) {
  append("acct-a", 8);
  ASSERT_TRUE(sql("DELETE FROM audit_entries WHERE account_id = 'acct-a' AND seq = 4").ok());
  auto r = verify("acct-a");
  ASSERT_TRUE(r.broken);
  EXPECT_EQ(r.broken->seq, 4);
  EXPECT_EQ(r.broken->reason, "entry 4 is missing (deleted)");
}

TEST_F(AuditLogTest, ReorderedRowsAreCaught) {
  append("acct-a", 8);
  // Swap entries 6 and 7 (their sequence numbers): each row keeps its own hash.
  ASSERT_TRUE(sql("UPDATE audit_entries SET seq = -1 WHERE seq = 6; "
                  "UPDATE audit_entries SET seq = 6 WHERE seq = 7; "
                  "UPDATE audit_entries SET seq = 7 WHERE seq = -1;")
                  .ok());
  auto r = verify("acct-a");
  ASSERT_TRUE(r.broken);
  EXPECT_EQ(r.broken->seq, 6);
  EXPECT_EQ(r.broken->reason,
            "entry 6 does not link to entry 5 (deleted, reordered or edited rows)");
}

// Someone who can write the database but does not hold the signing key edits entry 2 and
// recomputes every hash after it: the chain is consistent again, the signed checkpoint is not.
TEST_F(AuditLogTest, AChainRecomputedWithoutTheKeyIsCaught) {
  append("acct-a", 7);
  auto page = store_->writeNow<Page>([&](store::Database& db) {
    return log_->query(db, Query{.account_id = "acct-a", .limit = 1000});
  });
  ASSERT_TRUE(page.ok());
  auto records = page->records;
  records[1].details = R"({"name":"innocent.txt","ok":true,"size":12})";
  std::string prev = genesisHash("acct-a");
  std::string script;
  for (auto& r : records) {
    r.prev_hash = prev;
    r.hash = chainHash(r);
    prev = r.hash;
    script += "UPDATE audit_entries SET details = '" + r.details + "', prev_hash = '" +
              r.prev_hash + "', hash = '" + r.hash + "' WHERE seq = " + std::to_string(r.seq) + ";";
  }
  script += "UPDATE audit_heads SET hash = '" + prev + "';";
  ASSERT_TRUE(sql(script).ok());
  auto r = verify("acct-a");
  ASSERT_TRUE(r.broken);
  EXPECT_EQ(r.broken->seq, 5);
  EXPECT_EQ(r.broken->reason,
            "entry 5 does not match the stored signed checkpoint (rows edited and the chain "
            "recomputed?)");
  // A checkpoint re-made with another key does not help the forger either.
  AuditLog forger(newKey(), clock_, log_->options());
  ASSERT_TRUE(sql("DELETE FROM audit_checkpoints").ok());
  ASSERT_TRUE(sql("UPDATE audit_heads SET checkpoint_seq = 0").ok());
  ASSERT_TRUE(
      store_->writeNow<int>([&](store::Database& db) { return forger.checkpointAll(db); }).ok());
  auto again = verify("acct-a");
  ASSERT_TRUE(again.broken);
  EXPECT_EQ(again.broken->seq, 7);
  EXPECT_NE(again.broken->reason.find("has no valid signature (key " + forger.keyId() + ")"),
            std::string::npos)
      << again.broken->reason;
}

TEST_F(AuditLogTest, AForgedSignatureIsCaught) {
  append("acct-a", 5);
  ASSERT_TRUE(
      sql("UPDATE audit_checkpoints SET signature = replace(signature, substr(signature, 5, 1), "
          "CASE substr(signature, 5, 1) WHEN 'A' THEN 'B' ELSE 'A' END)")
          .ok());
  auto r = verify("acct-a");
  ASSERT_TRUE(r.broken);
  EXPECT_EQ(r.broken->seq, 5);
}

// The tail cut off together with its checkpoints: the database alone is consistent, the
// checkpoint that went to the log is not.
TEST_F(AuditLogTest, EntriesCutAfterTheLastCheckpointAreCaughtAgainstTheLog) {
  append("acct-a", 10);
  auto logged = storedCheckpoints("acct-a");  // what the log holds: checkpoints 5 and 10
  ASSERT_EQ(logged.size(), 2u);
  ASSERT_TRUE(sql("DELETE FROM audit_entries WHERE seq > 6; "
                  "DELETE FROM audit_checkpoints WHERE seq > 6; "
                  "UPDATE audit_heads SET seq = 6, checkpoint_seq = 5, hash = (SELECT hash FROM "
                  "audit_entries WHERE account_id = 'acct-a' AND seq = 6);")
                  .ok());
  EXPECT_FALSE(verify("acct-a").broken);  // consistent on its own
  auto r = verify("acct-a", logged);
  ASSERT_TRUE(r.broken);
  EXPECT_EQ(r.broken->seq, 7);
  EXPECT_EQ(r.broken->reason,
            "entries after 6 are missing: a checkpoint in the log covers entry 10");
  // Cutting only the rows, leaving the stored checkpoint, is caught without the log.
  append("acct-b", 10);
  ASSERT_TRUE(sql("DELETE FROM audit_entries WHERE account_id = 'acct-b' AND seq > 7").ok());
  auto b = verify("acct-b");
  ASSERT_TRUE(b.broken);
  EXPECT_EQ(b.broken->reason, "entries after 7 are missing: a signed checkpoint covers entry 10");
}

// Retention removes the oldest entries only with a retention.removed entry saying so; the same
// cut made by hand, up to a genuine checkpoint, is caught.
TEST_F(AuditLogTest, OldestEntriesDeletedByHandAreCaught) {
  append("acct-a", 12);  // checkpoints at 5 and 10
  ASSERT_TRUE(sql("DELETE FROM audit_entries WHERE account_id = 'acct-a' AND seq <= 5; "
                  "DELETE FROM audit_checkpoints WHERE account_id = 'acct-a' AND seq < 5")
                  .ok());
  auto r = verify("acct-a");
  ASSERT_TRUE(r.broken);
  EXPECT_EQ(r.broken->seq, 5);
  EXPECT_EQ(r.broken->reason,
            "entries up to 5 are gone, but no retention record of the chain says it removed "
            "them (deleted by hand?)");
}

// The head record that appending and signing continue from must agree with the chain.
TEST_F(AuditLogTest, AnEditedOrDeletedHeadRecordIsCaught) {
  append("acct-a", 7);  // checkpoint at 5
  ASSERT_FALSE(verify("acct-a").broken);
  ASSERT_TRUE(sql("UPDATE audit_heads SET checkpoint_seq = 1000000").ok());
  auto raised = verify("acct-a");
  ASSERT_TRUE(raised.broken);
  EXPECT_NE(raised.broken->reason.find("head record says entry 1000000 was the last signed one"),
            std::string::npos)
      << raised.broken->reason;
  ASSERT_TRUE(sql("UPDATE audit_heads SET checkpoint_seq = 5, seq = 3").ok());
  auto lowered = verify("acct-a");
  ASSERT_TRUE(lowered.broken);
  EXPECT_EQ(lowered.broken->reason,
            "the chain's head record (entry 3) does not match its last entry (7): edited");
  ASSERT_TRUE(sql("DELETE FROM audit_heads").ok());
  auto gone = verify("acct-a");
  ASSERT_TRUE(gone.broken);
  EXPECT_EQ(gone.broken->reason, "the chain has no head record (deleted)");
  // The account is still listed for verification without its head.
  auto accounts = store_->writeNow<std::vector<std::string>>(
      [&](store::Database& db) { return log_->accounts(db); });
  ASSERT_TRUE(accounts.ok());
  EXPECT_EQ(*accounts, std::vector<std::string>{"acct-a"});
}

// A chain that cannot be signed (its head edited) does not stop the others from being signed.
TEST_F(AuditLogTest, OneUnsignableChainDoesNotStopTheOthers) {
  append("acct-a", 3);
  append("acct-b", 3);
  auto first = store_->writeNow<int>([&](store::Database& db) { return log_->checkpointAll(db); });
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(*first, 2);
  ASSERT_TRUE(sql("UPDATE audit_heads SET checkpoint_seq = 0 WHERE account_id = 'acct-a'").ok());
  append("acct-b", 2);
  auto second = store_->writeNow<int>([&](store::Database& db) { return log_->checkpointAll(db); });
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_EQ(*second, 1);  // acct-a's checkpoint at 3 exists already; acct-b is signed at 5
  EXPECT_EQ(storedCheckpoints("acct-b").back().seq, 5);
}

TEST_F(AuditLogTest, CheckpointsAreLoggedAndReadBackFromTextAndJsonLogs) {
  append("acct-a", 5);
  auto stored = storedCheckpoints("acct-a");
  ASSERT_EQ(stored.size(), 1u);
  const auto& c = stored[0];
  std::string object = R"({"account_id":"acct-a","hash":")" + c.hash + R"(","key_id":")" +
                       c.key_id + R"(","seq":5,"signature":")" + c.signature + R"(","ts":)" +
                       std::to_string(c.ts) + "}";
  std::string escaped;
  for (char ch : object) {
    if (ch == '"') {
      escaped += '\\';
    }
    escaped += ch;
  }
  std::istringstream text(
      "2026-01-01 00:00:00.000 [info] [audit] something else\n"
      "2026-01-01 00:00:01.000 [info] [audit] audit checkpoint " +
      object +
      "\n"
      R"({"ts":"x","level":"info","module":"audit","msg":"audit checkpoint )" +
      escaped + "\"}\n");
  auto parsed = parseLoggedCheckpoints(text);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  ASSERT_EQ(parsed->size(), 2u);
  for (const auto& p : *parsed) {
    EXPECT_EQ(p.seq, 5);
    EXPECT_EQ(p.hash, c.hash);
    EXPECT_EQ(p.signature, c.signature);
  }
  EXPECT_FALSE(verify("acct-a", *parsed).broken);
  std::istringstream bad("x audit checkpoint {\"seq\":\n");
  auto broken = parseLoggedCheckpoints(bad);
  ASSERT_FALSE(broken.ok());
  EXPECT_EQ(broken.error().message, "line 1: an audit checkpoint that does not parse");
}

TEST_F(AuditLogTest, OtherLogLinesAboutCheckpointsAreNotCheckpoints) {
  append("acct-a", 5);
  auto c = storedCheckpoints("acct-a").at(0);
  std::ostringstream log;
  log << "2026-12-04T08:00:00.000Z error [app] audit checkpoint failed: disk I/O error\n"
      << "2026-12-04T08:00:01.000Z warn [app] signing the audit chains failed: busy\n"
      << "2026-12-04T08:00:02.000Z info [audit] audit checkpoint {\"account_id\":\"acct-a\","
      << "\"seq\":" << c.seq << ",\"hash\":\"" << c.hash << "\",\"ts\":" << c.ts << ",\"key_id\":\""
      << c.key_id << "\",\"signature\":\"" << c.signature << "\"}\n";
  std::istringstream in(log.str());
  auto parsed = parseLoggedCheckpoints(in);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  ASSERT_EQ(parsed->size(), 1u);
  EXPECT_EQ(parsed->at(0).signature, c.signature);
}

TEST_F(AuditLogTest, QueriesFilterPageAndStayInTheirAccount) {
  append("acct-a", 3, "user.created");
  append("acct-a", 4, "meeting.started");
  append("acct-b", 5, "user.created");
  auto run = [&](Query q) {
    auto p = store_->writeNow<Page>([&](store::Database& db) { return log_->query(db, q); });
    EXPECT_TRUE(p.ok()) << p.error().message;
    return p.ok() ? *p : Page{};
  };
  auto users = run({.account_id = "acct-a", .action = "user.*"});
  EXPECT_EQ(users.records.size(), 3u);
  for (const auto& r : users.records) {
    EXPECT_EQ(r.account_id, "acct-a");
  }
  // Pages of 2, oldest first, then newest first.
  auto p1 = run({.account_id = "acct-a", .limit = 2});
  ASSERT_EQ(p1.records.size(), 2u);
  ASSERT_TRUE(p1.next);
  auto p2 = run({.account_id = "acct-a", .after = p1.next, .limit = 2});
  EXPECT_EQ(p2.records.front().seq, 3);
  auto newest = run({.account_id = "acct-a", .newest_first = true, .limit = 3});
  EXPECT_EQ(newest.records.front().seq, 7);
  EXPECT_EQ(newest.records.back().seq, 5);
  auto rest =
      run({.account_id = "acct-a", .newest_first = true, .after = newest.next, .limit = 100});
  EXPECT_EQ(rest.records.size(), 4u);
  EXPECT_FALSE(rest.next);
  // Time range: entries are a second apart from 2026-01-01T00:00:01Z.
  std::int64_t t0 = core::toUnixMillis(core::ManualClock().now());
  auto window = run({.account_id = "acct-a", .from_ms = t0 + 2000, .to_ms = t0 + 4000});
  EXPECT_EQ(window.records.size(), 2u);
  auto by_actor = run({.account_id = "acct-b", .actor_user_id = "u1"});
  EXPECT_EQ(by_actor.records.size(), 5u);
  auto nobody = run({.account_id = "acct-b", .actor_user_id = "someone-else"});
  EXPECT_TRUE(nobody.records.empty());
  auto bad = store_->writeNow<Page>([&](store::Database& db) {
    return log_->query(db, Query{.account_id = "acct-a", .action = "User%"});
  });
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().field, "action");
  auto json = toJson(users.records[0]);
  EXPECT_NE(json.find(R"("details":{"name":"report.pdf","ok":true,"size":12})"), std::string::npos)
      << json;
}

// Time windows are seq ranges found by binary search: exact at every boundary, also when the
// clock stepped back (time then stays at the previous entry's) and after the oldest entries went.
TEST_F(AuditLogTest, TimeWindowsAreExactAndTimeNeverGoesBackwardsInAChain) {
  append("acct-a", 20);                       // t0+1s .. t0+20s
  clock_.advance(-std::chrono::seconds(30));  // the clock steps back
  append("acct-a", 2);                        // recorded at t0+20s, not t0-9s / t0-8s
  append("acct-b", 3);
  std::int64_t t0 = core::toUnixMillis(core::ManualClock().now());
  auto run = [&](std::optional<std::int64_t> from, std::optional<std::int64_t> to) {
    auto p = store_->writeNow<Page>([&](store::Database& db) {
      return log_->query(db, {.account_id = "acct-a", .from_ms = from, .to_ms = to, .limit = 1000});
    });
    EXPECT_TRUE(p.ok()) << p.error().message;
    std::vector<std::int64_t> seqs;
    for (const auto& r : p.ok() ? p->records : std::vector<Record>{}) {
      seqs.push_back(r.seq);
    }
    return seqs;
  };
  auto all = run(std::nullopt, std::nullopt);
  ASSERT_EQ(all.size(), 22u);
  auto p = store_->writeNow<Page>([&](store::Database& db) {
    return log_->query(db, {.account_id = "acct-a", .limit = 1000});
  });
  ASSERT_TRUE(p.ok());
  for (std::size_t i = 1; i < p->records.size(); ++i) {
    EXPECT_GE(p->records[i].ts, p->records[i - 1].ts) << "seq " << p->records[i].seq;
  }
  EXPECT_EQ(p->records[21].ts, t0 + 20000);
  using V = std::vector<std::int64_t>;
  EXPECT_EQ(run(t0 + 5000, t0 + 8000), (V{5, 6, 7}));
  EXPECT_EQ(run(t0 + 4500, t0 + 7500), (V{5, 6, 7}));
  EXPECT_EQ(run(t0 + 20000, std::nullopt), (V{20, 21, 22}));
  EXPECT_EQ(run(std::nullopt, t0 + 2001), (V{1, 2}));
  EXPECT_TRUE(run(t0 + 20001, std::nullopt).empty());
  EXPECT_TRUE(run(std::nullopt, t0 + 1000).empty());
  EXPECT_TRUE(run(t0 + 8000, t0 + 8000).empty());
  // After the oldest entries are gone (as retention removes them), windows still hold.
  ASSERT_TRUE(sql("DELETE FROM audit_entries WHERE account_id = 'acct-a' AND seq <= 10").ok());
  EXPECT_EQ(run(std::nullopt, t0 + 12500), (V{11, 12}));
  EXPECT_EQ(run(t0 + 1000, t0 + 11500), (V{11}));
  EXPECT_TRUE(run(t0, t0 + 10500).empty());
}

TEST_F(AuditLogTest, RetentionSettingHasAFloor) {
  auto set = [&](int days) {
    return store_->writeNow<int>([&](store::Database& db) -> Result<int> {
      CONFAB_TRY(log_->setRetentionDays(db, "acct-a", days));
      return *log_->retentionDays(db, "acct-a");
    });
  };
  auto low = set(10);
  ASSERT_FALSE(low.ok());
  EXPECT_EQ(low.error().field, "retention_days");
  EXPECT_EQ(low.error().message,
            "retention_days must be at least 180 (the configured minimum, "
            "audit.min_retention_days) and at most 36500");
  EXPECT_EQ(*set(400), 400);
}

}  // namespace
}  // namespace confab::audit
