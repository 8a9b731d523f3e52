// SPDX-License-Identifier: Apache-2.0
// Crypto-shredding, backup and restore, and re-encryption of the database, on a real encrypted
// data directory: the key store, the encrypting VFS, the store and the blob store together.
#include <confab/core/random.h>
#include <confab/store/backup.h>
#include <confab/store/blob_store.h>
#include <confab/store/encrypting_vfs.h>
#include <confab/store/keys.h>
#include <confab/store/rekey.h>
#include <confab/store/shred.h>
#include <confab/store/store.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "test_support.h"

namespace confab::store {
namespace {

namespace fs = std::filesystem;
using confab::testing::TestDir;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// One data directory as the daemon lays it out, with its master key outside it.
struct DataDir {
  fs::path data;
  fs::path keyFile;
  core::crypto::SecretKey master;
  std::unique_ptr<KeyStore> keys;
  std::unique_ptr<EncryptingVfs> vfs;
  std::unique_ptr<Store> store;
  std::unique_ptr<BlobStore> blobs;

  DataDir(const fs::path& root, const fs::path& keyFile, const core::crypto::SecretKey& master)
      : data(root), keyFile(keyFile), master(master) {
    open();
  }

  void open() {
    fs::create_directories(data);
    KeyStoreOptions ko;
    ko.shred_ledger = keyFile.string() + ".shredded";
    auto k = KeyStore::open(data, master, core::CsprngRandom::instance(), true, ko);
    ASSERT_TRUE(k.ok()) << k.error().message;
    keys = std::move(*k);
    vfs = std::move(*EncryptingVfs::create(keys->databaseKey()));
    StoreOptions so;
    so.database.path = (data / "confab.db").string();
    so.database.vfs = vfs->name();
    so.database.reserve_bytes = kPageReserveBytes;
    so.read_connections = 1;
    auto s = Store::open(so);
    ASSERT_TRUE(s.ok()) << s.error().message;
    store = std::move(*s);
    blobs = std::make_unique<BlobStore>(data / "blobs", *keys, core::CsprngRandom::instance());
  }
  void close() {
    blobs.reset();
    store.reset();
    vfs.reset();
    keys.reset();
  }

  BlobInfo put(const std::string& account, const std::string& text) {
    auto info = store->writeNow<BlobInfo>([&](Database& db) -> Result<BlobInfo> {
      auto w = blobs->create(account, "u1", 1 << 20);
      if (!w.ok())
        return w.error();
      CONFAB_TRY((*w)->write(core::crypto::asBytes(text)));
      auto sealed = (*w)->seal();
      if (!sealed.ok())
        return sealed.error();
      CONFAB_TRY(recordBlob(db, *sealed, 0));
      return *sealed;
    });
    EXPECT_TRUE(info.ok()) << info.error().message;
    return *info;
  }

  Result<std::string> get(const std::string& account, const std::string& id) {
    return store->writeNow<std::string>([&](Database& db) -> Result<std::string> {
      auto r = blobs->open(db, account, id);
      if (!r.ok())
        return r.error();
      std::string out((*r)->size(), '\0');
      auto n = (*r)->read({reinterpret_cast<std::uint8_t*>(out.data()), out.size()});
      if (!n.ok())
        return n.error();
      return out;
    });
  }
};

class Storage : public ::testing::Test {
 protected:
  Storage() : dir_("storage") {
    keyFile_ = dir_.path() / "keys" / "master.key";
    auto k = createMasterKeyFile(keyFile_, core::CsprngRandom::instance());
    EXPECT_TRUE(k.ok());
    master_ = *k;
  }
  TestDir dir_;
  fs::path keyFile_;
  core::crypto::SecretKey master_;
};

TEST_F(Storage, ShreddingAnAccountLeavesItsBytesUnreadable) {
  DataDir d(dir_.path() / "var", keyFile_, master_);
  const std::string secretA = "ACCOUNT-A-SECRET-" + std::string(3000, 'a');
  auto a = d.put("acct-a", secretA);
  auto b = d.put("acct-b", "account b keeps its data");
  const std::string leftover = slurp(d.blobs->pathOf(a.id));  // what a disk image would keep

  auto report =
      shredAccountFiles(*d.store, *d.keys, *d.blobs, "acct-a", std::chrono::system_clock::now());
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(report->keys_destroyed, 1);
  EXPECT_EQ(report->files_deleted, 1);
  EXPECT_EQ(report->bytes_deleted, a.stored_bytes);
  EXPECT_FALSE(fs::exists(d.blobs->pathOf(a.id)));
  auto gone = d.get("acct-a", a.id);
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().message, "blob " + a.id + " not found");

  // The bytes that survived elsewhere: no plaintext, and nothing can open them any more.
  EXPECT_EQ(leftover.find("ACCOUNT-A-SECRET"), std::string::npos);
  {
    std::ofstream put(d.blobs->pathOf(a.id), std::ios::binary);
    put << leftover;
  }
  auto reader = d.blobs->open(a);
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.error().code, ErrorCode::NotFound);
  EXPECT_EQ(reader.error().message, "blob " + a.id + ": data key " + a.key_id + " was destroyed");
  // The ledger beside the master key names the key.
  EXPECT_NE(slurp(keyFile_.string() + ".shredded").find(a.key_id), std::string::npos);
  // Another account is untouched.
  EXPECT_EQ(*d.get("acct-b", b.id), "account b keeps its data");
  // Idempotent.
  auto again =
      shredAccountFiles(*d.store, *d.keys, *d.blobs, "acct-a", std::chrono::system_clock::now());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->keys_destroyed, 0);
}

TEST_F(Storage, RestoringAnOlderBackupDoesNotBringAShreddedAccountBack) {
  DataDir d(dir_.path() / "var", keyFile_, master_);
  auto a = d.put("acct-a", "A's file");
  auto b = d.put("acct-b", "B's file");
  auto archive = dir_.path() / "before-shredding.tar";
  auto written = writeBackup(d.data, *d.keys, archive);
  ASSERT_TRUE(written.ok()) << written.error().message;
  EXPECT_EQ(written->blobs, 2);
  EXPECT_EQ(fs::status(archive).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  ASSERT_TRUE(
      shredAccountFiles(*d.store, *d.keys, *d.blobs, "acct-a", std::chrono::system_clock::now())
          .ok());
  d.close();

  auto target = dir_.path() / "restored";
  auto restored = restoreBackup(archive, target, master_, {keyFile_.string() + ".shredded"},
                                core::CsprngRandom::instance());
  ASSERT_TRUE(restored.ok()) << restored.error().message;
  EXPECT_EQ(restored->shredded_keys, std::vector<std::string>{a.key_id});
  EXPECT_EQ(restored->shredded_blobs, 1);
  EXPECT_EQ(restored->blobs, 1);
  EXPECT_FALSE(fs::exists(target / "blobs" / a.id.substr(0, 2) / (a.id + ".blob")));

  DataDir r(target, keyFile_, master_);
  EXPECT_EQ(*r.get("acct-b", b.id), "B's file");
  auto lost = r.get("acct-a", a.id);
  ASSERT_FALSE(lost.ok());
  EXPECT_EQ(lost.error().message, "blob " + a.id + " not found");
  auto key = r.keys->keyById(a.key_id);
  ASSERT_FALSE(key.ok());
  EXPECT_EQ(key.error().message, "data key " + a.key_id + " was destroyed");
}

TEST_F(Storage, RestoreRefusesAWrongKeyADamagedArchiveAndABusyDirectory) {
  DataDir d(dir_.path() / "var", keyFile_, master_);
  d.put("acct-a", "payload");
  auto archive = dir_.path() / "b.tar";
  ASSERT_TRUE(writeBackup(d.data, *d.keys, archive).ok());
  // Never inside the data directory, never over an existing file.
  auto inside = writeBackup(d.data, *d.keys, d.data / "x.tar");
  ASSERT_FALSE(inside.ok());
  EXPECT_EQ(inside.error().message,
            "the backup file must lie outside the data directory " + d.data.string());
  auto over = writeBackup(d.data, *d.keys, archive);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().message,
            archive.string() + " exists already; a backup never overwrites a file");

  core::crypto::SecretKey wrong;
  core::CsprngRandom::instance().fill(wrong.mutableBytes());
  auto r1 = restoreBackup(archive, dir_.path() / "r1", wrong, {}, core::CsprngRandom::instance());
  ASSERT_FALSE(r1.ok());
  EXPECT_EQ(r1.error().code, ErrorCode::FailedPrecondition);
  EXPECT_EQ(r1.error().message.rfind("the master key does not match the key store ", 0), 0u)
      << r1.error().message;
  EXPECT_FALSE(fs::exists(dir_.path() / "r1" / "confab.db"));

  // The right key but no shred ledger: refused, since shredded accounts could come back.
  auto r0 = restoreBackup(archive, dir_.path() / "r0", master_, {}, core::CsprngRandom::instance());
  ASSERT_FALSE(r0.ok());
  EXPECT_EQ(r0.error().message.rfind("no shred ledger: without it, accounts terminated", 0), 0u)
      << r0.error().message;
  EXPECT_FALSE(fs::exists(dir_.path() / "r0" / "confab.db"));

  // One flipped byte in the database entry: the manifest's SHA-256 catches it.
  std::string bytes = slurp(archive);
  auto at = bytes.find("confab.db");
  ASSERT_NE(at, std::string::npos);
  bytes[at + 512 + 3000] ^= 1;  // inside the entry's data, after its 512-byte tar header
  auto damaged = dir_.path() / "damaged.tar";
  std::ofstream(damaged, std::ios::binary) << bytes;
  auto r2 = restoreBackup(damaged, dir_.path() / "r2", master_, {}, core::CsprngRandom::instance());
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.error().message, damaged.string() +
                                    " is damaged: entry confab.db does not match its size and "
                                    "SHA-256 in the manifest");
  EXPECT_FALSE(fs::exists(dir_.path() / "r2" / "confab.db"));

  // The live data directory: locked by its key store, and not empty.
  auto r3 = restoreBackup(archive, d.data, master_, {}, core::CsprngRandom::instance());
  ASSERT_FALSE(r3.ok());
  EXPECT_EQ(r3.error().message, "data directory " + d.data.string() +
                                    " is in use by another process (stop confabd first)");
}

TEST_F(Storage, RekeyDatabaseReencryptsUnderANewKeyAndKeepsEveryRow) {
  DataDir d(dir_.path() / "var", keyFile_, master_);
  auto a = d.put("acct-a", "still here after re-encryption");
  auto oldKey = d.keys->databaseKey();
  auto oldId = d.keys->databaseKeyId();
  d.blobs.reset();
  d.store.reset();
  d.vfs.reset();

  auto r = rekeyDatabase(d.data, *d.keys);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->old_key_id, oldId);
  EXPECT_NE(r->new_key_id, oldId);
  EXPECT_EQ(d.keys->databaseKeyId(), r->new_key_id);
  EXPECT_GT(r->pages, 1);
  EXPECT_FALSE(fs::exists(d.data / "confab.db.rekey"));
  auto oldVfs = EncryptingVfs::create(oldKey);
  EXPECT_FALSE((*oldVfs)->checkDatabaseFile((d.data / "confab.db").string()).ok());
  d.close();
  d.open();
  EXPECT_EQ(*d.get("acct-a", a.id), "still here after re-encryption");
}

TEST_F(Storage, AnInterruptedRekeyIsFinishedOrUndoneFromPageOne) {
  DataDir d(dir_.path() / "var", keyFile_, master_);
  auto a = d.put("acct-a", "survives");
  d.blobs.reset();
  d.store.reset();
  d.vfs.reset();
  // Crash after staging the key (and maybe a partial copy), before the rename: undone.
  auto oldId = d.keys->databaseKeyId();
  ASSERT_TRUE(d.keys->stageDatabaseKey().ok());
  std::ofstream(d.data / "confab.db.rekey") << "partial";
  ASSERT_TRUE(finishInterruptedRekey(d.data, *d.keys).ok());
  EXPECT_FALSE(d.keys->pendingDatabaseKey().has_value());
  EXPECT_EQ(d.keys->databaseKeyId(), oldId);
  EXPECT_FALSE(fs::exists(d.data / "confab.db.rekey"));
  d.close();
  d.open();
  EXPECT_EQ(*d.get("acct-a", a.id), "survives");
}

}  // namespace
}  // namespace confab::store
