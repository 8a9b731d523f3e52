// SPDX-License-Identifier: Apache-2.0
// EventLog against a real SQLite store in a temporary directory: per-user sequence numbers,
// replay after a seq (batches, resync), and retention that never lets a seq go back.
#include <confab/core/clock.h>
#include <confab/events/event_log.h>
#include <confab/store/store.h>

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "test_support.h"

namespace confab::events {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const Recipient kAlice{"acct", "alice"};
const Recipient kBob{"acct", "bob"};
const Recipient kOtherAlice{"acct2", "alice"};  // same user id, another account: another stream

class EventLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = testing::openTestStore(dir_.path());
    ASSERT_TRUE(store_);
  }
  void TearDown() override { store_.reset(); }

  std::int64_t now() const { return core::toUnixMillis(clock_.now()); }

  std::vector<Event> append(const std::vector<Recipient>& to,
                            const std::string& type = "message.created",
                            const std::string& actor = "", const std::string& data = "{}") {
    auto r = store_->writeNow<std::vector<Event>>([&](store::Database& db) {
      return EventLog::append(db, to, "id" + std::to_string(++ids_), type, actor, data, now());
    });
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? std::move(*r) : std::vector<Event>{};
  }
  // `n` events for `who` alone; returns their seqs.
  std::vector<std::int64_t> appendMany(const Recipient& who, int n) {
    std::vector<std::int64_t> seqs;
    for (int i = 0; i < n; ++i) {
      seqs.push_back(append({who}).at(0).seq);
    }
    return seqs;
  }
  Replay since(const Recipient& who, std::int64_t after, int limit = 100) {
    auto r = store_->writeNow<Replay>(
        [&](store::Database& db) { return EventLog::since(db, who, after, limit); });
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? std::move(*r) : Replay{};
  }
  std::int64_t lastSeq(const Recipient& who) {
    auto r = store_->writeNow<std::int64_t>(
        [&](store::Database& db) { return EventLog::lastSeq(db, who); });
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : -1;
  }
  std::int64_t purge(const Retention& retention, int batch = 1000) {
    auto r = store_->writeNow<std::int64_t>(
        [&](store::Database& db) { return EventLog::purge(db, retention, now(), batch); });
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? *r : -1;
  }
  void exec(const std::string& sql) {
    auto r = store_->writeNow<bool>([&](store::Database& db) -> Result<bool> {
      CONFAB_TRY(db.exec(sql));
      return true;
    });
    ASSERT_TRUE(r.ok()) << r.error().message;
  }

  static std::vector<std::int64_t> seqs(const Replay& r) {
    std::vector<std::int64_t> out;
    for (const auto& e : r.events)
      out.push_back(e.seq);
    return out;
  }

  testing::TestDir dir_{"confab-events"};
  core::ManualClock clock_;
  std::unique_ptr<store::Store> store_;
  int ids_ = 0;
};

TEST_F(EventLogTest, AppendAssignsConsecutiveSeqsPerUser) {
  EXPECT_EQ(lastSeq(kAlice), 0);
  auto first = append({kAlice}, "message.created", "carol", R"({"text":"hi"})");
  ASSERT_EQ(first.size(), 1u);
  const Event& e = first[0];
  EXPECT_EQ(e.seq, 1);
  EXPECT_EQ(e.id, "id1");
  EXPECT_EQ(e.type, "message.created");
  EXPECT_EQ(e.ts, now());
  EXPECT_EQ(e.account_id, "acct");
  EXPECT_EQ(e.user_id, "alice");
  EXPECT_EQ(e.actor, "carol");
  EXPECT_EQ(e.data, R"({"text":"hi"})");
  EXPECT_EQ(appendMany(kAlice, 4), (std::vector<std::int64_t>{2, 3, 4, 5}));
  EXPECT_EQ(lastSeq(kAlice), 5);
}

TEST_F(EventLogTest, SeqsOfRecipientsAreIndependent) {
  auto both = append({kAlice, kBob});
  ASSERT_EQ(both.size(), 2u);
  EXPECT_EQ(both[0].seq, 1);
  EXPECT_EQ(both[1].seq, 1);
  EXPECT_EQ(both[0].id, both[1].id);  // one event, one copy per recipient
  EXPECT_EQ(both[1].user_id, "bob");
  appendMany(kBob, 3);
  auto again = append({kOtherAlice, kAlice, kBob});
  EXPECT_EQ(again[0].seq, 1);  // acct2/alice is not acct/alice
  EXPECT_EQ(again[1].seq, 2);
  EXPECT_EQ(again[2].seq, 5);
  EXPECT_EQ(lastSeq(kAlice), 2);
  EXPECT_EQ(lastSeq(kBob), 5);
  EXPECT_EQ(lastSeq(kOtherAlice), 1);
  EXPECT_EQ(seqs(since(kAlice, 0)), (std::vector<std::int64_t>{1, 2}));
}

TEST_F(EventLogTest, AFailedTransactionAssignsNoSeq) {
  appendMany(kAlice, 2);
  auto r = store_->writeNow<bool>([&](store::Database& db) -> Result<bool> {
    auto e = EventLog::append(db, {kAlice}, "x", "t", "", "{}", now());
    EXPECT_TRUE(e.ok());
    return makeError(ErrorCode::InvalidArgument, "the domain change failed");  // rolls back
  });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(lastSeq(kAlice), 2);
  EXPECT_EQ(append({kAlice})[0].seq, 3);
}

TEST_F(EventLogTest, SinceReturnsTheEventsAfterASeq) {
  append({kAlice}, "a.created", "", R"({"n":1})");
  append({kAlice}, "b.created", "dave", R"({"n":2})");
  append({kBob});
  append({kAlice}, "c.created", "", R"({"n":3})");
  auto r = since(kAlice, 1);
  EXPECT_FALSE(r.resync);
  EXPECT_FALSE(r.more);
  EXPECT_EQ(r.last_seq, 3);
  ASSERT_EQ(seqs(r), (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(r.events[0].type, "b.created");
  EXPECT_EQ(r.events[0].actor, "dave");
  EXPECT_EQ(r.events[0].data, R"({"n":2})");
  EXPECT_EQ(r.events[0].account_id, "acct");
  EXPECT_EQ(r.events[0].user_id, "alice");
  EXPECT_EQ(r.events[0].id, "id2");
  EXPECT_EQ(r.events[1].actor, "");  // no actor
  EXPECT_EQ(seqs(since(kAlice, 0)), (std::vector<std::int64_t>{1, 2, 3}));
}

TEST_F(EventLogTest, SinceHonoursTheLimitAndSaysWhetherMoreRemain) {
  appendMany(kAlice, 5);
  auto r = since(kAlice, 0, 2);
  EXPECT_EQ(seqs(r), (std::vector<std::int64_t>{1, 2}));
  EXPECT_TRUE(r.more);
  r = since(kAlice, 2, 2);
  EXPECT_EQ(seqs(r), (std::vector<std::int64_t>{3, 4}));
  EXPECT_TRUE(r.more);
  r = since(kAlice, 3, 2);  // exactly the limit left
  EXPECT_EQ(seqs(r), (std::vector<std::int64_t>{4, 5}));
  EXPECT_FALSE(r.more);
  r = since(kAlice, 4, 2);
  EXPECT_EQ(seqs(r), (std::vector<std::int64_t>{5}));
  EXPECT_FALSE(r.more);
}

TEST_F(EventLogTest, SinceTheLastSeqIsEmptyAndBeyondItIsResync) {
  appendMany(kAlice, 3);
  auto r = since(kAlice, 3);
  EXPECT_TRUE(r.events.empty());
  EXPECT_FALSE(r.resync);
  EXPECT_FALSE(r.more);
  EXPECT_EQ(r.last_seq, 3);

  r = since(kAlice, 4);  // a seq we never issued: the client's state is not ours
  EXPECT_TRUE(r.resync);
  EXPECT_TRUE(r.events.empty());
  EXPECT_EQ(r.last_seq, 3);

  r = since(kBob, 0);  // a user without events yet
  EXPECT_FALSE(r.resync);
  EXPECT_TRUE(r.events.empty());
  EXPECT_EQ(r.last_seq, 0);
  EXPECT_TRUE(since(kBob, 1).resync);
  EXPECT_TRUE(since(kAlice, -1).resync);
}

TEST_F(EventLogTest, PurgeByCountKeepsTheNewestAndTheSeq) {
  appendMany(kAlice, 10);
  appendMany(kBob, 2);
  EXPECT_EQ(purge(Retention{24LL * 3600 * 1000, 3}), 7);  // alice's 1..7; bob keeps both
  EXPECT_EQ(purge(Retention{24LL * 3600 * 1000, 3}), 0);
  EXPECT_EQ(lastSeq(kAlice), 10);
  EXPECT_EQ(seqs(since(kAlice, 7)), (std::vector<std::int64_t>{8, 9, 10}));
  EXPECT_EQ(seqs(since(kAlice, 9)), (std::vector<std::int64_t>{10}));
  for (std::int64_t after : {0, 1, 6}) {  // 7 (or earlier) is gone: a gap the client cannot fill
    auto r = since(kAlice, after);
    EXPECT_TRUE(r.resync) << after;
    EXPECT_TRUE(r.events.empty()) << after;
    EXPECT_EQ(r.last_seq, 10);
  }
  EXPECT_EQ(seqs(since(kBob, 0)), (std::vector<std::int64_t>{1, 2}));
  EXPECT_EQ(append({kAlice})[0].seq, 11);  // seqs never go back
}

TEST_F(EventLogTest, PurgeByAgeKeepsTheSeq) {
  appendMany(kAlice, 3);
  appendMany(kBob, 1);
  clock_.advance(2h);
  appendMany(kAlice, 2);
  const Retention hour{3600 * 1000, 10000};
  EXPECT_EQ(purge(hour), 4);  // alice 1..3 and bob 1
  EXPECT_EQ(seqs(since(kAlice, 3)), (std::vector<std::int64_t>{4, 5}));
  EXPECT_TRUE(since(kAlice, 2).resync);
  // Everything of bob's is gone, but not his stream: since(last) is not a gap, since(0) is.
  EXPECT_EQ(lastSeq(kBob), 1);
  EXPECT_FALSE(since(kBob, 1).resync);
  EXPECT_TRUE(since(kBob, 0).resync);
  EXPECT_EQ(append({kBob})[0].seq, 2);
  clock_.advance(2h);
  EXPECT_EQ(purge(hour), 3);
  EXPECT_EQ(lastSeq(kAlice), 5);
  EXPECT_TRUE(since(kAlice, 4).resync);
  EXPECT_FALSE(since(kAlice, 5).resync);
  EXPECT_EQ(append({kAlice})[0].seq, 6);
}

TEST_F(EventLogTest, PurgeWorksInBatches) {
  appendMany(kAlice, 9);
  std::int64_t total = 0;
  for (int round = 0; round < 20; ++round) {
    auto removed = purge(Retention{24LL * 3600 * 1000, 2}, 3);
    EXPECT_LE(removed, 6);  // at most a batch per rule
    if (removed == 0)
      break;
    total += removed;
  }
  EXPECT_EQ(total, 7);
  EXPECT_EQ(seqs(since(kAlice, 7)), (std::vector<std::int64_t>{8, 9}));
}

TEST_F(EventLogTest, AGapInsideTheReplayIsResyncNotASilentLoss) {
  // Age-based purge can leave a hole in the middle (e.g. when the wall clock stepped back), and
  // a purge can run between since()'s statements: what a client gets must still have no gap.
  appendMany(kAlice, 5);
  exec("DELETE FROM events WHERE account_id = 'acct' AND user_id = 'alice' AND seq = 3");
  EXPECT_EQ(seqs(since(kAlice, 3)), (std::vector<std::int64_t>{4, 5}));
  auto r = since(kAlice, 1);
  EXPECT_TRUE(r.resync);
  EXPECT_TRUE(r.events.empty());
  EXPECT_EQ(r.last_seq, 5);
}

}  // namespace
}  // namespace confab::events
