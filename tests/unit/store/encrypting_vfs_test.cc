// SPDX-License-Identifier: Apache-2.0
// The encrypting VFS: nothing readable reaches the disk, tampering is caught per read, the wrong
// key and plaintext files are refused, and committed transactions survive a simulated power cut.
#include <confab/core/random.h>
#include <confab/store/encrypting_vfs.h>
#include <confab/store/store.h>

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "store/crash_vfs.h"
#include "test_support.h"

namespace confab::store {
namespace {

namespace fs = std::filesystem;
using confab::testing::TestDir;

constexpr char kMarker[] = "MARKER-4f1c9e-plaintext-must-not-reach-disk";

core::crypto::SecretKey randomKey() {
  core::crypto::SecretKey k;
  core::CsprngRandom::instance().fill(k.mutableBytes());
  return k;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Every file under `dir` whose bytes contain `needle`.
std::vector<std::string> filesContaining(const fs::path& dir, const std::string& needle) {
  std::vector<std::string> hits;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file() && slurp(e.path()).find(needle) != std::string::npos) {
      hits.push_back(e.path().string());
    }
  }
  return hits;
}

OpenOptions encrypted(const fs::path& file, const EncryptingVfs& vfs) {
  OpenOptions o;
  o.path = file.string();
  o.vfs = vfs.name();
  o.reserve_bytes = kPageReserveBytes;
  return o;
}

// Fills table t with `rows` rows, each carrying the marker in a ~1 KiB text.
void fill(Database& db, int rows, int from = 0) {
  ASSERT_TRUE(db.exec("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, body TEXT)").ok());
  ASSERT_TRUE(db.exec("BEGIN").ok());
  auto ins = db.prepare("INSERT INTO t(id, body) VALUES (?, ?)");
  ASSERT_TRUE(ins.ok());
  for (int i = from; i < from + rows; ++i) {
    ins->bind(1, std::int64_t(i)).bind(2, std::string(kMarker) + std::string(1000, 'x'));
    ASSERT_TRUE(ins->run().ok());
    ins->reset();
  }
  ASSERT_TRUE(db.exec("COMMIT").ok());
}

TEST(EncryptingVfs, NoPlaintextInTheDatabaseOrItsWal) {
  TestDir dir("vfs");
  auto vfs = EncryptingVfs::create(randomKey());
  ASSERT_TRUE(vfs.ok());
  auto db = Database::open(encrypted(dir.path() / "c.db", **vfs));
  ASSERT_TRUE(db.ok()) << db.error().message;
  fill(**db, 500);
  // Before a checkpoint the rows sit in the WAL; look at both states.
  EXPECT_TRUE(fs::file_size(dir.path() / "c.db-wal") > 0);
  EXPECT_EQ(filesContaining(dir.path(), kMarker), std::vector<std::string>{});
  ASSERT_TRUE((*db)->exec("PRAGMA wal_checkpoint(TRUNCATE)").ok());
  EXPECT_EQ(filesContaining(dir.path(), kMarker), std::vector<std::string>{});
  EXPECT_EQ(filesContaining(dir.path(), "SQLite format 3"), std::vector<std::string>{});
  EXPECT_EQ(*(*db)->queryInt("SELECT count(*) FROM t WHERE body LIKE 'MARKER%'"), 500);
  // Every page keeps 32 bytes for its salt and tag.
  auto stmt = (*db)->prepare("SELECT * FROM pragma_page_size, pragma_integrity_check");
  ASSERT_TRUE(stmt.ok() && *stmt->step());
  EXPECT_EQ(stmt->int64(0), kPageBytes);
  EXPECT_EQ(stmt->text(1), "ok");
  EXPECT_EQ(fs::file_size(dir.path() / "c.db") % kPageBytes, 0u);
}

// Every sealed image names its epoch and counter (docs/storage-format.md); under one database key
// no (epoch, counter) pair may appear twice, across rewrites of a page, the WAL and the database
// file, and across runs (each VFS instance starts its own epoch).
TEST(EncryptingVfs, NoTwoWritesShareAnEpochAndCounter) {
  TestDir dir("vfs");
  auto key = randomKey();
  std::set<std::string> seen;
  std::set<std::string> epochs;
  int images = 0;
  auto collect = [&](const fs::path& file, std::size_t first, std::size_t stride) {
    std::string raw = slurp(file);
    for (std::size_t at = first; at + kPageBytes <= raw.size(); at += stride) {
      std::string trailer = raw.substr(at + kPageBytes - kPageReserveBytes, 16);
      ++images;
      EXPECT_TRUE(seen.insert(trailer).second) << file << " offset " << at;
      epochs.insert(trailer.substr(0, 12));
    }
  };
  for (int run = 0; run < 2; ++run) {
    auto vfs = EncryptingVfs::create(key);
    auto db = Database::open(encrypted(dir.path() / "c.db", **vfs));
    ASSERT_TRUE(db.ok()) << db.error().message;
    ASSERT_TRUE((*db)->exec("PRAGMA wal_autocheckpoint=0").ok());
    // The same rows rewritten in many transactions: the same pages sealed again and again.
    for (int round = 0; round < 20; ++round) {
      fill(**db, 5, 0);
      ASSERT_TRUE((*db)->exec("DELETE FROM t").ok());
    }
    collect(dir.path() / "c.db-wal", 32 + 24, 24 + kPageBytes);
    ASSERT_TRUE((*db)->exec("PRAGMA wal_checkpoint(TRUNCATE)").ok());
  }
  collect(dir.path() / "c.db", 0, kPageBytes);
  EXPECT_GT(images, 200);
  EXPECT_EQ(epochs.size(), 2u) << "one epoch per run of the VFS";
}

TEST(EncryptingVfs, ReopensWithTheSameKeyAndRefusesAnother) {
  TestDir dir("vfs");
  auto key = randomKey();
  {
    auto vfs = EncryptingVfs::create(key);
    auto db = Database::open(encrypted(dir.path() / "c.db", **vfs));
    ASSERT_TRUE(db.ok());
    fill(**db, 20);
  }
  {
    auto vfs = EncryptingVfs::create(key);
    EXPECT_TRUE((*vfs)->checkDatabaseFile((dir.path() / "c.db").string()).ok());
    auto db = Database::open(encrypted(dir.path() / "c.db", **vfs));
    ASSERT_TRUE(db.ok());
    EXPECT_EQ(*(*db)->queryInt("SELECT count(*) FROM t"), 20);
  }
  auto other = EncryptingVfs::create(randomKey());
  auto check = (*other)->checkDatabaseFile((dir.path() / "c.db").string());
  ASSERT_FALSE(check.ok());
  EXPECT_EQ(check.error().code, ErrorCode::FailedPrecondition);
  EXPECT_EQ(check.error().message,
            (dir.path() / "c.db").string() +
                ": page 1 failed authentication — the database key in the key store does not "
                "match this database (wrong key store or master key?), or the file is corrupt");
  // Opening applies pragmas, which read page 1: that read fails.
  auto db = Database::open(encrypted(dir.path() / "c.db", **other));
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.error().message.rfind("storage corruption: ", 0), 0u) << db.error().message;
  EXPECT_GE((*other)->corruptPages(), 1u);
}

TEST(EncryptingVfs, RefusesAPlaintextDatabase) {
  TestDir dir("vfs");
  {
    OpenOptions plainOptions;
    plainOptions.path = (dir.path() / "p.db").string();
    auto plain = Database::open(plainOptions);
    ASSERT_TRUE(plain.ok());
    ASSERT_TRUE((*plain)->exec("CREATE TABLE x(a)").ok());
  }
  auto vfs = EncryptingVfs::create(randomKey());
  auto check = (*vfs)->checkDatabaseFile((dir.path() / "p.db").string());
  ASSERT_FALSE(check.ok());
  EXPECT_EQ(check.error().message,
            (dir.path() / "p.db").string() +
                " is a plaintext SQLite database; the store only opens encrypted ones");
  auto db = Database::open(encrypted(dir.path() / "p.db", **vfs));
  EXPECT_FALSE(db.ok());
}

TEST(EncryptingVfs, AFlippedByteFailsThatReadAndOnlyThatRead) {
  TestDir dir("vfs");
  auto vfs = EncryptingVfs::create(randomKey());
  auto path = dir.path() / "c.db";
  {
    auto db = Database::open(encrypted(path, **vfs));
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)
                    ->exec("CREATE TABLE a(v TEXT); CREATE TABLE b(v TEXT);"
                           "INSERT INTO a VALUES ('alpha'); INSERT INTO b VALUES ('beta');"
                           "PRAGMA wal_checkpoint(TRUNCATE);")
                    .ok());
  }
  // Page 2 is table a's root, page 3 table b's. Flip one ciphertext byte of page 2.
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(kPageBytes + 100);
    char c = 0;
    f.read(&c, 1);
    c = char(c ^ 0x01);
    f.seekp(kPageBytes + 100);
    f.write(&c, 1);
  }
  auto db = Database::open(encrypted(path, **vfs));
  ASSERT_TRUE(db.ok());
  auto before = (*vfs)->corruptPages();
  auto bad = (*db)->queryInt("SELECT count(*) FROM a");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::Internal);
  EXPECT_EQ(bad.error().message.rfind("storage corruption: ", 0), 0u) << bad.error().message;
  EXPECT_NE(bad.error().message.find("read a page that failed authentication"), std::string::npos);
  EXPECT_EQ((*vfs)->corruptPages(), before + 1);
  auto good = (*db)->prepare("SELECT v FROM b");
  ASSERT_TRUE(good.ok());
  ASSERT_TRUE(*good->step());
  EXPECT_EQ(good->text(0), "beta");
}

// Temporary files (sorter spills, temp tables, sub-journals) are sealed with a throw-away key.
// They are unlinked while open, so read them through /proc/self/fd while the connection lives.
TEST(EncryptingVfs, TemporaryFilesHoldNoPlaintext) {
  TestDir dir("vfs");
  auto vfs = EncryptingVfs::create(randomKey());
  auto db = Database::open(encrypted(dir.path() / "c.db", **vfs));
  ASSERT_TRUE(db.ok());
  fill(**db, 2000);
  ASSERT_TRUE((*db)
                  ->exec("PRAGMA temp_store=FILE; PRAGMA cache_size=-64;"
                         "CREATE TEMP TABLE copy AS SELECT * FROM t ORDER BY random();")
                  .ok());
  auto sorted = (*db)->prepare("SELECT body FROM copy ORDER BY substr(body, 40) DESC, id");
  ASSERT_TRUE(sorted.ok());
  ASSERT_TRUE(*sorted->step());
  EXPECT_EQ(sorted->text(0).substr(0, sizeof kMarker - 1), kMarker);
  int tempFiles = 0;
  for (const auto& e : fs::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    auto target = fs::read_symlink(e.path(), ec).string();
    if (ec || target.find("etilqs") == std::string::npos) {
      continue;  // SQLite names its temporary files etilqs_*
    }
    ++tempFiles;
    EXPECT_EQ(slurp(e.path()).find(kMarker), std::string::npos) << target;
  }
  EXPECT_GE(tempFiles, 1);
  EXPECT_EQ(*(*db)->queryInt("SELECT count(*) FROM copy"), 2000);
}

// A rollback journal (not the daemon's mode, but SQLite may use one) holds sealed page images.
TEST(EncryptingVfs, RollbackJournalHoldsNoPlaintext) {
  TestDir dir("vfs");
  auto vfs = EncryptingVfs::create(randomKey());
  auto db = Database::open(encrypted(dir.path() / "c.db", **vfs));
  ASSERT_TRUE(db.ok());
  fill(**db, 200);
  ASSERT_TRUE((*db)->exec("PRAGMA journal_mode=PERSIST").ok());
  ASSERT_TRUE((*db)->exec("BEGIN; UPDATE t SET body = 'changed' WHERE id < 150; COMMIT;").ok());
  ASSERT_TRUE(fs::file_size(dir.path() / "c.db-journal") > std::uintmax_t(kPageBytes));
  EXPECT_EQ(filesContaining(dir.path(), kMarker), std::vector<std::string>{});
  EXPECT_EQ(*(*db)->queryInt("SELECT count(*) FROM t WHERE body = 'changed'"), 150);
  EXPECT_EQ(*(*db)->queryInt("SELECT count(*) FROM t WHERE body LIKE 'MARKER%'"), 50);
}

// A flipped byte in a committed WAL frame that later commits follow is corruption, reported
// loudly; it must not pass for a frame torn by a crash (recovery would then silently drop every
// later transaction).
TEST(EncryptingVfs, ATamperedCommittedWalFrameIsCorruptionNotATornFrame) {
  TestDir dir("vfs");
  auto vfs = EncryptingVfs::create(randomKey());
  auto copy = dir.path() / "copy";
  fs::create_directories(copy);
  {
    auto db = Database::open(encrypted(dir.path() / "c.db", **vfs));
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->exec("PRAGMA wal_autocheckpoint=0").ok());
    for (int i = 0; i < 10; ++i) {
      fill(**db, 10, i * 10);  // ten transactions, ten commit frames
    }
    // Copy database and WAL while the connection is open, as a crash would leave them.
    fs::copy_file(dir.path() / "c.db", copy / "c.db");
    fs::copy_file(dir.path() / "c.db-wal", copy / "c.db-wal");
  }
  auto wal = copy / "c.db-wal";
  ASSERT_GT(fs::file_size(wal), std::uintmax_t(10 * (24 + kPageBytes)));
  {
    // Frame 1's page image starts at 32 + (24 + 4096) + 24.
    std::fstream f(wal, std::ios::in | std::ios::out | std::ios::binary);
    std::streamoff at = 32 + (24 + kPageBytes) + 24 + 200;
    f.seekg(at);
    char c = 0;
    f.read(&c, 1);
    c = char(c ^ 0x20);
    f.seekp(at);
    f.write(&c, 1);
  }
  auto before = (*vfs)->corruptPages();
  auto db = Database::open(encrypted(copy / "c.db", **vfs));
  Result<std::int64_t> rows =
      db.ok() ? (*db)->queryInt("SELECT count(*) FROM t") : Result<std::int64_t>(db.error());
  ASSERT_FALSE(rows.ok()) << "recovery dropped the tail silently: " << *rows << " rows";
  EXPECT_EQ(rows.error().message.rfind("storage corruption: ", 0), 0u) << rows.error().message;
  EXPECT_GT((*vfs)->corruptPages(), before);
}

// A power cut at any write: every transaction whose COMMIT returned is there afterwards, and the
// database is intact. The crash point sweeps through page writes, WAL appends and checkpoints.
TEST(EncryptingVfs, CommittedTransactionsSurviveAPowerCutAtAnyWrite) {
  confab::testing::CrashVfs crashVfs("crashsim");
  auto key = randomKey();
  auto vfs = EncryptingVfs::create(key, crashVfs.name());
  ASSERT_TRUE(vfs.ok());
  int crashes = 0;
  for (long crashAt = 1; crashAt < 600; crashAt += 3) {
    TestDir dir("vfs-crash-" + std::to_string(crashAt));
    StoreOptions options = confab::testing::testStoreOptions(dir.path(), 1);
    options.database.vfs = (*vfs)->name();
    options.database.reserve_bytes = kPageReserveBytes;
    std::set<std::int64_t> committed;
    crashVfs.crashAtWrite(crashAt);
    {
      auto store = Store::open(options);
      if (store.ok()) {
        (void)(*store)->writeNow<int>([](Database& db) -> Result<int> {
          CONFAB_TRY(
              db.exec("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, body TEXT);"
                      "PRAGMA wal_autocheckpoint=8;"));
          return 0;
        });
        for (std::int64_t i = 0; i < 60 && !crashVfs.crashed(); ++i) {
          auto r = (*store)->writeNow<int>([i](Database& db) -> Result<int> {
            auto ins = db.prepare("INSERT INTO t(id, body) VALUES (?, ?)");
            if (!ins.ok())
              return ins.error();
            ins->bind(1, i).bind(2, std::string(3000, char('a' + i % 26)));
            CONFAB_TRY(ins->run());
            return 0;
          });
          if (r.ok()) {
            committed.insert(i);
          }
        }
      }
    }
    crashes += crashVfs.crashed() ? 1 : 0;
    crashVfs.restart();
    auto store = Store::open(options);
    ASSERT_TRUE(store.ok()) << "crash at write " << crashAt << ": " << store.error().message;
    auto verify = (*store)->writeNow<std::string>([&](Database& db) -> Result<std::string> {
      auto s = db.prepare("PRAGMA integrity_check");
      if (!s.ok())
        return s.error();
      CONFAB_TRY(s->step());
      std::string result = s->text(0);
      for (auto id : committed) {
        auto q = db.prepare("SELECT length(body) FROM t WHERE id = ?");
        if (!q.ok())
          return q.error();
        q->bind(1, id);
        auto found = q->step();
        if (!found.ok() || !*found || q->int64(0) != 3000) {
          return makeError(ErrorCode::Internal,
                           "lost committed row " + std::to_string(id) + " of " +
                               std::to_string(committed.size()) + ", integrity: " + result +
                               (found.ok() ? "" : ", " + found.error().message));
        }
      }
      return result;
    });
    ASSERT_TRUE(verify.ok()) << "crash at write " << crashAt << ": " << verify.error().message;
    EXPECT_EQ(*verify, "ok") << "crash at write " << crashAt;
  }
  EXPECT_GT(crashes, 150);  // the sweep really cut power mid-workload
}

}  // namespace
}  // namespace confab::store
