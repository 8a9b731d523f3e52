// SPDX-License-Identifier: Apache-2.0
// EventHub (who listens now) and EventBus (store, then publish) in process.
#include <confab/core/clock.h>
#include <confab/core/random.h>
#include <confab/events/event_bus.h>
#include <confab/events/event_hub.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "test_support.h"

namespace confab::events {
namespace {

namespace fs = std::filesystem;

Event event(const Recipient& to, std::int64_t seq, std::string type = "message.created") {
  return Event{
      "id" + std::to_string(seq), seq, std::move(type), 0, to.account_id, to.user_id, "", "{}"};
}

// Records what a sink receives as "account/user#seq".
struct Recorder {
  std::vector<std::string> got;
  EventSink sink() {
    return [this](const Event& e) {
      got.push_back(e.account_id + "/" + e.user_id + "#" + std::to_string(e.seq));
    };
  }
};

const Recipient kAlice{"acct", "alice"};
const Recipient kBob{"acct", "bob"};

TEST(EventHubTest, SubscribePublishUnsubscribe) {
  EventHub hub;
  Recorder r;
  auto sub = hub.subscribe(kAlice, r.sink());
  EXPECT_EQ(hub.size(), 1u);
  hub.publish({event(kAlice, 1), event(kAlice, 2)});
  EXPECT_EQ(r.got, (std::vector<std::string>{"acct/alice#1", "acct/alice#2"}));
  sub.reset();
  EXPECT_EQ(hub.size(), 0u);
  hub.publish({event(kAlice, 3)});
  EXPECT_EQ(r.got.size(), 2u);
  sub.reset();  // twice is harmless
}

TEST(EventHubTest, OnlyTheRecipientsSubscribersGetAnEvent) {
  EventHub hub;
  Recorder alice1, alice2, bob, otherAccount;
  auto s1 = hub.subscribe(kAlice, alice1.sink());
  auto s2 = hub.subscribe(kAlice, alice2.sink());
  auto s3 = hub.subscribe(kBob, bob.sink());
  auto s4 = hub.subscribe(Recipient{"acct2", "alice"}, otherAccount.sink());
  hub.publish({event(kAlice, 1), event(kBob, 7), event(Recipient{"acct", "carol"}, 1)});
  EXPECT_EQ(alice1.got, (std::vector<std::string>{"acct/alice#1"}));
  EXPECT_EQ(alice2.got, alice1.got);
  EXPECT_EQ(bob.got, (std::vector<std::string>{"acct/bob#7"}));
  EXPECT_TRUE(otherAccount.got.empty());
  s1.reset();
  hub.publish({event(kAlice, 2)});
  EXPECT_EQ(alice1.got.size(), 1u);
  EXPECT_EQ(alice2.got.size(), 2u);
}

TEST(EventHubTest, SeparatorsInIdsDoNotCrossTheTenantBoundary) {
  // Ids come from outside (tokens, other modules): "a/b" + "c" is not "a" + "b/c".
  EventHub hub;
  Recorder mallory;
  auto sub = hub.subscribe(Recipient{"a", "b/c"}, mallory.sink());
  hub.publish({event(Recipient{"a/b", "c"}, 1)});
  EXPECT_TRUE(mallory.got.empty());
  hub.publish({event(Recipient{"a", "b/c"}, 2)});
  EXPECT_EQ(mallory.got, (std::vector<std::string>{"a/b/c#2"}));
}

TEST(EventHubTest, SubscriptionsMoveAndEndOnce) {
  EventHub hub;
  Recorder a, b;
  EventHub::Subscription kept;
  {
    auto temp = hub.subscribe(kAlice, a.sink());
    kept = std::move(temp);  // the moved-from one ends nothing when destroyed
  }
  EXPECT_EQ(hub.size(), 1u);
  hub.publish({event(kAlice, 1)});
  EXPECT_EQ(a.got.size(), 1u);
  kept = hub.subscribe(kAlice, b.sink());  // assigning ends the old subscription
  EXPECT_EQ(hub.size(), 1u);
  hub.publish({event(kAlice, 2)});
  EXPECT_EQ(a.got.size(), 1u);
  EXPECT_EQ(b.got, (std::vector<std::string>{"acct/alice#2"}));
  EventHub::Subscription moved(std::move(kept));
  EXPECT_EQ(hub.size(), 1u);
  moved.reset();
  EXPECT_EQ(hub.size(), 0u);
}

TEST(EventHubTest, ASinkMayUnsubscribeWhileBeingCalled) {
  EventHub hub;
  int calls = 0;
  EventHub::Subscription sub;
  sub = hub.subscribe(kAlice, [&](const Event&) {
    ++calls;
    sub.reset();  // no deadlock: sinks run without the hub's lock
  });
  hub.publish({event(kAlice, 1), event(kAlice, 2)});
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(hub.size(), 0u);
}

// A deterministic Random: 0, 1, 2, ... as bytes.
class CountingRandom final : public core::Random {
 public:
  void fill(std::span<std::uint8_t> out) override {
    for (auto& b : out)
      b = static_cast<std::uint8_t>(next_++);
  }

 private:
  std::uint8_t next_ = 0;
};

class EventBusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = testing::openTestStore(dir_.path());
    ASSERT_TRUE(store_);
  }
  void TearDown() override { store_.reset(); }

  Result<std::vector<Event>> emit(EventBus& bus, std::vector<Recipient> to, std::string data) {
    boost::asio::io_context ioc;
    auto f = boost::asio::co_spawn(
        ioc, bus.emit(std::move(to), "message.created", "carol", std::move(data)),
        boost::asio::use_future);
    ioc.run();
    return f.get();
  }

  testing::TestDir dir_{"confab-bus"};
  std::unique_ptr<store::Store> store_;
};

TEST_F(EventBusTest, EmitStoresThenPublishesToTheRecipients) {
  EventHub hub;
  core::ManualClock clock;
  CountingRandom random;
  EventBus bus(*store_, hub, clock, random);
  std::vector<Event> seen;
  std::vector<std::int64_t> stored_when_seen;
  auto sub = hub.subscribe(kBob, [&](const Event& e) {
    seen.push_back(e);
    // Published after the commit: another connection already sees it. (The sink runs on the
    // store's writer thread, so it must not wait for a write itself.)
    store::OpenOptions reader;
    reader.path = store_->path();
    auto db = store::Database::open(reader);
    auto last = db.ok() ? EventLog::lastSeq(**db, kBob) : Result<std::int64_t>(db.error());
    stored_when_seen.push_back(last.ok() ? *last : -1);
  });
  auto r = emit(bus, {kAlice, kBob}, R"({"text":"hi"})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].id, "000102030405060708090a0b0c0d0e0f");
  EXPECT_EQ((*r)[0].id, (*r)[1].id);
  EXPECT_EQ((*r)[0].ts, core::toUnixMillis(clock.now()));
  EXPECT_EQ((*r)[0].actor, "carol");
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].user_id, "bob");
  EXPECT_EQ(seen[0].seq, 1);
  EXPECT_EQ(seen[0].data, R"({"text":"hi"})");
  EXPECT_EQ(stored_when_seen, (std::vector<std::int64_t>{1}));
  auto again = emit(bus, {kBob}, "{}");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)[0].seq, 2);
  EXPECT_EQ(seen.size(), 2u);
}

TEST(EventEnvelopeTest, ToJsonIsTheWireEnvelope) {
  Event e{"abc", 7, "message.created", 1767225600000, "acct", "alice", "", R"({"n":1})"};
  EXPECT_EQ(e.toJson(), R"({"account_id":"acct","actor":null,"data":{"n":1},"id":"abc","seq":7,)"
                        R"("ts":1767225600000,"type":"message.created"})");
  e.actor = "carol";
  e.data = "not json";
  EXPECT_EQ(e.toJson(), R"({"account_id":"acct","actor":"carol","data":{},"id":"abc","seq":7,)"
                        R"("ts":1767225600000,"type":"message.created"})");
}

}  // namespace
}  // namespace confab::events
