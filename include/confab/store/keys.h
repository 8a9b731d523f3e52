// SPDX-License-Identifier: Apache-2.0
#pragma once
// The key hierarchy (docs/storage-format.md, "Keys"):
//
//   master key (a file outside the data directory, mode 0600)
//     └─ wraps ─▶ database key   (one; the page-encrypting VFS seals every page with subkeys of it)
//     └─ wraps ─▶ data keys      (one per account; the blob store seals that account's files)
//     └─ wraps ─▶ audit signing key (Ed25519 seed; signs audit checkpoints)
//
// The wrapped keys live in <data_dir>/keystore.json, rewritten atomically on every change, so
// re-wrapping under a new master key is one small file write. Destroying an account's data key
// (crypto-shredding) removes it from the key store and records its id in two shred ledgers — one
// in the key store, one beside the master key file — so restoring an older backup cannot bring the
// key back. Thread-safe.

#include <confab/config/config.h>
#include <confab/core/clock.h>
#include <confab/core/crypto.h>
#include <confab/core/random.h>
#include <confab/core/result.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace confab::store {

// A data key as the blob store uses it: the id written into each blob's header, and the key.
struct DataKey {
  std::string id;  // 32 lower-case hex digits, never reused
  core::crypto::SecretKey key;
};

// What the blob store needs from the key hierarchy; KeyStore implements it, tests may fake it.
class DataKeys {
 public:
  virtual ~DataKeys() = default;
  // The account's current data key, created (and persisted) on first use.
  virtual Result<DataKey> keyForWriting(const std::string& account_id) = 0;
  // A key by id, for reading. NotFound with message "data key <id> was destroyed" when the
  // key was shredded, "unknown data key <id>" when it never existed here.
  virtual Result<DataKey> keyById(const std::string& key_id) = 0;
};

// ---- Master key ------------------------------------------------------------------------------

// Reads a master key file: 32 bytes as 64 hex digits or as 44 base64 characters, surrounding
// whitespace ignored. The file must be a regular file (a symlink to one is fine) owned by this
// user with mode 0600 or 0400; a FIFO, device or directory is refused without being read (a FIFO
// never blocks the caller). Errors are FailedPrecondition (field "master_key_file") with one of
// these messages:
//   master key file <path>: not found
//   master key file <path>: is empty
//   master key file <path>: mode 0644 is too open (must be 0600 or 0400, owned by this user)
//   master key file <path>: owned by uid <u>, not by this user (uid <me>)
//   master key file <path>: not a 256-bit key (expected 64 hex digits or 44 base64 characters)
//   master key file <path>: not a regular file | cannot read: <reason>
Result<core::crypto::SecretKey> loadMasterKey(const std::string& path);

// Writes a new random master key (64 hex digits and a newline) to `path`: O_EXCL, mode 0600,
// fsync of the file and of its directory. The parent directory is created if missing (the last
// component with mode 0700). AlreadyExists if the file exists; it is never overwritten.
Result<core::crypto::SecretKey> createMasterKeyFile(const std::filesystem::path& path,
                                                    core::Random& random);

// Where the embedded default keeps the master key of `data_dir`, outside it:
// ${XDG_CONFIG_HOME:-$HOME/.config}/confab/master-<16 hex of sha256(canonical data_dir)>.key.
// FailedPrecondition when neither variable holds an absolute path.
Result<std::filesystem::path> defaultMasterKeyPath(const std::filesystem::path& data_dir);

// The public name of a master key: the first 16 hex digits of HMAC-SHA256(master, "confab master
// key id"). Stored in the key store so that a wrong key file is named as such.
std::string masterKeyId(const core::crypto::SecretKey& master);

// ---- Key store ---------------------------------------------------------------------------------

struct KeyStoreOptions {
  // The shred ledger: one destroyed key id per line, appended and fsynced on every destruction.
  // It lives beside the master key (openKeyHierarchy uses "<master key path>.shredded"), outside
  // the data directory, so that restoring an older data directory cannot resurrect a key. Empty:
  // no ledger (the key store's own list only). Unless read_only, open() creates it empty (mode
  // 0600) when missing, so that it exists whenever the key store does.
  std::filesystem::path shred_ledger;
  core::Clock* clock = nullptr;  // null: SystemClock; stamps created_at and ledger application
  // For readers beside a running daemon (`confabd backup`): no lock is taken and nothing is ever
  // written; every change fails with FailedPrecondition. Ledger ids still wrapped in the store
  // are dropped in memory only.
  bool read_only = false;
};

// <data_dir>/keystore.json and the keys it wraps, unwrapped in memory. One KeyStore per data
// directory and process: open() takes an exclusive lock (<data_dir>/keystore.lock) held until
// destruction, so `confabd rekey` cannot run beside a live daemon. Every public method is
// thread-safe. Every change rewrites keystore.json atomically (temp file, fsync, rename, fsync of
// the directory) with mode 0600; a failed write leaves file and memory unchanged. The Random
// passed to open() must outlive the KeyStore.
class KeyStore : public DataKeys {
 public:
  // Opens the key store of `data_dir` under `master`. With no key store and `create`, writes a
  // new one holding a fresh random database key. Ledger ids still wrapped in the store (an
  // older copy was restored) are destroyed on open. Errors:
  //   FailedPrecondition "the master key does not match the key store <path> (key id <a>, store
  //       expects <b>): wrong key file?"
  //   FailedPrecondition "key store <path>: entry <id> failed authentication (corrupt or
  //       tampered)"
  //   FailedPrecondition "key store <path>: <reason>" (not found without `create`, not JSON,
  //       a missing or invalid field, an unsupported format version)
  //   Unavailable "key store <path>: in use by another process (stop confabd first)"
  //   Internal "key store <path>: <system error>" (cannot lock or write)
  static Result<std::unique_ptr<KeyStore>> open(std::filesystem::path data_dir,
                                                core::crypto::SecretKey master,
                                                core::Random& random, bool create,
                                                KeyStoreOptions options = {});
  ~KeyStore() override;
  KeyStore(const KeyStore&) = delete;
  KeyStore& operator=(const KeyStore&) = delete;

  const std::filesystem::path& path() const { return path_; }  // <data_dir>/keystore.json
  std::string masterKeyId() const;

  // The current database key. The reference stays valid for the KeyStore's lifetime; its bytes
  // change only in commitDatabaseKey().
  const core::crypto::SecretKey& databaseKey() const;
  std::string databaseKeyId() const;

  // DataKeys. keyForWriting: InvalidArgument for an empty account id; Internal if the new key
  // cannot be persisted (nothing changes then).
  Result<DataKey> keyForWriting(const std::string& account_id) override;
  Result<DataKey> keyById(const std::string& key_id) override;
  std::size_t dataKeyCount() const;

  // Crypto-shredding: appends the ids of every data key of `account_id` to the shred ledger
  // (fsynced, first), then removes the wrapped keys from the key store and lists them as
  // destroyed at `now`. Afterwards keyById() says "data key <id> was destroyed". No keys: ok.
  Status destroyAccountKeys(const std::string& account_id,
                            std::chrono::system_clock::time_point now);
  // Every destroyed id: the key store's list and the ledger's.
  std::vector<std::string> destroyedIds() const;
  // For restoring an older backup: removes every wrapped data key whose id is in `ids`, lists
  // all of `ids` as destroyed and adds missing ones to the ledger.
  Status applyShredLedger(const std::set<std::string>& ids);

  // Re-wraps every key under `new_master` in one atomic replacement of keystore.json; data is not
  // re-encrypted. Afterwards only `new_master` opens the store. With `new_shred_ledger` (the
  // ledger beside the new key file), that ledger is created (empty if no key was ever destroyed)
  // and every destroyed id is first appended to it, and later destructions are recorded there.
  // On failure nothing changes but that ledger's additions.
  Status rewrap(const core::crypto::SecretKey& new_master,
                const std::filesystem::path& new_shred_ledger = {});

  // The seed of the Ed25519 key that signs audit checkpoints (RFC 8032 §5.1.5: 32 random bytes),
  // created and persisted on first use and re-wrapped with every other key by rewrap(). Kept here
  // rather than in the database so that someone able to rewrite database rows cannot sign.
  // FailedPrecondition when it does not exist yet and the store is read-only; Internal when it
  // cannot be persisted.
  struct SigningSeed {
    std::string id;
    core::crypto::SecretKey seed;
  };
  Result<SigningSeed> auditSigningKey();

  // For `rekey --database`. stageDatabaseKey() persists a new random database key as pending and
  // returns it; FailedPrecondition if one is pending already (an interrupted re-encryption: resume
  // with pendingDatabaseKey() or drop it). commitDatabaseKey() makes the pending key current and
  // forgets the old one (FailedPrecondition if none is pending). dropPendingDatabaseKey() forgets
  // the pending key (ok if none).
  Result<core::crypto::SecretKey> stageDatabaseKey();
  Status commitDatabaseKey();
  Status dropPendingDatabaseKey();
  std::optional<core::crypto::SecretKey> pendingDatabaseKey() const;
  std::optional<std::string> pendingDatabaseKeyId() const;

 private:
  struct Wrapped {
    std::string id;
    std::string account_id;  // data keys only
    std::int64_t created_at = 0;
    std::string nonce;    // base64
    std::string wrapped;  // base64 of ciphertext || tag
    core::crypto::SecretKey key;
  };
  struct Destroyed {
    std::string id;
    std::string account_id;
    std::int64_t destroyed_at = 0;
  };
  struct State {
    core::crypto::SecretKey master;
    Wrapped database;
    std::optional<Wrapped> pending;
    std::optional<Wrapped> audit_signing;
    std::map<std::string, Wrapped> data;  // by id
    std::vector<Destroyed> destroyed;
  };

  KeyStore(std::filesystem::path path, int lock_fd, core::Random& random, KeyStoreOptions options);
  Status load(const core::crypto::SecretKey& master);
  Status save(const State& state);
  Error readOnlyError() const;
  Wrapped newKey(const core::crypto::SecretKey& master, const std::string& purpose,
                 const std::string& account_id);
  bool idInUse(const std::string& id) const;
  Status appendToLedger(const std::filesystem::path& path, const std::vector<std::string>& ids,
                        std::set<std::string>& recorded);
  Status shred(const std::set<std::string>& ids, std::int64_t now_ms, bool record_unknown);

  std::filesystem::path path_;
  int lock_fd_;
  core::Random& random_;
  KeyStoreOptions options_;
  mutable std::mutex mu_;
  State state_;
  std::set<std::string> ledger_;  // ids read from and appended to the ledger file
};

// ---- Opening the hierarchy ---------------------------------------------------------------------

struct KeyHierarchy {
  std::unique_ptr<KeyStore> keys;
  std::filesystem::path master_key_path;
  bool created_master_key = false;  // the daemon logs where, and asks for a separate backup
};

// The one way the daemon and the CLI open the keys of config.server.data_dir. The master key comes
// from config.master_key_file (which must exist, lie outside the data directory, and pass
// loadMasterKey) or, when that is empty, from defaultMasterKeyPath(). With `create`, a missing
// data directory is created (mode 0700), and a missing default key file is created — but only
// when the data directory holds no key store yet; then KeyStore::open(create). Nothing is created
// when one of these refusals applies. Errors are those of the functions named, plus
// FailedPrecondition
//   "master key file <path>: not found, but <data_dir> already holds a key store: restore the key
//    file from its backup (a new master key cannot open existing data)"
//   "master key file <path>: lies inside the data directory <dir> (keep it elsewhere, so that a
//    copy of the data directory does not carry its key)"
//   "master key file <path>: lies inside the data directory <dir> (the default under
//    $XDG_CONFIG_HOME or $HOME/.config: set master_key_file to a file outside the data directory,
//    so that a copy of the data directory does not carry its key)"
//   with `create`, when there is no keystore.json but a non-empty confab.db, or any file under
//   blobs/ (a lost key store: a new one could never open that data):
//   "<data_dir> holds a database | holds blob files but no key store (keystore.json): restore
//    keystore.json from a backup; a new key store cannot open existing data"
// Exit code 2 for FailedPrecondition and InvalidArgument, 1 otherwise.
// `read_only` (not with `create`): see KeyStoreOptions::read_only.
Result<KeyHierarchy> openKeyHierarchy(const config::Config& config, core::Random& random,
                                      bool create, core::Clock* clock = nullptr,
                                      bool read_only = false);

}  // namespace confab::store
