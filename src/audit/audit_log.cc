// SPDX-License-Identifier: Apache-2.0
#include <confab/audit/audit_log.h>
#include <confab/core/log.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <functional>
#include <istream>
#include <tuple>

#include "audit/chain.h"

namespace confab::audit {
namespace {

using nlohmann::json;
namespace crypto = core::crypto;

// The head and the time of its entry (NULL once retention removed every entry).
constexpr std::string_view kHead =
    "SELECT h.seq, h.hash, h.checkpoint_seq, e.ts FROM audit_heads h LEFT JOIN audit_entries e "
    "ON e.account_id = h.account_id AND e.seq = h.seq WHERE h.account_id = ?1";

constexpr std::string_view kSeqRange =
    "SELECT min(seq), max(seq) FROM audit_entries WHERE account_id = ?1";
constexpr std::string_view kTsAt =
    "SELECT ts FROM audit_entries WHERE account_id = ?1 AND seq = ?2";

constexpr std::string_view kInsert = R"sql(
INSERT INTO audit_entries (account_id, seq, ts, actor_account, actor_user, real_account,
  real_user, client_address, client_port, action, target_type, target_id, outcome, details,
  prev_hash, hash)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16))sql";

constexpr std::string_view kUpsertHead = R"sql(
INSERT INTO audit_heads (account_id, seq, hash, checkpoint_seq, checkpoint_ts)
VALUES (?1, ?2, ?3, 0, 0)
ON CONFLICT (account_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash)sql";

constexpr std::string_view kInsertCheckpoint = R"sql(
INSERT INTO audit_checkpoints (account_id, seq, hash, ts, key_id, signature)
VALUES (?1, ?2, ?3, ?4, ?5, ?6))sql";

constexpr std::string_view kMarkCheckpoint =
    "UPDATE audit_heads SET checkpoint_seq = ?2, checkpoint_ts = ?3 WHERE account_id = ?1";

constexpr std::string_view kUnsigned =
    "SELECT account_id, seq, hash FROM audit_heads WHERE seq > checkpoint_seq ORDER BY account_id";

constexpr std::string_view kColumns =
    "SELECT account_id, seq, ts, actor_account, actor_user, real_account, real_user, "
    "client_address, client_port, action, target_type, target_id, outcome, details, prev_hash, "
    "hash FROM audit_entries WHERE account_id = ?1";

constexpr std::string_view kCheckpoints =
    "SELECT account_id, seq, hash, ts, key_id, signature FROM audit_checkpoints "
    "WHERE account_id = ?1 ORDER BY seq";

// Every account with any trace of a chain: a deleted head row must not hide one from verify.
constexpr std::string_view kAccounts =
    "SELECT account_id FROM audit_heads UNION SELECT account_id FROM audit_entries "
    "UNION SELECT account_id FROM audit_checkpoints ORDER BY 1";

constexpr std::string_view kRetention =
    "SELECT retention_days FROM audit_settings WHERE account_id = ?1";

constexpr std::string_view kSetRetention = R"sql(
INSERT INTO audit_settings (account_id, retention_days) VALUES (?1, ?2)
ON CONFLICT (account_id) DO UPDATE SET retention_days = excluded.retention_days)sql";

constexpr std::size_t kMaxDetails = 32;
constexpr std::size_t kMaxText = 1024;
constexpr std::size_t kMaxId = 256;

Error invalid(const std::string& field, const std::string& why) {
  return makeError(ErrorCode::InvalidArgument, "audit entry: " + field + " " + why, field);
}

// "noun.verb" or deeper: lower-case letters, digits and '_' between dots.
bool validAction(std::string_view a) {
  if (a.empty() || a.size() > 64 || a.front() == '.' || a.back() == '.') {
    return false;
  }
  bool dot = false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char c = a[i];
    if (c == '.') {
      if (a[i - 1] == '.') {
        return false;
      }
      dot = true;
    } else if (!(std::islower(static_cast<unsigned char>(c)) ||
                 std::isdigit(static_cast<unsigned char>(c)) || c == '_')) {
      return false;
    }
  }
  return dot;
}

bool validDetailName(std::string_view n) {
  return !n.empty() && n.size() <= 64 && std::all_of(n.begin(), n.end(), [](char c) {
    return std::islower(static_cast<unsigned char>(c)) ||
           std::isdigit(static_cast<unsigned char>(c)) || c == '_';
  });
}

Status validate(const Entry& e) {
  if (e.account_id.empty() || e.account_id.size() > kMaxId) {
    return invalid("account_id", "must be 1 to 256 bytes");
  }
  if (!validAction(e.action)) {
    return invalid("action", "must look like \"noun.verb\" (lower case, at most 64 bytes)");
  }
  for (const auto* f : {&e.actor.account_id, &e.actor.user_id, &e.actor.real_account_id,
                        &e.actor.real_user_id, &e.client.address, &e.target_type, &e.target_id}) {
    if (f->size() > kMaxId) {
      return invalid("target", "identifiers must be at most 256 bytes");
    }
  }
  if (e.client.port < 0 || e.client.port > 65535) {
    return invalid("client.port", "must be 0 to 65535");
  }
  if (e.details.size() > kMaxDetails) {
    return invalid("details", "may hold at most 32 values");
  }
  for (const auto& [name, value] : e.details) {
    if (!validDetailName(name)) {
      return invalid("details",
                     "names must be [a-z0-9_]{1,64}, not \"" + name.substr(0, 64) + "\"");
    }
    if (const auto* s = std::get_if<std::string>(&value); s && s->size() > kMaxText) {
      return invalid("details." + name, "is longer than 1024 bytes");
    }
  }
  return {};
}

// `s` with every byte sequence that is not well-formed UTF-8 replaced by U+FFFD.
std::string utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = c < 0x80           ? 1
                    : (c >> 5) == 0x6  ? 2
                    : (c >> 4) == 0xe  ? 3
                    : (c >> 3) == 0x1e ? 4
                                       : 0;
    bool ok = n > 0 && i + n <= s.size();
    std::uint32_t cp = n == 1 ? c : n == 2 ? c & 0x1f : n == 3 ? c & 0x0f : c & 0x07;
    for (std::size_t k = 1; ok && k < n; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      ok = (cc & 0xc0) == 0x80;
      cp = (cp << 6) | (cc & 0x3f);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8 either.
    ok = ok && !(n == 2 && cp < 0x80) && !(n == 3 && cp < 0x800) && !(n == 4 && cp < 0x10000) &&
         !(cp >= 0xd800 && cp <= 0xdfff) && cp <= 0x10ffff;
    if (ok) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += "\xef\xbf\xbd";
      ++i;
    }
  }
  return out;
}

std::string detailsJson(const Details& details) {
  json j = json::object();
  for (const auto& [name, value] : details) {
    std::visit([&](const auto& v) { j[name] = v; }, value);
  }
  // Invalid UTF-8 is replaced rather than thrown: an entry must never fail on it.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Record readRecord(const store::Statement& s) {
  Record r;
  r.account_id = s.text(0);
  r.seq = s.int64(1);
  r.ts = s.int64(2);
  r.actor = {s.text(3), s.text(4), s.text(5), s.text(6)};
  r.client = {s.text(7), static_cast<int>(s.int64(8))};
  r.action = s.text(9);
  r.target_type = s.text(10);
  r.target_id = s.text(11);
  r.outcome = outcomeFromName(s.text(12)).value_or(Outcome::Failure);
  r.details = s.text(13);
  r.prev_hash = s.text(14);
  r.hash = s.text(15);
  return r;
}

Checkpoint readCheckpoint(const store::Statement& s) {
  return {s.text(0), s.int64(1), s.text(2), s.int64(3), s.text(4), s.text(5)};
}

Result<Checkpoint> checkpointFromJson(const json& j) {
  auto str = [&](const char* k) -> const json* {
    auto it = j.find(k);
    return it != j.end() && it->is_string() ? &*it : nullptr;
  };
  auto num = [&](const char* k) -> const json* {
    auto it = j.find(k);
    return it != j.end() && it->is_number_integer() ? &*it : nullptr;
  };
  if (!j.is_object() || !str("account_id") || !num("seq") || !str("hash") || !num("ts") ||
      !str("key_id") || !str("signature")) {
    return makeError(ErrorCode::InvalidArgument, "not a checkpoint object");
  }
  return Checkpoint{j["account_id"].get<std::string>(), j["seq"].get<std::int64_t>(),
                    j["hash"].get<std::string>(),       j["ts"].get<std::int64_t>(),
                    j["key_id"].get<std::string>(),     j["signature"].get<std::string>()};
}

json checkpointJson(const Checkpoint& c) {
  return {{"account_id", c.account_id},
          {"seq", c.seq},
          {"hash", c.hash},
          {"ts", c.ts},
          {"key_id", c.key_id},
          {"signature", c.signature}};
}

}  // namespace

std::string_view outcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::Success:
      return "success";
    case Outcome::Denied:
      return "denied";
    case Outcome::Failure:
      break;
  }
  return "failure";
}

std::optional<Outcome> outcomeFromName(std::string_view name) {
  if (name == "success") {
    return Outcome::Success;
  }
  if (name == "denied") {
    return Outcome::Denied;
  }
  if (name == "failure") {
    return Outcome::Failure;
  }
  return std::nullopt;
}

AuditLog::AuditLog(std::shared_ptr<const crypto::Ed25519Key> signing_key, core::Clock& clock,
                   AuditOptions options)
    : signing_key_(std::move(signing_key)), clock_(clock), options_(options) {
  key_id_ = keyIdOf(signing_key_->publicKey());
  trusted_[key_id_] = signing_key_->publicKey();
}

std::string AuditLog::keyIdOf(const std::array<std::uint8_t, 32>& public_key) {
  return crypto::toHex(crypto::sha256(public_key)).substr(0, 16);
}

void AuditLog::trust(const std::array<std::uint8_t, 32>& public_key) {
  trusted_[keyIdOf(public_key)] = public_key;
}

void AuditLog::trustOnly(const std::array<std::uint8_t, 32>& public_key) {
  trusted_.clear();
  trust(public_key);
}

Result<Record> AuditLog::append(store::Database& db, const Entry& entry) const {
  CONFAB_TRY(validate(entry));
  // Stored and hashed as the API shows them: bytes that are not UTF-8 (a percent-decoded path,
  // say) become U+FFFD first, so that anyone can recompute a hash from an export.
  Record r;
  r.account_id = utf8(entry.account_id);
  r.actor = {utf8(entry.actor.account_id), utf8(entry.actor.user_id),
             utf8(entry.actor.real_account_id), utf8(entry.actor.real_user_id)};
  r.client = {utf8(entry.client.address), entry.client.port};
  r.action = entry.action;
  r.target_type = utf8(entry.target_type);
  r.target_id = utf8(entry.target_id);
  r.outcome = entry.outcome;
  r.details = detailsJson(entry.details);
  r.ts = core::toUnixMillis(clock_.now());
  std::int64_t checkpoint_seq = 0;
  {
    auto head = db.cached(kHead);
    if (!head.ok()) {
      return head.error();
    }
    (*head)->bind(1, entry.account_id);
    auto row = (*head)->step();
    if (!row.ok()) {
      return row.error();
    }
    if (*row) {
      r.seq = (*head)->int64(0) + 1;
      r.prev_hash = (*head)->text(1);
      checkpoint_seq = (*head)->int64(2);
      // Time never goes backwards within a chain (a clock stepped back records the previous
      // entry's time), which makes every time range a seq range.
      if (!(*head)->isNull(3)) {
        r.ts = std::max(r.ts, (*head)->int64(3));
      }
    } else {
      r.seq = 1;
      r.prev_hash = genesisHash(entry.account_id);
    }
    (*head)->reset();  // a cached statement must not stay open on its row
  }
  r.hash = chainHash(r);
  auto ins = db.cached(kInsert);
  if (!ins.ok()) {
    return ins.error();
  }
  (*ins)
      ->bind(1, r.account_id)
      .bind(2, r.seq)
      .bind(3, r.ts)
      .bind(4, r.actor.account_id)
      .bind(5, r.actor.user_id)
      .bind(6, r.actor.real_account_id)
      .bind(7, r.actor.real_user_id)
      .bind(8, r.client.address)
      .bind(9, std::int64_t(r.client.port))
      .bind(10, r.action)
      .bind(11, r.target_type)
      .bind(12, r.target_id)
      .bind(13, outcomeName(r.outcome))
      .bind(14, r.details)
      .bind(15, r.prev_hash)
      .bind(16, r.hash);
  CONFAB_TRY((*ins)->run());
  auto up = db.cached(kUpsertHead);
  if (!up.ok()) {
    return up.error();
  }
  CONFAB_TRY((*up)->bind(1, r.account_id).bind(2, r.seq).bind(3, r.hash).run());
  if (r.seq - checkpoint_seq >= options_.checkpoint_entries) {
    auto c = sign(db, r.account_id, r.seq, r.hash);
    if (!c.ok()) {
      return c.error();
    }
  }
  return r;
}

Result<Checkpoint> AuditLog::sign(store::Database& db, const std::string& account_id,
                                  std::int64_t seq, const std::string& hash) const {
  Checkpoint c{account_id, seq, hash, core::toUnixMillis(clock_.now()), key_id_, {}};
  auto sig = signing_key_->sign(crypto::asBytes(checkpointMessage(c)));
  if (!sig) {
    return makeError(ErrorCode::Internal, "cannot sign an audit checkpoint");
  }
  c.signature = crypto::toBase64(*sig);
  auto ins = db.prepare(kInsertCheckpoint);
  if (!ins.ok()) {
    return ins.error();
  }
  ins->bind(1, c.account_id)
      .bind(2, c.seq)
      .bind(3, c.hash)
      .bind(4, c.ts)
      .bind(5, c.key_id)
      .bind(6, c.signature);
  CONFAB_TRY(ins->run());
  auto mark = db.prepare(kMarkCheckpoint);
  if (!mark.ok()) {
    return mark.error();
  }
  mark->bind(1, account_id).bind(2, seq).bind(3, c.ts);
  CONFAB_TRY(mark->run());
  // The copy outside the database, once the checkpoint is durable.
  db.afterCommit([line = checkpointJson(c).dump()] {
    core::logger("audit")->info("audit checkpoint {}", line);
  });
  return c;
}

Result<int> AuditLog::checkpointAll(store::Database& db) const {
  std::vector<std::tuple<std::string, std::int64_t, std::string>> heads;
  {
    auto s = db.prepare(kUnsigned);
    if (!s.ok()) {
      return s.error();
    }
    CONFAB_TRY(s->forEachRow([&](const store::Statement& row) {
      heads.emplace_back(row.text(0), row.int64(1), row.text(2));
    }));
  }
  // One account that cannot be signed (a head record edited by hand, say) must not stop the
  // others: SQLite rolls back just the failed statement, and the error is logged.
  int made = 0;
  for (const auto& [account, seq, hash] : heads) {
    auto c = sign(db, account, seq, hash);
    if (c.ok()) {
      ++made;
    } else {
      core::logger("audit")->error("cannot sign the head of account {}'s chain (seq {}): {}",
                                   account, seq, c.error().message);
    }
  }
  return made;
}

namespace {

// The seqs [first, end) of the account's entries with from <= ts < to, by binary search on the
// primary key: ts never decreases along a chain, and seqs are contiguous from the first one
// retention left.
Result<std::pair<std::int64_t, std::int64_t>> seqRangeForTime(store::Database& db,
                                                              const std::string& account,
                                                              std::optional<std::int64_t> from,
                                                              std::optional<std::int64_t> to) {
  auto range = db.cached(kSeqRange);
  if (!range.ok()) {
    return range.error();
  }
  auto row = (*range)->bind(1, account).step();
  if (!row.ok()) {
    return row.error();
  }
  if (!*row || (*range)->isNull(0)) {
    (*range)->reset();
    return std::pair<std::int64_t, std::int64_t>{0, 0};
  }
  const std::int64_t first = (*range)->int64(0);
  const std::int64_t last = (*range)->int64(1);
  (*range)->reset();
  auto tsAt = [&](std::int64_t seq) -> Result<std::int64_t> {
    auto s = db.cached(kTsAt);
    if (!s.ok()) {
      return s.error();
    }
    auto r = (*s)->bind(1, account).bind(2, seq).step();
    if (!r.ok()) {
      return r.error();
    }
    std::int64_t ts = *r ? (*s)->int64(0) : 0;
    (*s)->reset();
    return ts;
  };
  // The first seq whose ts >= bound (last + 1 when none).
  auto lowerBound = [&](std::int64_t bound) -> Result<std::int64_t> {
    std::int64_t lo = first;
    std::int64_t hi = last + 1;
    while (lo < hi) {
      std::int64_t mid = lo + (hi - lo) / 2;
      auto ts = tsAt(mid);
      if (!ts.ok()) {
        return ts.error();
      }
      if (*ts < bound) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return lo;
  };
  std::int64_t begin = first;
  std::int64_t end = last + 1;
  if (from) {
    auto b = lowerBound(*from);
    if (!b.ok()) {
      return b.error();
    }
    begin = *b;
  }
  if (to) {
    auto e = lowerBound(*to);
    if (!e.ok()) {
      return e.error();
    }
    end = *e;
  }
  return std::pair<std::int64_t, std::int64_t>{begin, end};
}

}  // namespace

Result<Page> AuditLog::query(store::Database& db, const Query& q) const {
  if (q.account_id.empty()) {
    return makeError(ErrorCode::InvalidArgument, "an account is required", "account_id");
  }
  if (q.limit < 1 || q.limit > 1000) {
    return makeError(ErrorCode::InvalidArgument, "limit must be 1 to 1000", "limit");
  }
  std::string sql(kColumns);
  // Fixed fragments with bound parameters, chosen by which filters are set. Every query walks
  // the account's primary key in seq order (bounded by the time window), testing the filters.
  int n = 1;
  std::vector<std::function<void(store::Statement&)>> binds;
  auto add = [&](std::string_view fragment, auto value) {
    ++n;
    sql += " AND " + std::string(fragment) + std::to_string(n);
    binds.push_back([n, value](store::Statement& s) { s.bind(n, value); });
  };
  if (q.from_ms || q.to_ms) {
    auto range = seqRangeForTime(db, q.account_id, q.from_ms, q.to_ms);
    if (!range.ok()) {
      return range.error();
    }
    if (range->first >= range->second) {
      return Page{};  // no entry in the window
    }
    add("seq >= ?", range->first);
    add("seq < ?", range->second);
  }
  if (!q.actor_user_id.empty()) {
    ++n;
    sql +=
        " AND (actor_user = ?" + std::to_string(n) + " OR real_user = ?" + std::to_string(n) + ")";
    binds.push_back([n, v = q.actor_user_id](store::Statement& s) { s.bind(n, v); });
  }
  if (!q.action.empty()) {
    bool prefix = q.action.size() > 2 && q.action.ends_with(".*");
    std::string base = prefix ? q.action.substr(0, q.action.size() - 2) : q.action;
    if (!validAction(prefix ? base + ".x" : base)) {
      return makeError(ErrorCode::InvalidArgument,
                       "action must be an action name (\"user.created\") or a prefix ending in "
                       "\".*\" (\"user.*\")",
                       "action");
    }
    if (prefix) {
      // Action names hold no LIKE wildcards ('%', '_' is escaped), so a prefix is a range.
      add("action >= ?", base + ".");
      add("action < ?", base + "/");  // '/' follows '.' in ASCII
    } else {
      add("action = ?", base);
    }
  }
  if (!q.target_type.empty()) {
    add("target_type = ?", q.target_type);
  }
  if (!q.target_id.empty()) {
    add("target_id = ?", q.target_id);
  }
  if (q.outcome) {
    add("outcome = ?", std::string(outcomeName(*q.outcome)));
  }
  if (q.after) {
    add(q.newest_first ? "seq < ?" : "seq > ?", *q.after);
  }
  sql += q.newest_first ? " ORDER BY seq DESC" : " ORDER BY seq";
  sql += " LIMIT " + std::to_string(q.limit + 1);
  auto s = db.prepare(sql);
  if (!s.ok()) {
    return s.error();
  }
  s->bind(1, q.account_id);
  for (auto& b : binds) {
    b(*s);
  }
  Page page;
  for (;;) {
    auto row = s->step();
    if (!row.ok()) {
      return row.error();
    }
    if (!*row) {
      break;
    }
    if (static_cast<int>(page.records.size()) == q.limit) {
      page.next = page.records.back().seq;
      break;
    }
    page.records.push_back(readRecord(*s));
  }
  return page;
}

bool AuditLog::verifies(const Checkpoint& c) const {
  return checkpointValid(c);
}

bool AuditLog::checkpointValid(const Checkpoint& c) const {
  auto key = trusted_.find(c.key_id);
  auto sig = crypto::fromBase64(c.signature);
  return key != trusted_.end() && sig && sig->size() == 64 &&
         crypto::ed25519Verify(key->second, crypto::asBytes(checkpointMessage(c)),
                               crypto::asBytes(*sig));
}

namespace {

// The head record, which appending and signing continue from, must agree with the chain (its
// last entry `head` with `head_hash`, its last stored checkpoint `last_signed`): an edited head
// would let checkpoints be skipped or make the next append fail. `expected`: the chain has
// entries or checkpoints, so a head record must exist.
Result<std::optional<Break>> headBreak(store::Database& db, const std::string& account_id,
                                       std::int64_t head, const std::string& head_hash,
                                       std::int64_t last_signed, bool expected) {
  auto h = db.prepare(kHead);
  if (!h.ok()) {
    return h.error();
  }
  auto row = h->bind(1, account_id).step();
  if (!row.ok()) {
    return row.error();
  }
  if (!*row) {
    return expected ? std::optional<Break>(Break{head, "the chain has no head record (deleted)"})
                    : std::nullopt;
  }
  const std::int64_t seq = h->int64(0);
  const std::int64_t signed_seq = h->int64(2);
  if (seq != head || h->text(1) != head_hash) {
    return std::optional<Break>(
        Break{std::min(seq, head) + 1, "the chain's head record (entry " + std::to_string(seq) +
                                           ") does not match its last entry (" +
                                           std::to_string(head) + "): edited"});
  }
  if (signed_seq != last_signed) {
    return std::optional<Break>(
        Break{std::min(signed_seq, last_signed) + 1,
              "the chain's head record says entry " + std::to_string(signed_seq) +
                  " was the last signed one, but the last stored checkpoint covers entry " +
                  std::to_string(last_signed) + " (checkpoints deleted, or the head edited)"});
  }
  return std::optional<Break>();
}

}  // namespace

Result<VerifyReport> AuditLog::verify(store::Database& db, const std::string& account_id,
                                      const std::vector<Checkpoint>& logged) const {
  VerifyReport report;
  report.account_id = account_id;
  auto brk = [&](std::int64_t seq, std::string reason) {
    if (!report.broken) {
      report.broken = Break{seq, std::move(reason)};
    }
  };
  // The stored checkpoints, and the logged ones of this account, by seq.
  std::map<std::int64_t, Checkpoint> stored;
  {
    auto s = db.prepare(kCheckpoints);
    if (!s.ok()) {
      return s.error();
    }
    s->bind(1, account_id);
    CONFAB_TRY(s->forEachRow([&](const store::Statement& row) {
      Checkpoint c = readCheckpoint(row);
      stored.emplace(c.seq, std::move(c));
    }));
  }
  std::multimap<std::int64_t, const Checkpoint*> outside;
  for (const auto& c : logged) {
    if (c.account_id == account_id) {
      outside.emplace(c.seq, &c);
    }
  }
  // Signatures first: a checkpoint that does not verify proves nothing about its entries.
  for (const auto& [seq, c] : stored) {
    ++report.checkpoints;
    if (!checkpointValid(c)) {
      brk(seq, "the stored checkpoint at entry " + std::to_string(seq) +
                   " has no valid signature (key " + c.key_id + ")");
    }
  }
  for (const auto& [seq, c] : outside) {
    ++report.logged_checkpoints;
    if (!checkpointValid(*c)) {
      brk(seq, "the logged checkpoint at entry " + std::to_string(seq) +
                   " has no valid signature (key " + c->key_id + ")");
    }
  }
  if (report.broken) {
    return report;
  }

  auto s = db.prepare(std::string(kColumns) + " ORDER BY seq");
  if (!s.ok()) {
    return s.error();
  }
  s->bind(1, account_id);
  std::int64_t expected = 0;  // the next seq the chain must hold
  std::string prev;
  std::string last_hash;
  // The last seq the audit retention job says it removed: every removal appends, in the same
  // transaction, a retention.removed entry with through_seq, so a chain that starts after 1
  // without one saying so lost its oldest entries by other means.
  std::int64_t removed_through = 0;
  auto checkAgainst = [&](const Record& r, const Checkpoint& c, const char* which) {
    if (c.hash != r.hash) {
      brk(r.seq, "entry " + std::to_string(r.seq) + " does not match the " + which +
                     " signed checkpoint (rows edited and the chain recomputed?)");
    }
  };
  for (;;) {
    auto row = s->step();
    if (!row.ok()) {
      return row.error();
    }
    if (!*row) {
      break;
    }
    Record r = readRecord(*s);
    if (s->text(12) != outcomeName(r.outcome)) {
      brk(r.seq, "entry " + std::to_string(r.seq) + " has an unknown outcome (edited)");
      return report;
    }
    if (report.entries == 0) {
      report.first_seq = r.seq;
      if (r.seq == 1) {
        prev = genesisHash(account_id);
      } else {
        // Older entries went by retention; the signed checkpoint it left must anchor this one.
        auto anchor = stored.find(r.seq - 1);
        if (anchor == stored.end()) {
          brk(r.seq, "entries before " + std::to_string(r.seq) +
                         " are missing and no signed checkpoint anchors entry " +
                         std::to_string(r.seq - 1));
          return report;
        }
        prev = anchor->second.hash;
        for (auto [it, end] = outside.equal_range(r.seq - 1); it != end; ++it) {
          if (it->second->hash != prev) {
            brk(r.seq - 1, "the checkpoint at entry " + std::to_string(r.seq - 1) +
                               " differs from the one in the log");
            return report;
          }
        }
      }
      expected = r.seq;
    }
    if (r.seq != expected) {
      brk(expected, "entry " + std::to_string(expected) + " is missing (deleted)");
      return report;
    }
    if (r.prev_hash != prev) {
      brk(r.seq, "entry " + std::to_string(r.seq) + " does not link to entry " +
                     std::to_string(r.seq - 1) + " (deleted, reordered or edited rows)");
      return report;
    }
    if (chainHash(r) != r.hash) {
      brk(r.seq, "entry " + std::to_string(r.seq) + " does not match its hash (edited)");
      return report;
    }
    if (auto c = stored.find(r.seq); c != stored.end()) {
      checkAgainst(r, c->second, "stored");
    }
    for (auto [it, end] = outside.equal_range(r.seq); it != end; ++it) {
      checkAgainst(r, *it->second, "logged");
    }
    if (report.broken) {
      return report;
    }
    if (r.action == "retention.removed" && r.target_type == "retention_job" &&
        r.target_id == "audit" && r.actor.user_id.empty()) {
      auto d = json::parse(r.details, nullptr, false);
      if (d.is_object() && d.contains("through_seq") && d["through_seq"].is_number_integer()) {
        removed_through = d["through_seq"].get<std::int64_t>();
      }
    }
    prev = r.hash;
    last_hash = r.hash;
    ++report.entries;
    report.last_seq = r.seq;
    ++expected;
  }
  // Checkpoints beyond the last entry: entries were cut off the end. Retention keeps exactly one
  // checkpoint before the first entry (its anchor) and none older, so with no entries left the one
  // remaining checkpoint is the head; a second one means entries went without retention.
  std::int64_t head = report.entries ? report.last_seq : 0;
  if (!report.entries && !stored.empty()) {
    head = stored.begin()->first;
    if (auto logged_anchor = outside.equal_range(head);
        logged_anchor.first != logged_anchor.second) {
      for (auto it = logged_anchor.first; it != logged_anchor.second; ++it) {
        if (it->second->hash != stored.begin()->second.hash) {
          brk(head, "the checkpoint at entry " + std::to_string(head) +
                        " differs from the one in the log");
        }
      }
    }
  }
  if (!stored.empty() && stored.rbegin()->first > head) {
    brk(head + 1, "entries after " + std::to_string(head) +
                      " are missing: a signed checkpoint covers entry " +
                      std::to_string(stored.rbegin()->first));
  }
  if (!outside.empty() && outside.rbegin()->first > head) {
    brk(head + 1, "entries after " + std::to_string(head) +
                      " are missing: a checkpoint in the log covers entry " +
                      std::to_string(outside.rbegin()->first));
  }
  if (report.entries > 0 && report.first_seq > 1 && removed_through != report.first_seq - 1) {
    brk(report.first_seq - 1,
        "entries up to " + std::to_string(report.first_seq - 1) +
            " are gone, but no retention record of the chain says it removed them (deleted "
            "by hand?)");
  }
  if (report.broken) {
    return report;
  }
  const std::int64_t last_signed = stored.empty() ? 0 : stored.rbegin()->first;
  const std::string head_hash = report.entries > 0 ? last_hash
                                : stored.empty()   ? std::string()
                                                   : stored.begin()->second.hash;
  auto held = headBreak(db, account_id, head, head_hash, last_signed,
                        report.entries > 0 || !stored.empty());
  if (!held.ok()) {
    return held.error();
  }
  if (*held) {
    brk((*held)->seq, std::move((*held)->reason));
  }
  return report;
}

Result<std::vector<std::string>> AuditLog::accounts(store::Database& db) const {
  auto s = db.prepare(kAccounts);
  if (!s.ok()) {
    return s.error();
  }
  std::vector<std::string> out;
  CONFAB_TRY(s->forEachRow([&](const store::Statement& row) { out.push_back(row.text(0)); }));
  return out;
}

Result<int> AuditLog::retentionDays(store::Database& db, const std::string& account_id) const {
  auto s = db.prepare(kRetention);
  if (!s.ok()) {
    return s.error();
  }
  s->bind(1, account_id);
  auto row = s->step();
  if (!row.ok()) {
    return row.error();
  }
  // Never below the configured minimum, even if the minimum was raised after the setting.
  int days = *row ? static_cast<int>(s->int64(0)) : options_.default_retention_days;
  return std::max(days, options_.min_retention_days);
}

Status AuditLog::setRetentionDays(store::Database& db, const std::string& account_id,
                                  int days) const {
  if (days < options_.min_retention_days || days > 36500) {
    return makeError(ErrorCode::InvalidArgument,
                     "retention_days must be at least " +
                         std::to_string(options_.min_retention_days) +
                         " (the configured minimum, audit.min_retention_days) and at most 36500",
                     "retention_days");
  }
  auto s = db.prepare(kSetRetention);
  if (!s.ok()) {
    return s.error();
  }
  s->bind(1, account_id).bind(2, std::int64_t(days));
  return s->run();
}

Result<std::vector<Checkpoint>> parseLoggedCheckpoints(std::istream& in) {
  // The marker with the object's opening brace: other lines that mention audit checkpoints (a
  // failure, say) are not checkpoints.
  static constexpr std::string_view kMarker = "audit checkpoint {";
  std::vector<Checkpoint> out;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    auto at = line.find(kMarker);
    if (at == std::string::npos) {
      continue;
    }
    std::string text;
    if (!line.empty() && line.front() == '{') {
      // --log-format json: the checkpoint is inside the message string.
      json j = json::parse(line, nullptr, false);
      auto msg = j.is_object() && j.contains("msg") && j["msg"].is_string()
                     ? j["msg"].get<std::string>()
                     : std::string();
      auto m = msg.find(kMarker);
      if (m == std::string::npos) {
        continue;
      }
      text = msg.substr(m + kMarker.size() - 1);
    } else {
      text = line.substr(at + kMarker.size() - 1);
    }
    auto c = checkpointFromJson(json::parse(text, nullptr, false));
    if (!c.ok()) {
      return makeError(ErrorCode::InvalidArgument, "line " + std::to_string(number) +
                                                       ": an audit checkpoint that does not "
                                                       "parse");
    }
    out.push_back(std::move(*c));
  }
  return out;
}

// Unix milliseconds as RFC 3339 in UTC with milliseconds: "2026-12-04T07:00:00.250Z".
static std::string rfc3339(std::int64_t ms) {
  std::time_t secs = static_cast<std::time_t>(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char out[96];
  std::snprintf(out, sizeof out, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms - static_cast<std::int64_t>(secs) * 1000));
  return out;
}

std::string toJson(const Record& r) {
  json actor = {{"account_id", r.actor.account_id},
                {"user_id", r.actor.user_id.empty() ? json(nullptr) : json(r.actor.user_id)}};
  if (!r.actor.real_user_id.empty()) {
    actor["real_account_id"] = r.actor.real_account_id;
    actor["real_user_id"] = r.actor.real_user_id;
  }
  json j = {
      {"account_id", r.account_id},
      {"seq", r.seq},
      {"ts", r.ts},
      {"time", rfc3339(r.ts)},
      {"actor", std::move(actor)},
      {"client", r.client.address.empty()
                     ? json(nullptr)
                     : json{{"address", r.client.address}, {"port", r.client.port}}},
      {"action", r.action},
      {"target", r.target_type.empty() && r.target_id.empty()
                     ? json(nullptr)
                     : json{{"type", r.target_type}, {"id", r.target_id}}},
      {"outcome", outcomeName(r.outcome)},
      {"details", json::parse(r.details, nullptr, false)},
      {"prev_hash", r.prev_hash},
      {"hash", r.hash},
  };
  if (j["details"].is_discarded()) {
    j["details"] = json::object();
  }
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace confab::audit
