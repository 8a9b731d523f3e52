// SPDX-License-Identifier: Apache-2.0
#pragma once
// AuditLog: the append-only, tamper-evident record of who did what (SPEC.md §7; the exact formats
// are in docs/audit.md).
//
// - Every account has its own hash chain: entry n stores SHA-256 over the hash of entry n-1 and
//   its own fields. append() runs inside the caller's write transaction, so a change and its
//   record commit together or not at all.
// - Every `checkpoint_entries` entries, and whenever checkpointAll() runs (periodically), the head
//   of a chain is signed with an Ed25519 key that lives in the key store, not in the database.
//   Each checkpoint is stored and, once committed, also written to the log as one line
//   ("audit checkpoint {...}"), so a copy exists outside the database.
// - verify() walks a chain against its checkpoints (and those read back from the log) and names
//   the first broken link: an edited, deleted or reordered row, a chain recomputed without the
//   key, or entries cut after the last checkpoint.
// - Old entries go only through the audit retention job (makeAuditRetentionJob), oldest first and
//   up to a signed checkpoint, which stays as the chain's starting point.
//
// Entries hold no message bodies and no secrets: details are short strings, integers and booleans
// under lower-case names. Thread-safe; functions that take a Database run in the caller's
// transaction (Store::write for changes, Store::read for queries and verification). The signing
// key and the clock must outlive the AuditLog.

#include <confab/audit/retention.h>
#include <confab/core/clock.h>
#include <confab/core/crypto.h>
#include <confab/core/result.h>
#include <confab/store/database.h>

#include <array>
#include <cstdint>
#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace confab::audit {

enum class Outcome { Success, Denied, Failure };
std::string_view outcomeName(Outcome outcome);  // "success", "denied", "failure"
std::optional<Outcome> outcomeFromName(std::string_view name);

// Who acted. Under assume-role the effective identity is the Customer Admin role in the customer
// account and the real identity is the Partner Admin who assumed it.
struct Actor {
  std::string account_id;       // effective
  std::string user_id;          // effective; empty: the system itself (a scheduled job, start-up)
  std::string real_account_id;  // empty unless assume-role
  std::string real_user_id;
};

struct Client {
  std::string address;  // empty when no network client is involved (scheduler, command line)
  int port = 0;
};

using DetailValue = std::variant<std::string, std::int64_t, bool>;
using Details = std::vector<std::pair<std::string, DetailValue>>;

// What a caller records.
struct Entry {
  std::string account_id;  // the account whose log it goes into
  Actor actor;
  Client client;
  std::string action;  // "<noun>.<past-tense verb>": "user.created", "audit.exported"
  std::string target_type;
  std::string target_id;
  Outcome outcome = Outcome::Success;
  Details details;
};

// An entry as stored.
struct Record {
  std::string account_id;
  std::int64_t seq = 0;
  std::int64_t ts = 0;  // Unix milliseconds
  Actor actor;
  Client client;
  std::string action;
  std::string target_type;
  std::string target_id;
  Outcome outcome = Outcome::Success;
  std::string details;    // the JSON object, as stored and hashed
  std::string prev_hash;  // 64 hex digits
  std::string hash;
};

struct Checkpoint {
  std::string account_id;
  std::int64_t seq = 0;  // the last entry it covers
  std::string hash;      // that entry's hash, 64 hex digits
  std::int64_t ts = 0;
  std::string key_id;     // 16 hex digits naming the public key
  std::string signature;  // base64 of the 64-byte Ed25519 signature
};

struct AuditOptions {
  int checkpoint_entries = 1000;  // sign a chain's head at least every this many entries
  int default_retention_days = 730;
  int min_retention_days = 180;
};

struct Query {
  std::string account_id;               // required: the tenant boundary
  std::optional<std::int64_t> from_ms;  // ts >= from
  std::optional<std::int64_t> to_ms;    // ts < to
  std::string actor_user_id;            // effective or real user
  std::string action;                   // exact, or a prefix ending in ".*" ("user.*")
  std::string target_type;
  std::string target_id;
  std::optional<Outcome> outcome;
  bool newest_first = false;
  std::optional<std::int64_t> after;  // cursor: the seq the previous page ended with
  int limit = 100;                    // 1..1000
};

struct Page {
  std::vector<Record> records;
  std::optional<std::int64_t> next;  // cursor for the next page; empty when this is the last
};

struct Break {
  std::int64_t seq = 0;  // the first entry (or checkpoint) where the chain does not hold
  std::string reason;
};

struct VerifyReport {
  std::string account_id;
  std::int64_t first_seq = 0;  // 0 when the account has no entries
  std::int64_t last_seq = 0;
  std::int64_t entries = 0;
  std::int64_t checkpoints = 0;         // stored checkpoints checked
  std::int64_t logged_checkpoints = 0;  // checkpoints from the log checked
  std::optional<Break> broken;          // empty: the chain holds
};

class AuditLog {
 public:
  // `signing_key` signs checkpoints; verify() trusts its public key and any given to trust() (an
  // exported key, for `confabd audit verify --public-key`).
  AuditLog(std::shared_ptr<const core::crypto::Ed25519Key> signing_key, core::Clock& clock,
           AuditOptions options = {});

  // Appends `entry` to its account's chain (signing a checkpoint when one is due). Errors:
  // InvalidArgument (field named) for an entry out of bounds — an empty account or action, an
  // action not of the form "noun.verb", over 32 details, a detail name not [a-z0-9_]{1,64}, a
  // string over 1024 bytes — which makes the caller's whole transaction fail; Internal on a
  // store failure.
  Result<Record> append(store::Database& db, const Entry& entry) const;

  // Signs the head of every chain that has entries newer than its last checkpoint. Returns how
  // many checkpoints it made.
  Result<int> checkpointAll(store::Database& db) const;

  // Entries of one account, filtered, in seq order (or newest first), a page at a time.
  // InvalidArgument (field named) for a bad limit or action pattern.
  Result<Page> query(store::Database& db, const Query& query) const;

  // Walks `account_id`'s chain from its first stored entry (or the signed checkpoint retention
  // left before it) to its head, checking every link, every stored checkpoint and every one of
  // `logged` for that account (parseLoggedCheckpoints).
  Result<VerifyReport> verify(store::Database& db, const std::string& account_id,
                              const std::vector<Checkpoint>& logged = {}) const;

  // Every account that has a chain, sorted.
  Result<std::vector<std::string>> accounts(store::Database& db) const;

  // Audit retention, per account: the configured default unless set. setRetentionDays:
  // InvalidArgument (field "retention_days") below the minimum or over 36500.
  Result<int> retentionDays(store::Database& db, const std::string& account_id) const;
  Status setRetentionDays(store::Database& db, const std::string& account_id, int days) const;
  const AuditOptions& options() const { return options_; }

  const std::string& keyId() const { return key_id_; }
  const std::array<std::uint8_t, 32>& publicKey() const { return signing_key_->publicKey(); }
  std::string publicKeyPem() const { return signing_key_->publicKeyPem(); }
  void trust(const std::array<std::uint8_t, 32>& public_key);
  // True when `c`'s signature verifies under a trusted key.
  bool verifies(const Checkpoint& c) const;
  // Trusts this key alone, not even the signing key: `confabd audit verify --public-key` with a
  // copy kept outside the server catches checkpoints re-signed with a replaced key.
  void trustOnly(const std::array<std::uint8_t, 32>& public_key);
  static std::string keyIdOf(const std::array<std::uint8_t, 32>& public_key);

  core::Clock& clock() const { return clock_; }

 private:
  Result<Checkpoint> sign(store::Database& db, const std::string& account_id, std::int64_t seq,
                          const std::string& hash) const;
  bool checkpointValid(const Checkpoint& c) const;

  std::shared_ptr<const core::crypto::Ed25519Key> signing_key_;
  std::string key_id_;
  std::map<std::string, std::array<std::uint8_t, 32>> trusted_;  // by key id
  core::Clock& clock_;
  AuditOptions options_;
};

// The checkpoints in confabd's log, text or JSON format: every line holding "audit checkpoint "
// followed by a checkpoint object. Other lines are skipped; a checkpoint line that does not parse
// is returned as an error naming its line number.
Result<std::vector<Checkpoint>> parseLoggedCheckpoints(std::istream& in);

// The JSON object of a record, as the admin API and the JSON Lines export give it.
std::string toJson(const Record& record);

// The retention job of the audit log: removes each account's entries older than its retention,
// oldest first and only up to a signed checkpoint that is itself older than the limit; that
// checkpoint stays as the chain's signed starting point. One checkpointed segment per batch.
std::unique_ptr<RetentionJob> makeAuditRetentionJob(const AuditLog& log);

}  // namespace confab::audit
