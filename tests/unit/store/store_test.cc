// SPDX-License-Identifier: Apache-2.0
#include <confab/store/store.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <gtest/gtest.h>

#include <filesystem>
#include <stdexcept>

#include "store/migrations.h"
#include "test_support.h"

namespace confab::store {
namespace {

namespace fs = std::filesystem;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override { options_ = testing::testStoreOptions(dir_.path(), 2); }

  std::unique_ptr<Store> open() {
    auto s = Store::open(options_);
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
    return s.ok() ? std::move(*s) : nullptr;
  }

  static std::int64_t pragma(Database& db, const std::string& name) {
    auto st = db.prepare("PRAGMA " + name);
    EXPECT_TRUE(st.ok());
    EXPECT_TRUE(st->step().ok());
    return st->int64(0);
  }

  // The first column of the first row of `sql`, read through the store's reader pool.
  Result<std::int64_t> scalar(Store& store, std::string sql) {
    return runAsync(store.read<std::int64_t>(
        [sql](Database& db) -> Result<std::int64_t> { return db.queryInt(sql); }));
  }

  template <typename T>
  T runAsync(boost::asio::awaitable<T> a) {
    boost::asio::io_context ioc;
    auto f = boost::asio::co_spawn(ioc, std::move(a), boost::asio::use_future);
    ioc.run();
    return f.get();
  }

  testing::TestDir dir_{"confab-store"};
  StoreOptions options_;
};

TEST_F(StoreTest, AppliesMigrationsAndConnectionPragmas) {
  auto store = open();
  ASSERT_TRUE(store);
  EXPECT_EQ(store->schemaVersion(), static_cast<int>(embeddedMigrations().size()));
  auto r = store->writeNow<int>([&](Database& db) -> Result<int> {
    EXPECT_EQ(pragma(db, "foreign_keys"), 1);
    EXPECT_EQ(pragma(db, "synchronous"), 2);  // FULL
    EXPECT_EQ(pragma(db, "user_version"), store->schemaVersion());
    auto mode = db.prepare("PRAGMA journal_mode");
    EXPECT_TRUE(mode->step().ok());
    EXPECT_EQ(mode->text(0), "wal");
    return 0;
  });
  ASSERT_TRUE(r.ok());
}

TEST_F(StoreTest, ReopeningAppliesNothingTwice) {
  { ASSERT_TRUE(open()); }
  auto store = open();
  ASSERT_TRUE(store);
  EXPECT_EQ(store->schemaVersion(), static_cast<int>(embeddedMigrations().size()));
}

TEST_F(StoreTest, RefusesADatabaseFromANewerVersion) {
  {
    auto db = Database::open(options_.database);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->exec("PRAGMA user_version = 9999").ok());
  }
  auto s = Store::open(options_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::FailedPrecondition);
  EXPECT_NE(s.error().message.find("9999"), std::string::npos);
}

TEST_F(StoreTest, FailedMigrationLeavesVersionUnchanged) {
  auto db = Database::open(options_.database);
  ASSERT_TRUE(db.ok());
  std::vector<Migration> steps = {{1, "0001_ok.sql", "CREATE TABLE a (x INTEGER);"},
                                  {2, "0002_bad.sql", "CREATE TABLE b (x INTEGER); SELECT nope;"}};
  auto v = migrate(**db, steps);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(pragma(**db, "user_version"), 1);
  // The failed step's table is not there either: each step is one transaction.
  auto st = (*db)->prepare("SELECT count(*) FROM sqlite_master WHERE name = 'b'");
  ASSERT_TRUE(st->step().ok());
  EXPECT_EQ(st->int64(0), 0);
}

TEST_F(StoreTest, GapsInMigrationNumbersAreRefused) {
  auto db = Database::open(options_.database);
  ASSERT_TRUE(db.ok());
  std::vector<Migration> steps = {{1, "0001.sql", "SELECT 1;"}, {3, "0003.sql", "SELECT 1;"}};
  EXPECT_FALSE(migrate(**db, steps).ok());
}

TEST_F(StoreTest, AFailedWriteChangesNothing) {
  auto store = open();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store
                  ->writeNow<int>([](Database& db) -> Result<int> {
                    CONFAB_TRY(db.exec("CREATE TABLE t (x INTEGER NOT NULL)"));
                    return 0;
                  })
                  .ok());
  auto failed = store->writeNow<int>([](Database& db) -> Result<int> {
    CONFAB_TRY(db.exec("INSERT INTO t VALUES (1)"));
    return makeError(ErrorCode::InvalidArgument, "refused after the insert");
  });
  ASSERT_FALSE(failed.ok());
  auto count = scalar(*store, "SELECT count(*) FROM t");
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, 0);
}

// Work queued with Database::afterCommit runs only when the transaction commits, in order.
TEST_F(StoreTest, AfterCommitWorkRunsOnCommitAndIsDroppedOnRollback) {
  auto store = open();
  ASSERT_TRUE(store);
  std::vector<std::string> ran;
  auto ok = store->writeNow<int>([&](Database& db) -> Result<int> {
    db.afterCommit([&] { ran.push_back("first"); });
    db.afterCommit([&] { ran.push_back("second"); });
    EXPECT_TRUE(ran.empty());  // not before the commit
    return 0;
  });
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ran, (std::vector<std::string>{"first", "second"}));
  auto failed = store->writeNow<int>([&](Database& db) -> Result<int> {
    db.afterCommit([&] { ran.push_back("rolled back"); });
    return makeError(ErrorCode::InvalidArgument, "refused");
  });
  ASSERT_FALSE(failed.ok());
  EXPECT_THROW((void)store->writeNow<int>([&](Database& db) -> Result<int> {
    db.afterCommit([&] { ran.push_back("thrown"); });
    throw std::runtime_error("job failed");
  }),
               std::runtime_error);
  auto later = store->writeNow<int>([&](Database&) -> Result<int> { return 0; });
  ASSERT_TRUE(later.ok());
  EXPECT_EQ(ran, (std::vector<std::string>{"first", "second"}));
}

TEST_F(StoreTest, AsyncWriteIsVisibleToReadersAndRunsAfterCommitHook) {
  auto store = open();
  ASSERT_TRUE(store);
  bool hook = false;
  auto w = runAsync(store->write<int>(
      [](Database& db) -> Result<int> {
        CONFAB_TRY(db.exec("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (42);"));
        return 1;
      },
      [&](const int&) { hook = true; }));
  ASSERT_TRUE(w.ok());
  EXPECT_TRUE(hook);
  auto v = scalar(*store, "SELECT x FROM t");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, 42);
  auto probe = runAsync(store->probe());
  EXPECT_TRUE(probe.ok());
  EXPECT_TRUE(store->checkpoint().ok());
}

TEST_F(StoreTest, AJobThatThrowsLeavesNoOpenTransaction) {
  auto store = open();
  ASSERT_TRUE(store);
  EXPECT_THROW((void)store->writeNow<int>([](Database& db) -> Result<int> {
    (void)db.exec("CREATE TABLE t (x INTEGER)");
    throw std::runtime_error("job failed");
  }),
               std::runtime_error);
  // The writer is usable again and the failed job's table is not there.
  auto next = store->writeNow<int>([](Database& db) -> Result<int> {
    CONFAB_TRY(db.exec("CREATE TABLE t (x INTEGER)"));
    return 1;
  });
  EXPECT_TRUE(next.ok()) << (next.ok() ? "" : next.error().message);
  EXPECT_TRUE(runAsync(store->probe()).ok());
}

TEST_F(StoreTest, StatementErrorsAreValuesNotCrashes) {
  auto db = Database::open(options_.database);
  ASSERT_TRUE(db.ok());
  EXPECT_FALSE((*db)->prepare("SELEKT 1").ok());
  EXPECT_FALSE((*db)->exec("INSERT INTO missing VALUES (1)").ok());
}

}  // namespace
}  // namespace confab::store
