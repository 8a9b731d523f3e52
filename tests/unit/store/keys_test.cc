// SPDX-License-Identifier: Apache-2.0
#include <confab/app/cli.h>
#include <confab/core/clock.h>
#include <confab/store/keys.h>

#include <fcntl.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <future>
#include <mutex>
#include <span>
#include <sstream>
#include <sys/stat.h>
#include <thread>

#include "test_support.h"

namespace confab::store {
namespace {

namespace fs = std::filesystem;
namespace crypto = core::crypto;
using confab::testing::TestDir;

// Deterministic randomness (SplitMix64), so that failures reproduce.
class SeededRandom final : public core::Random {
 public:
  explicit SeededRandom(std::uint64_t seed) : state_(seed) {}
  void fill(std::span<std::uint8_t> out) override {
    std::lock_guard lock(mu_);
    for (auto& b : out) {
      state_ += 0x9e3779b97f4a7c15ULL;
      std::uint64_t z = state_;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      b = static_cast<std::uint8_t>(z ^ (z >> 31));
    }
  }

 private:
  std::mutex mu_;
  std::uint64_t state_;
};

crypto::SecretKey keyOf(std::uint8_t fill) {
  std::array<std::uint8_t, crypto::kKeyBytes> raw{};
  raw.fill(fill);
  return crypto::SecretKey(raw);
}

void writeFile(const fs::path& path, const std::string& text, mode_t mode) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
  ::chmod(path.c_str(), mode);
}

std::string readFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

unsigned modeOf(const fs::path& path) {
  struct stat st {};
  ::stat(path.c_str(), &st);
  return st.st_mode & 07777;
}

std::string upper(std::string s) {
  for (auto& c : s) {
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return s;
}

// Sets (or unsets, for nullptr) an environment variable for one test and restores it afterwards.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) {
      old_ = old;
    }
    value ? ::setenv(name, value, 1) : ::unsetenv(name);
  }
  ~ScopedEnv() { old_ ? ::setenv(name_, old_->c_str(), 1) : ::unsetenv(name_); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

std::unique_ptr<KeyStore> openStore(const fs::path& dir, const crypto::SecretKey& master,
                                    core::Random& random, const fs::path& ledger = {},
                                    bool create = true) {
  KeyStoreOptions options;
  options.shred_ledger = ledger;
  auto s = KeyStore::open(dir, master, random, create, options);
  EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
  return s.ok() ? std::move(*s) : nullptr;
}

// ---- Master key files --------------------------------------------------------------------------

TEST(MasterKey, MissingFileIsNamed) {
  TestDir dir("keys");
  auto path = (dir.path() / "nope.key").string();
  auto key = loadMasterKey(path);
  ASSERT_FALSE(key.ok());
  EXPECT_EQ(key.error().code, ErrorCode::FailedPrecondition);
  EXPECT_EQ(key.error().message, "master key file " + path + ": not found");
}

TEST(MasterKey, EmptyFileIsRefused) {
  TestDir dir("keys");
  auto path = dir.path() / "empty.key";
  writeFile(path, " \n\t\n", 0600);
  auto key = loadMasterKey(path.string());
  ASSERT_FALSE(key.ok());
  EXPECT_EQ(key.error().code, ErrorCode::FailedPrecondition);
  EXPECT_EQ(key.error().message, "master key file " + path.string() + ": is empty");
}

TEST(MasterKey, LoosePermissionsAreRefused) {
  TestDir dir("keys");
  auto path = dir.path() / "loose.key";
  for (mode_t mode : {0644, 0640, 0604, 0700, 0660}) {
    writeFile(path, std::string(64, 'a') + "\n", mode);
    auto key = loadMasterKey(path.string());
    ASSERT_FALSE(key.ok()) << std::oct << mode;
    char octal[8];
    std::snprintf(octal, sizeof octal, "%04o", static_cast<unsigned>(mode));
    EXPECT_EQ(key.error().message, "master key file " + path.string() + ": mode " + octal +
                                       " is too open (must be 0600 or 0400, owned by this user)");
  }
}

TEST(MasterKey, AnythingButA256BitKeyIsRefused) {
  TestDir dir("keys");
  auto path = dir.path() / "bad.key";
  const std::string expected = "master key file " + path.string() +
                               ": not a 256-bit key (expected 64 hex digits or 44 base64 "
                               "characters)";
  for (const std::string& text : {
           std::string("hunter2\n"), std::string(63, 'a'),     // one hex digit short
           std::string(62, 'a') + "zz",                        // not hex
           std::string(66, 'a'),                               // 33 bytes
           std::string(44, 'A'),                               // base64 of 33 bytes
           std::string(43, 'A') + "!",                         // not base64
           std::string(32, 'a') + " " + std::string(32, 'a'),  // split in two
       }) {
    writeFile(path, text, 0600);
    auto key = loadMasterKey(path.string());
    ASSERT_FALSE(key.ok()) << text;
    EXPECT_EQ(key.error().message, expected) << text;
  }
}

TEST(MasterKey, HexAndBase64WithSurroundingWhitespace) {
  TestDir dir("keys");
  auto raw = keyOf(0x5c);
  auto hex = dir.path() / "hex.key";
  auto b64 = dir.path() / "b64.key";
  writeFile(hex, "\n  " + upper(crypto::toHex(raw.bytes())) + "\r\n", 0600);
  writeFile(b64, crypto::toBase64(raw.bytes()) + "\n", 0400);
  auto a = loadMasterKey(hex.string());
  auto b = loadMasterKey(b64.string());
  ASSERT_TRUE(a.ok()) << a.error().message;
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_TRUE(*a == raw);
  EXPECT_TRUE(*b == raw);
}

TEST(MasterKey, DefaultIsCreatedOutsideTheDataDirectoryWithMode0600) {
  TestDir dir("keys");
  ScopedEnv xdg("XDG_CONFIG_HOME", (dir.path() / "xdg").c_str());
  SeededRandom random(1);
  config::Config config;
  config.server.data_dir = (dir.path() / "data").string();

  auto first = openKeyHierarchy(config, random, true);
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_TRUE(first->created_master_key);
  const fs::path key_path = first->master_key_path;
  EXPECT_EQ(key_path.parent_path(), dir.path() / "xdg" / "confab");
  EXPECT_TRUE(key_path.filename().string().starts_with("master-"));
  EXPECT_EQ(key_path.filename().string().size(), std::string("master-.key").size() + 16);
  EXPECT_EQ(key_path.string().find(config.server.data_dir), std::string::npos);
  EXPECT_EQ(modeOf(key_path), 0600u);
  EXPECT_EQ(modeOf(key_path.parent_path()), 0700u);
  EXPECT_EQ(modeOf(config.server.data_dir), 0700u);
  EXPECT_TRUE(fs::exists(fs::path(config.server.data_dir) / "keystore.json"));
  for (const auto& entry : fs::recursive_directory_iterator(config.server.data_dir)) {
    EXPECT_EQ(entry.path().string().find("master"), std::string::npos) << entry.path();
  }
  auto expected_path = defaultMasterKeyPath(config.server.data_dir);
  ASSERT_TRUE(expected_path.ok());
  EXPECT_EQ(*expected_path, key_path);
  const auto db_key = first->keys->databaseKey();
  first->keys.reset();

  // Second start: the same key is found, nothing is created.
  auto second = openKeyHierarchy(config, random, true);
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_FALSE(second->created_master_key);
  EXPECT_EQ(second->master_key_path, key_path);
  EXPECT_TRUE(second->keys->databaseKey() == db_key);

  // Another data directory gets another key file.
  config::Config other = config;
  other.server.data_dir = (dir.path() / "data2").string();
  auto third = openKeyHierarchy(other, random, true);
  ASSERT_TRUE(third.ok()) << third.error().message;
  EXPECT_NE(third->master_key_path, key_path);
}

TEST(MasterKey, DefaultFallsBackToHomeConfig) {
  TestDir dir("keys");
  ScopedEnv xdg("XDG_CONFIG_HOME", nullptr);
  ScopedEnv home("HOME", dir.path().c_str());
  auto path = defaultMasterKeyPath(dir.path() / "data");
  ASSERT_TRUE(path.ok()) << path.error().message;
  EXPECT_EQ(path->parent_path(), dir.path() / ".config" / "confab");
}

TEST(MasterKey, ExistingKeyStoreWithoutItsDefaultKeyIsAnError) {
  TestDir dir("keys");
  ScopedEnv xdg("XDG_CONFIG_HOME", (dir.path() / "xdg").c_str());
  SeededRandom random(2);
  config::Config config;
  config.server.data_dir = (dir.path() / "data").string();
  fs::path key_path;
  {
    auto h = openKeyHierarchy(config, random, true);
    ASSERT_TRUE(h.ok()) << h.error().message;
    key_path = h->master_key_path;
  }
  fs::remove(key_path);
  auto again = openKeyHierarchy(config, random, true);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::FailedPrecondition);
  EXPECT_EQ(again.error().message, "master key file " + key_path.string() + ": not found, but " +
                                       config.server.data_dir +
                                       " already holds a key store: restore the key file from "
                                       "its backup (a new master key cannot open existing data)");
  EXPECT_FALSE(fs::exists(key_path)) << "a fresh master key was created for existing data";
}

TEST(MasterKey, ConfiguredKeyFileIsNeverCreated) {
  TestDir dir("keys");
  SeededRandom random(3);
  config::Config config;
  config.server.data_dir = (dir.path() / "data").string();
  config.master_key_file = (dir.path() / "etc" / "master.key").string();
  auto h = openKeyHierarchy(config, random, true);
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.error().code, ErrorCode::FailedPrecondition);
  EXPECT_EQ(h.error().message, "master key file " + config.master_key_file + ": not found");
  EXPECT_FALSE(fs::exists(config.master_key_file));
  EXPECT_FALSE(fs::exists(fs::path(config.server.data_dir) / "keystore.json"));
}

TEST(MasterKey, ConfiguredKeyFileWorksAndMayNotLieInTheDataDirectory) {
  TestDir dir("keys");
  SeededRandom random(4);
  config::Config config;
  config.server.data_dir = (dir.path() / "data").string();
  fs::create_directories(config.server.data_dir);
  config.master_key_file = (dir.path() / "data" / "master.key").string();
  writeFile(config.master_key_file, crypto::toHex(keyOf(7).bytes()), 0600);
  auto inside = openKeyHierarchy(config, random, true);
  ASSERT_FALSE(inside.ok());
  EXPECT_EQ(inside.error().message,
            "master key file " + config.master_key_file + ": lies inside the data directory " +
                config.server.data_dir +
                " (keep it elsewhere, so that a copy of the data directory does not carry its "
                "key)");

  config.master_key_file = (dir.path() / "master.key").string();
  writeFile(config.master_key_file, crypto::toHex(keyOf(7).bytes()), 0600);
  auto h = openKeyHierarchy(config, random, true);
  ASSERT_TRUE(h.ok()) << h.error().message;
  EXPECT_FALSE(h->created_master_key);
  EXPECT_EQ(h->master_key_path, fs::path(config.master_key_file));
  EXPECT_EQ(h->keys->masterKeyId(), masterKeyId(keyOf(7)));
}

TEST(MasterKey, FifoOrDirectoryIsRefusedAtOnce) {
  TestDir dir("keys");
  const fs::path fifo = dir.path() / "master.key";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto pending = std::async(std::launch::async, [&] { return loadMasterKey(fifo.string()); });
  if (pending.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
    // Unblock the reader so that the test fails instead of hanging.
    int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
    if (fd >= 0) {
      ::close(fd);
    }
    pending.wait();
    FAIL() << "loadMasterKey blocked on a FIFO";
  }
  auto key = pending.get();
  ASSERT_FALSE(key.ok());
  EXPECT_EQ(key.error().code, ErrorCode::FailedPrecondition);
  EXPECT_EQ(key.error().message, "master key file " + fifo.string() + ": not a regular file");

  const fs::path sub = dir.path() / "keys";
  fs::create_directory(sub);
  ::chmod(sub.c_str(), 0700);
  auto directory = loadMasterKey(sub.string());
  ASSERT_FALSE(directory.ok());
  EXPECT_EQ(directory.error().message, "master key file " + sub.string() + ": not a regular file");
}

TEST(MasterKey, DefaultKeyInsideTheDataDirectoryIsRefused) {
  // A service user whose home directory is the data directory.
  TestDir dir("keys");
  const fs::path data = dir.path() / "data";
  ScopedEnv xdg("XDG_CONFIG_HOME", nullptr);
  ScopedEnv home("HOME", data.c_str());
  SeededRandom random(30);
  config::Config config;
  config.server.data_dir = data.string();
  auto key_path = defaultMasterKeyPath(data);
  ASSERT_TRUE(key_path.ok()) << key_path.error().message;
  const std::string expected =
      "master key file " + key_path->string() + ": lies inside the data directory " +
      data.string() +
      " (the default under $XDG_CONFIG_HOME or $HOME/.config: set master_key_file to a file "
      "outside the data directory, so that a copy of the data directory does not carry its key)";
  for (bool exists : {false, true}) {
    if (exists) {
      fs::create_directories(data);
    }
    for (bool create : {true, false}) {
      auto h = openKeyHierarchy(config, random, create);
      ASSERT_FALSE(h.ok());
      EXPECT_EQ(h.error().code, ErrorCode::FailedPrecondition);
      EXPECT_EQ(h.error().message, expected);
      EXPECT_EQ(fs::exists(data), exists) << "nothing may be created";
      if (exists) {
        EXPECT_TRUE(fs::is_empty(data)) << "nothing may be created";
      }
    }
  }
}

TEST(MasterKey, DataWithoutAKeyStoreIsNeverGivenANewOne) {
  TestDir dir("keys");
  ScopedEnv xdg("XDG_CONFIG_HOME", (dir.path() / "xdg").c_str());
  SeededRandom random(31);
  const fs::path data = dir.path() / "data";
  const fs::path configured_key = dir.path() / "master.key";
  writeFile(configured_key, crypto::toHex(keyOf(7).bytes()) + "\n", 0600);
  config::Config config;
  config.server.data_dir = data.string();
  auto default_key = defaultMasterKeyPath(data);
  ASSERT_TRUE(default_key.ok());
  const std::string tail =
      " but no key store (keystore.json): restore keystore.json from a backup; a new key store "
      "cannot open existing data";

  auto expectRefused = [&](const std::string& message) {
    for (const std::string& key_file : {std::string(), configured_key.string()}) {
      config.master_key_file = key_file;
      auto h = openKeyHierarchy(config, random, true);
      ASSERT_FALSE(h.ok()) << key_file;
      EXPECT_EQ(h.error().code, ErrorCode::FailedPrecondition);
      EXPECT_EQ(h.error().message, message);
      for (const char* name : {"keystore.json", "keystore.lock", "keystore.json.tmp"}) {
        EXPECT_FALSE(fs::exists(data / name)) << name;
      }
      EXPECT_FALSE(fs::exists(*default_key)) << "a master key was created for existing data";
      EXPECT_FALSE(fs::exists(dir.path() / "xdg"));
      EXPECT_FALSE(fs::exists(configured_key.string() + ".shredded"));
    }
  };

  fs::create_directories(data / "blobs" / "01");
  writeFile(data / "blobs" / "01" / (std::string(32, '1') + ".blob"), "sealed", 0600);
  expectRefused(data.string() + " holds blob files" + tail);
  writeFile(data / "confab.db", "SQLite pages", 0600);
  expectRefused(data.string() + " holds a database" + tail);
  fs::remove_all(data / "blobs");
  expectRefused(data.string() + " holds a database" + tail);

  // An empty database file and empty blob directories hold nothing: a key store is created.
  writeFile(data / "confab.db", "", 0600);
  fs::create_directories(data / "blobs" / "tmp");
  config.master_key_file.clear();
  auto h = openKeyHierarchy(config, random, true);
  ASSERT_TRUE(h.ok()) << h.error().message;
  EXPECT_TRUE(fs::exists(data / "keystore.json"));
}

// ---- The key store -----------------------------------------------------------------------------

TEST(KeyStore, WrongMasterKeyIsNamedAsSuch) {
  TestDir dir("keys");
  SeededRandom random(5);
  ASSERT_TRUE(openStore(dir.path(), keyOf(1), random));
  auto wrong = KeyStore::open(dir.path(), keyOf(2), random, true);
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().code, ErrorCode::FailedPrecondition);
  EXPECT_EQ(wrong.error().message, "the master key does not match the key store " +
                                       (dir.path() / "keystore.json").string() + " (key id " +
                                       masterKeyId(keyOf(2)) + ", store expects " +
                                       masterKeyId(keyOf(1)) + "): wrong key file?");
}

TEST(KeyStore, MissingWithoutCreateAndInvalidJsonAreRefused) {
  TestDir dir("keys");
  SeededRandom random(6);
  const auto path = (dir.path() / "keystore.json").string();
  auto missing = KeyStore::open(dir.path(), keyOf(1), random, false);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::FailedPrecondition);
  EXPECT_EQ(missing.error().message, "key store " + path + ": not found");
  EXPECT_FALSE(fs::exists(path));

  writeFile(path, "{\"format\": ", 0600);
  auto bad = KeyStore::open(dir.path(), keyOf(1), random, true);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::FailedPrecondition);
  EXPECT_EQ(bad.error().message,
            "key store " + path + ": not a valid key store (not a JSON object)");
}

// Rewrites keystore.json through `edit`.
void editStore(const fs::path& dir, const std::function<void(nlohmann::json&)>& edit) {
  auto j = nlohmann::json::parse(readFile(dir / "keystore.json"));
  edit(j);
  writeFile(dir / "keystore.json", j.dump(2), 0600);
}

TEST(KeyStore, TamperedOrSwappedEntriesFailAuthentication) {
  TestDir dir("keys");
  SeededRandom random(7);
  std::string data_id;
  std::string db_id;
  {
    auto s = openStore(dir.path(), keyOf(1), random);
    ASSERT_TRUE(s);
    auto k = s->keyForWriting("acct-1");
    ASSERT_TRUE(k.ok());
    data_id = k->id;
    db_id = s->databaseKeyId();
  }
  const std::string original = readFile(dir.path() / "keystore.json");
  const std::string prefix = "key store " + (dir.path() / "keystore.json").string() + ": entry ";
  const std::string suffix = " failed authentication (corrupt or tampered)";
  auto expectFailure = [&](const std::string& id, const char* what) {
    auto s = KeyStore::open(dir.path(), keyOf(1), random, false);
    ASSERT_FALSE(s.ok()) << what;
    EXPECT_EQ(s.error().code, ErrorCode::FailedPrecondition) << what;
    EXPECT_EQ(s.error().message, prefix + id + suffix) << what;
    writeFile(dir.path() / "keystore.json", original, 0600);
  };

  editStore(dir.path(), [](nlohmann::json& j) {
    auto w = j["data_keys"][0]["wrapped"].get<std::string>();
    w[5] = w[5] == 'A' ? 'B' : 'A';
    j["data_keys"][0]["wrapped"] = w;
  });
  expectFailure(data_id, "flipped ciphertext");

  editStore(dir.path(), [](nlohmann::json& j) {
    auto n = j["database_key"]["nonce"].get<std::string>();
    n[0] = n[0] == 'A' ? 'B' : 'A';
    j["database_key"]["nonce"] = n;
  });
  expectFailure(db_id, "flipped nonce");

  editStore(dir.path(), [](nlohmann::json& j) { j["data_keys"][0]["account_id"] = "acct-2"; });
  expectFailure(data_id, "key moved to another account");

  editStore(dir.path(), [](nlohmann::json& j) {
    j["database_key"]["nonce"] = j["data_keys"][0]["nonce"];
    j["database_key"]["wrapped"] = j["data_keys"][0]["wrapped"];
  });
  expectFailure(db_id, "data key moved into the database slot");

  // And the untouched file still opens.
  EXPECT_TRUE(openStore(dir.path(), keyOf(1), random, {}, false));
}

TEST(KeyStore, DataKeysPersistAcrossReopen) {
  TestDir dir("keys");
  SeededRandom random(8);
  DataKey a;
  DataKey b;
  crypto::SecretKey db;
  {
    auto s = openStore(dir.path(), keyOf(1), random);
    ASSERT_TRUE(s);
    db = s->databaseKey();
    auto ka = s->keyForWriting("acct-a");
    auto kb = s->keyForWriting("acct-b");
    ASSERT_TRUE(ka.ok() && kb.ok());
    a = *ka;
    b = *kb;
    EXPECT_EQ(a.id.size(), 32u);
    EXPECT_NE(a.id, b.id);
    EXPECT_FALSE(a.key == b.key);
    auto again = s->keyForWriting("acct-a");
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->id, a.id);
    EXPECT_FALSE(s->keyForWriting("").ok());
  }
  auto s = openStore(dir.path(), keyOf(1), random, {}, false);
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->databaseKey() == db);
  EXPECT_EQ(s->dataKeyCount(), 2u);
  auto ka = s->keyForWriting("acct-a");
  ASSERT_TRUE(ka.ok());
  EXPECT_EQ(ka->id, a.id);
  EXPECT_TRUE(ka->key == a.key);
  auto kb = s->keyById(b.id);
  ASSERT_TRUE(kb.ok());
  EXPECT_TRUE(kb->key == b.key);
  auto unknown = s->keyById(std::string(32, '0'));
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, ErrorCode::NotFound);
  EXPECT_EQ(unknown.error().message, "unknown data key " + std::string(32, '0'));
}

TEST(KeyStore, OneAccountGetsOneKeyUnderConcurrency) {
  TestDir dir("keys");
  SeededRandom random(9);
  auto s = openStore(dir.path(), keyOf(1), random);
  ASSERT_TRUE(s);
  std::vector<std::string> ids(4);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      auto k = s->keyForWriting("acct");
      ids[i] = k.ok() ? k->id : "";
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_FALSE(ids[0].empty());
  for (const auto& id : ids) {
    EXPECT_EQ(id, ids[0]);
  }
  EXPECT_EQ(s->dataKeyCount(), 1u);
}

TEST(KeyStore, OneOpenStorePerDataDirectory) {
  TestDir dir("keys");
  SeededRandom random(10);
  auto s = openStore(dir.path(), keyOf(1), random);
  ASSERT_TRUE(s);
  auto second = KeyStore::open(dir.path(), keyOf(1), random, true);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, ErrorCode::Unavailable);
  EXPECT_EQ(second.error().message, "key store " + (dir.path() / "keystore.json").string() +
                                        ": in use by another process (stop confabd first)");
  s.reset();
  EXPECT_TRUE(openStore(dir.path(), keyOf(1), random));
}

TEST(KeyStore, DestroyedKeysStayDestroyed) {
  TestDir dir("keys");
  SeededRandom random(11);
  const fs::path data = dir.path() / "data";
  const fs::path ledger = dir.path() / "master.key.shredded";
  fs::create_directories(data);
  DataKey doomed;
  DataKey doomed2;
  DataKey kept;
  {
    auto s = openStore(data, keyOf(1), random, ledger);
    ASSERT_TRUE(s);
    doomed = *s->keyForWriting("acct-gone");
    kept = *s->keyForWriting("acct-stays");
    ASSERT_TRUE(s->destroyAccountKeys("acct-nobody", std::chrono::system_clock::now()).ok());
    EXPECT_EQ(readFile(ledger), "");
    ASSERT_TRUE(s->destroyAccountKeys("acct-gone", std::chrono::system_clock::now()).ok());
    auto gone = s->keyById(doomed.id);
    ASSERT_FALSE(gone.ok());
    EXPECT_EQ(gone.error().code, ErrorCode::NotFound);
    EXPECT_EQ(gone.error().message, "data key " + doomed.id + " was destroyed");
    EXPECT_TRUE(s->keyById(kept.id).ok());
    // A terminated account that writes again gets a new key, never the old one.
    auto fresh = s->keyForWriting("acct-gone");
    ASSERT_TRUE(fresh.ok());
    EXPECT_NE(fresh->id, doomed.id);
    doomed2 = *fresh;
    ASSERT_TRUE(s->destroyAccountKeys("acct-gone", std::chrono::system_clock::now()).ok());
    EXPECT_EQ(s->destroyedIds(), (std::vector<std::string>{std::min(doomed.id, doomed2.id),
                                                           std::max(doomed.id, doomed2.id)}));
  }
  EXPECT_EQ(readFile(ledger), doomed.id + "\n" + doomed2.id + "\n");
  EXPECT_EQ(modeOf(ledger), 0600u);
  const std::string text = readFile(data / "keystore.json");
  EXPECT_EQ(text.find(crypto::toBase64(doomed.key.bytes())), std::string::npos);

  auto s = openStore(data, keyOf(1), random, ledger, false);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->keyById(doomed.id).error().message, "data key " + doomed.id + " was destroyed");
  EXPECT_TRUE(s->keyById(kept.id).ok());
  // Without the ledger the key store's own list still knows.
  s.reset();
  auto bare = openStore(data, keyOf(1), random, {}, false);
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->keyById(doomed2.id).error().message, "data key " + doomed2.id + " was destroyed");
}

TEST(KeyStore, RestoringAnOlderKeyStoreBringsNoDestroyedKeyBack) {
  TestDir dir("keys");
  SeededRandom random(12);
  const fs::path data = dir.path() / "data";
  const fs::path ledger = dir.path() / "master.key.shredded";
  fs::create_directories(data);
  DataKey doomed;
  DataKey kept;
  std::string backup;
  {
    auto s = openStore(data, keyOf(1), random, ledger);
    ASSERT_TRUE(s);
    doomed = *s->keyForWriting("acct-gone");
    kept = *s->keyForWriting("acct-stays");
    backup = readFile(data / "keystore.json");  // the "older backup", key still wrapped
    ASSERT_TRUE(s->destroyAccountKeys("acct-gone", std::chrono::system_clock::now()).ok());
  }
  // Restore with the ledger beside the master key: opening destroys the key again.
  writeFile(data / "keystore.json", backup, 0600);
  {
    auto s = openStore(data, keyOf(1), random, ledger, false);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->keyById(doomed.id).error().message, "data key " + doomed.id + " was destroyed");
    EXPECT_TRUE(s->keyById(kept.id).ok());
  }
  auto after = nlohmann::json::parse(readFile(data / "keystore.json"));  // outlives the loop
  for (const auto& entry : after["data_keys"]) {
    EXPECT_NE(entry["id"], doomed.id);
  }

  // Restore applied explicitly (as `confabd restore` does with the ids it kept).
  writeFile(data / "keystore.json", backup, 0600);
  {
    auto s = openStore(data, keyOf(1), random, {}, false);
    ASSERT_TRUE(s);
    ASSERT_TRUE(s->keyById(doomed.id).ok());  // the old copy alone still has it
    ASSERT_TRUE(s->applyShredLedger({doomed.id, std::string(32, 'e')}).ok());
    EXPECT_EQ(s->keyById(doomed.id).error().message, "data key " + doomed.id + " was destroyed");
    EXPECT_EQ(s->keyById(std::string(32, 'e')).error().message,
              "data key " + std::string(32, 'e') + " was destroyed");
    EXPECT_TRUE(s->keyById(kept.id).ok());
  }
  auto s = openStore(data, keyOf(1), random, {}, false);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->keyById(doomed.id).error().message, "data key " + doomed.id + " was destroyed");
  EXPECT_EQ(s->dataKeyCount(), 1u);
}

TEST(KeyStore, RewrapMovesEveryKeyToTheNewMaster) {
  TestDir dir("keys");
  SeededRandom random(13);
  const fs::path data = dir.path() / "data";
  fs::create_directories(data);
  const fs::path old_ledger = dir.path() / "old.key.shredded";
  const fs::path new_ledger = dir.path() / "new.key.shredded";
  crypto::SecretKey db;
  crypto::SecretKey pending;
  std::vector<DataKey> keys;
  DataKey doomed;
  KeyStore::SigningSeed signing;
  {
    auto s = openStore(data, keyOf(1), random, old_ledger);
    ASSERT_TRUE(s);
    db = s->databaseKey();
    for (const char* account : {"a", "b", "c"}) {
      keys.push_back(*s->keyForWriting(account));
    }
    doomed = *s->keyForWriting("gone");
    ASSERT_TRUE(s->destroyAccountKeys("gone", std::chrono::system_clock::now()).ok());
    signing = *s->auditSigningKey();
    auto staged = s->stageDatabaseKey();
    ASSERT_TRUE(staged.ok());
    pending = *staged;
    ASSERT_TRUE(s->rewrap(keyOf(2), new_ledger).ok());
    EXPECT_EQ(s->masterKeyId(), masterKeyId(keyOf(2)));
    EXPECT_TRUE(s->databaseKey() == db);
  }
  EXPECT_EQ(readFile(new_ledger), doomed.id + "\n");

  auto old_master = KeyStore::open(data, keyOf(1), random, false);
  ASSERT_FALSE(old_master.ok());
  EXPECT_NE(old_master.error().message.find("the master key does not match"), std::string::npos);

  auto s = openStore(data, keyOf(2), random, new_ledger, false);
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->databaseKey() == db);
  ASSERT_TRUE(s->pendingDatabaseKey().has_value());
  EXPECT_TRUE(*s->pendingDatabaseKey() == pending);
  for (const auto& k : keys) {
    auto again = s->keyById(k.id);
    ASSERT_TRUE(again.ok());
    EXPECT_TRUE(again->key == k.key);
  }
  EXPECT_EQ(s->keyById(doomed.id).error().message, "data key " + doomed.id + " was destroyed");
  auto again = s->auditSigningKey();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->id, signing.id);
  EXPECT_TRUE(again->seed == signing.seed);
}

// The audit signing key: made once, kept across reopening, never in the clear on disk, and not
// created by a read-only opener.
TEST(KeyStore, AuditSigningKeyIsCreatedOnceAndPersisted) {
  TestDir dir("keys");
  SeededRandom random(21);
  KeyStore::SigningSeed first;
  {
    auto s = openStore(dir.path(), keyOf(1), random);
    ASSERT_TRUE(s);
    auto k = s->auditSigningKey();
    ASSERT_TRUE(k.ok()) << k.error().message;
    first = *k;
    auto twice = s->auditSigningKey();
    EXPECT_EQ(twice->id, first.id);
    EXPECT_TRUE(twice->seed == first.seed);
  }
  std::string text = readFile(dir.path() / "keystore.json");
  EXPECT_NE(text.find("\"audit_signing_key\""), std::string::npos);
  EXPECT_EQ(text.find(crypto::toHex(first.seed.bytes())), std::string::npos);
  EXPECT_EQ(text.find(crypto::toBase64(first.seed.bytes())), std::string::npos);
  auto s = openStore(dir.path(), keyOf(1), random, {}, false);
  ASSERT_TRUE(s);
  auto k = s->auditSigningKey();
  ASSERT_TRUE(k.ok());
  EXPECT_TRUE(k->seed == first.seed);
  s.reset();

  TestDir other("keys-ro");
  ASSERT_TRUE(openStore(other.path(), keyOf(1), random));
  KeyStoreOptions read_only;
  read_only.read_only = true;
  auto ro = KeyStore::open(other.path(), keyOf(1), random, false, read_only);
  ASSERT_TRUE(ro.ok());
  auto none = (*ro)->auditSigningKey();
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, ErrorCode::FailedPrecondition);
}

TEST(KeyStore, LedgerExistsOnceTheKeyStoreDoes) {
  TestDir dir("keys");
  SeededRandom random(32);
  const fs::path data = dir.path() / "data";
  fs::create_directories(data);
  const fs::path ledger = dir.path() / "master.key.shredded";

  // No key store and no `create`: nothing is written.
  auto missing = KeyStore::open(data, keyOf(1), random, false, {.shred_ledger = ledger});
  ASSERT_FALSE(missing.ok());
  EXPECT_FALSE(fs::exists(ledger));

  // Creating a key store creates its (empty) ledger.
  ASSERT_TRUE(openStore(data, keyOf(1), random, ledger));
  ASSERT_TRUE(fs::is_regular_file(ledger));
  EXPECT_EQ(readFile(ledger), "");
  EXPECT_EQ(modeOf(ledger), 0600u);

  // Opening an existing key store recreates a missing ledger, and leaves an existing one alone.
  fs::remove(ledger);
  {
    auto s = openStore(data, keyOf(1), random, ledger, false);
    ASSERT_TRUE(s);
    ASSERT_TRUE(fs::is_regular_file(ledger));
    EXPECT_EQ(modeOf(ledger), 0600u);
    const auto doomed = *s->keyForWriting("gone");
    ASSERT_TRUE(s->destroyAccountKeys("gone", std::chrono::system_clock::now()).ok());
    EXPECT_EQ(readFile(ledger), doomed.id + "\n");
  }
  const std::string content = readFile(ledger);
  ASSERT_TRUE(openStore(data, keyOf(1), random, ledger, false));
  EXPECT_EQ(readFile(ledger), content);

  // A read-only reader writes nothing, not even a missing ledger.
  fs::remove(ledger);
  KeyStoreOptions ro{.shred_ledger = ledger, .read_only = true};
  auto reader = KeyStore::open(data, keyOf(1), random, false, ro);
  ASSERT_TRUE(reader.ok()) << reader.error().message;
  EXPECT_FALSE(fs::exists(ledger));
  (void)(*reader)->keyForWriting("someone");
  (void)(*reader)->destroyAccountKeys("someone", std::chrono::system_clock::now());
  (void)(*reader)->applyShredLedger({std::string(32, 'e')});
  auto rewrapped = (*reader)->rewrap(keyOf(2), dir.path() / "new.key.shredded");
  EXPECT_EQ(rewrapped.error().message, "key store " + (data / "keystore.json").string() +
                                           ": opened read-only; no key can be created or "
                                           "changed here");
  EXPECT_FALSE(fs::exists(ledger));
  EXPECT_FALSE(fs::exists(dir.path() / "new.key.shredded"));
}

TEST(KeyStore, RewrapCreatesTheNewLedgerEvenWithNothingDestroyed) {
  TestDir dir("keys");
  SeededRandom random(33);
  const fs::path old_ledger = dir.path() / "old.key.shredded";
  const fs::path new_ledger = dir.path() / "new.key.shredded";
  const fs::path data = dir.path() / "data";
  fs::create_directories(data);
  auto s = openStore(data, keyOf(1), random, old_ledger);
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->keyForWriting("a").ok());
  ASSERT_TRUE(s->rewrap(keyOf(2), new_ledger).ok());
  ASSERT_TRUE(fs::is_regular_file(new_ledger));
  EXPECT_EQ(readFile(new_ledger), "");
  EXPECT_EQ(modeOf(new_ledger), 0600u);
}

TEST(KeyStore, StagedDatabaseKeyBecomesCurrentOnlyOnCommit) {
  TestDir dir("keys");
  SeededRandom random(14);
  crypto::SecretKey old_db;
  crypto::SecretKey staged;
  {
    auto s = openStore(dir.path(), keyOf(1), random);
    ASSERT_TRUE(s);
    old_db = s->databaseKey();
    EXPECT_FALSE(s->pendingDatabaseKey().has_value());
    EXPECT_EQ(s->commitDatabaseKey().error().code, ErrorCode::FailedPrecondition);
    auto k = s->stageDatabaseKey();
    ASSERT_TRUE(k.ok());
    staged = *k;
    EXPECT_FALSE(staged == old_db);
    EXPECT_EQ(s->stageDatabaseKey().error().code, ErrorCode::FailedPrecondition);
  }
  {
    // An interrupted re-encryption finds its pending key again.
    auto s = openStore(dir.path(), keyOf(1), random, {}, false);
    ASSERT_TRUE(s);
    EXPECT_TRUE(s->databaseKey() == old_db);
    ASSERT_TRUE(s->pendingDatabaseKey().has_value());
    EXPECT_TRUE(*s->pendingDatabaseKey() == staged);
    const auto id = *s->pendingDatabaseKeyId();
    ASSERT_TRUE(s->commitDatabaseKey().ok());
    EXPECT_TRUE(s->databaseKey() == staged);
    EXPECT_EQ(s->databaseKeyId(), id);
    EXPECT_FALSE(s->pendingDatabaseKey().has_value());
    ASSERT_TRUE(s->stageDatabaseKey().ok());
    ASSERT_TRUE(s->dropPendingDatabaseKey().ok());
    EXPECT_TRUE(s->dropPendingDatabaseKey().ok());
  }
  auto s = openStore(dir.path(), keyOf(1), random, {}, false);
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->databaseKey() == staged);
  EXPECT_FALSE(s->pendingDatabaseKey().has_value());
}

TEST(KeyStore, FileHasMode0600AndNoRawKeyBytes) {
  TestDir dir("keys");
  SeededRandom random(15);
  std::vector<crypto::SecretKey> secrets{keyOf(0x42)};
  {
    auto s = openStore(dir.path(), keyOf(0x42), random);
    ASSERT_TRUE(s);
    secrets.push_back(s->databaseKey());
    for (const char* account : {"a", "b", "c", "d"}) {
      secrets.push_back(s->keyForWriting(account)->key);
    }
    secrets.push_back(*s->stageDatabaseKey());
  }
  const auto path = dir.path() / "keystore.json";
  EXPECT_EQ(modeOf(path), 0600u);
  EXPECT_FALSE(fs::exists(dir.path() / "keystore.json.tmp"));
  const std::string text = readFile(path);
  EXPECT_TRUE(nlohmann::json::parse(text, nullptr, false).is_object());
  for (const auto& k : secrets) {
    const std::string hex = crypto::toHex(k.bytes());
    const std::string b64 = crypto::toBase64(k.bytes());
    for (const std::string& form : {hex, upper(hex), b64, b64.substr(0, 40)}) {
      EXPECT_EQ(text.find(form), std::string::npos) << "raw key bytes in keystore.json";
    }
    // Nor any 8-byte run of the raw bytes.
    const std::string raw(reinterpret_cast<const char*>(k.bytes().data()), k.bytes().size());
    for (std::size_t i = 0; i + 8 <= raw.size(); i += 8) {
      EXPECT_EQ(text.find(raw.substr(i, 8)), std::string::npos);
    }
  }
}

// ---- confabd rekey ----------------------------------------------------------------------------

struct CommandResult {
  int rc = -1;
  std::string out;
  std::string err;
};

CommandResult runConfabd(std::vector<std::string> args) {
  args.insert(args.begin(), "confabd");
  std::vector<char*> argv;
  for (auto& a : args) {
    argv.push_back(a.data());
  }
  CommandResult r;
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  r.rc = app::runCommandLine(static_cast<int>(argv.size()), argv.data());
  r.err = ::testing::internal::GetCapturedStderr();
  r.out = ::testing::internal::GetCapturedStdout();
  return r;
}

TEST(MasterKey, RekeyCommandRewrapsUnderTheNewKey) {
  TestDir dir("keys");
  SeededRandom random(16);
  const fs::path data = dir.path() / "data";
  const fs::path old_key = dir.path() / "old.key";
  const fs::path new_key = dir.path() / "new.key";
  writeFile(old_key, crypto::toHex(keyOf(1).bytes()) + "\n", 0600);
  config::Config config;
  config.server.data_dir = data.string();
  config.master_key_file = old_key.string();
  crypto::SecretKey db;
  DataKey a;
  DataKey gone;
  {
    auto h = openKeyHierarchy(config, random, true);
    ASSERT_TRUE(h.ok()) << h.error().message;
    db = h->keys->databaseKey();
    a = *h->keys->keyForWriting("a");
    gone = *h->keys->keyForWriting("gone");
    ASSERT_TRUE(h->keys->destroyAccountKeys("gone", std::chrono::system_clock::now()).ok());

    // Not while the key store is open elsewhere (a running daemon): exit 1.
    writeFile(new_key, crypto::toBase64(keyOf(2).bytes()), 0600);
    auto busy = runConfabd({"rekey", "--data-dir", data.string(), "--master-key-file",
                            old_key.string(), "--new-master-key-file", new_key.string()});
    EXPECT_EQ(busy.rc, 1) << busy.err;
    EXPECT_NE(busy.err.find("in use by another process"), std::string::npos) << busy.err;
  }
  const std::vector<std::string> base{"rekey",          "--data-dir",
                                      data.string(),    "--master-key-file",
                                      old_key.string(), "--new-master-key-file",
                                      new_key.string()};

  // A new key file with loose permissions, or missing: exit 2, nothing changes.
  ::chmod(new_key.c_str(), 0644);
  auto loose = runConfabd(base);
  EXPECT_EQ(loose.rc, 2);
  EXPECT_EQ(loose.err, "confabd rekey: master key file " + new_key.string() +
                           ": mode 0644 is too open (must be 0600 or 0400, owned by this user)\n");
  fs::remove(new_key);
  auto missing = runConfabd(base);
  EXPECT_EQ(missing.rc, 2);
  EXPECT_EQ(missing.err.rfind("confabd rekey: master key file " + new_key.string() +
                                  ": not found\n  create one with: (umask 077; openssl rand -hex "
                                  "32 > " +
                                  new_key.string() + ")\n",
                              0),
            0u)
      << missing.err;

  // The wrong current key: exit 2.
  writeFile(new_key, crypto::toBase64(keyOf(2).bytes()), 0600);
  auto wrong = runConfabd({"rekey", "--data-dir", data.string(), "--master-key-file",
                           new_key.string(), "--new-master-key-file", new_key.string()});
  EXPECT_EQ(wrong.rc, 2);
  EXPECT_NE(wrong.err.find("wrong key file?"), std::string::npos) << wrong.err;

  auto ok = runConfabd(base);
  ASSERT_EQ(ok.rc, 0) << ok.err;
  EXPECT_NE(ok.out.find("mv " + new_key.string() + " " + old_key.string() + "\n"),
            std::string::npos)
      << ok.out;
  EXPECT_NE(ok.out.find("mv " + new_key.string() + ".shredded " + old_key.string() + ".shredded\n"),
            std::string::npos)
      << ok.out;
  EXPECT_EQ(readFile(new_key.string() + ".shredded"), gone.id + "\n");

  auto stale = openKeyHierarchy(config, random, false);
  ASSERT_FALSE(stale.ok());
  EXPECT_NE(stale.error().message.find("wrong key file?"), std::string::npos);
  config.master_key_file = new_key.string();
  auto h = openKeyHierarchy(config, random, false);
  ASSERT_TRUE(h.ok()) << h.error().message;
  EXPECT_TRUE(h->keys->databaseKey() == db);
  EXPECT_TRUE(h->keys->keyById(a.id)->key == a.key);
  EXPECT_EQ(h->keys->keyById(gone.id).error().message, "data key " + gone.id + " was destroyed");
}

TEST(MasterKey, RekeyOnAFreshSystemPrintsMovesThatWork) {
  TestDir dir("keys");
  SeededRandom random(34);
  const fs::path data = dir.path() / "data";
  const fs::path old_key = dir.path() / "old.key";
  const fs::path new_key = dir.path() / "new.key";
  writeFile(old_key, crypto::toHex(keyOf(1).bytes()) + "\n", 0600);
  writeFile(new_key, crypto::toHex(keyOf(2).bytes()) + "\n", 0600);
  config::Config config;
  config.server.data_dir = data.string();
  config.master_key_file = old_key.string();
  crypto::SecretKey db;
  {
    auto h = openKeyHierarchy(config, random, true);  // nothing ever destroyed
    ASSERT_TRUE(h.ok()) << h.error().message;
    db = h->keys->databaseKey();
  }
  auto ok = runConfabd({"rekey", "--data-dir", data.string(), "--master-key-file", old_key.string(),
                        "--new-master-key-file", new_key.string()});
  ASSERT_EQ(ok.rc, 0) << ok.err;
  // Run the printed `mv` lines as an operator would.
  std::istringstream lines(ok.out);
  int moves = 0;
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line);
    std::string mv, from, to;
    if (words >> mv >> from >> to && mv == "mv") {
      std::error_code ec;
      fs::rename(from, to, ec);
      EXPECT_FALSE(ec) << line << ": " << ec.message();
      ++moves;
    }
  }
  EXPECT_EQ(moves, 2) << ok.out;
  auto h = openKeyHierarchy(config, random, false);
  ASSERT_TRUE(h.ok()) << h.error().message;
  EXPECT_EQ(h->keys->masterKeyId(), masterKeyId(keyOf(2)));
  EXPECT_TRUE(h->keys->databaseKey() == db);
}

}  // namespace
}  // namespace confab::store
