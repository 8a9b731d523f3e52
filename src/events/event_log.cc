// SPDX-License-Identifier: Apache-2.0
#include <confab/events/event_log.h>

#include <nlohmann/json.hpp>

#include <string_view>

namespace confab::events {
namespace {

constexpr std::string_view kNextSeq = R"sql(
INSERT INTO event_streams (account_id, user_id, last_seq) VALUES (?1, ?2, 1)
ON CONFLICT (account_id, user_id) DO UPDATE SET last_seq = last_seq + 1
RETURNING last_seq)sql";

constexpr std::string_view kInsert = R"sql(
INSERT INTO events (account_id, user_id, seq, id, type, ts, actor, data)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8))sql";

constexpr std::string_view kLastSeq =
    "SELECT last_seq FROM event_streams WHERE account_id = ?1 AND user_id = ?2";

constexpr std::string_view kSince = R"sql(
SELECT seq, id, type, ts, actor, data FROM events
WHERE account_id = ?1 AND user_id = ?2 AND seq > ?3 ORDER BY seq LIMIT ?4)sql";

constexpr std::string_view kPurgeOld = R"sql(
DELETE FROM events WHERE (account_id, user_id, seq) IN (
  SELECT account_id, user_id, seq FROM events WHERE ts < ?1 LIMIT ?2))sql";

constexpr std::string_view kPurgeExcess = R"sql(
DELETE FROM events WHERE (account_id, user_id, seq) IN (
  SELECT e.account_id, e.user_id, e.seq FROM events e
  JOIN event_streams s ON s.account_id = e.account_id AND s.user_id = e.user_id
  WHERE e.seq <= s.last_seq - ?1 LIMIT ?2))sql";

Result<std::int64_t> singleInt(store::Database& db, std::string_view sql, const Recipient& who) {
  auto stmt = db.prepare(sql);
  if (!stmt.ok())
    return stmt.error();
  stmt->bind(1, who.account_id).bind(2, who.user_id);
  auto row = stmt->step();
  if (!row.ok())
    return row.error();
  return *row && !stmt->isNull(0) ? stmt->int64(0) : 0;
}

}  // namespace

std::string Event::toJson() const {
  nlohmann::json j;
  j["id"] = id;
  j["seq"] = seq;
  j["type"] = type;
  j["ts"] = ts;
  j["account_id"] = account_id;
  j["actor"] = actor.empty() ? nlohmann::json(nullptr) : nlohmann::json(actor);
  auto parsed = nlohmann::json::parse(data, nullptr, false);
  j["data"] = parsed.is_discarded() ? nlohmann::json::object() : std::move(parsed);
  // Invalid UTF-8 from an emitter must not throw on an I/O thread: replace it (U+FFFD).
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Result<std::vector<Event>> EventLog::append(store::Database& db,
                                            const std::vector<Recipient>& recipients,
                                            const std::string& id, const std::string& type,
                                            const std::string& actor, const std::string& data,
                                            std::int64_t ts_ms) {
  std::vector<Event> out;
  out.reserve(recipients.size());
  auto next = db.prepare(kNextSeq);
  if (!next.ok())
    return next.error();
  auto insert = db.prepare(kInsert);
  if (!insert.ok())
    return insert.error();
  for (const auto& r : recipients) {
    next->reset();
    next->bind(1, r.account_id).bind(2, r.user_id);
    auto row = next->step();
    if (!row.ok())
      return row.error();
    Event e{id, next->int64(0), type, ts_ms, r.account_id, r.user_id, actor, data};
    while (true) {  // finish the RETURNING statement before the next one
      auto more = next->step();
      if (!more.ok())
        return more.error();
      if (!*more)
        break;
    }
    insert->reset();
    insert->bind(1, e.account_id).bind(2, e.user_id).bind(3, e.seq).bind(4, e.id);
    insert->bind(5, e.type).bind(6, e.ts);
    if (actor.empty()) {
      insert->bindNull(7);
    } else {
      insert->bind(7, actor);
    }
    insert->bind(8, e.data);
    CONFAB_TRY(insert->run());
    out.push_back(std::move(e));
  }
  return out;
}

Result<std::int64_t> EventLog::lastSeq(store::Database& db, const Recipient& who) {
  return singleInt(db, kLastSeq, who);
}

Result<Replay> EventLog::since(store::Database& db, const Recipient& who, std::int64_t after,
                               int limit) {
  Replay replay;
  auto last = singleInt(db, kLastSeq, who);
  if (!last.ok())
    return last.error();
  replay.last_seq = *last;
  if (after > replay.last_seq || after < 0) {
    replay.resync = true;  // a seq we never issued: the client's state is not ours
    return replay;
  }
  if (after == replay.last_seq) {
    return replay;
  }
  // Everything in (after, last_seq] must still be here, without a gap, or the client has a gap
  // it cannot fill from us. The seqs themselves tell: a purge may have removed the oldest (by
  // count or age), a hole in the middle (by age, if the wall clock stepped back), or run between
  // these statements when the caller reads outside a transaction.
  auto stmt = db.prepare(kSince);
  if (!stmt.ok())
    return stmt.error();
  stmt->bind(1, who.account_id).bind(2, who.user_id).bind(3, after).bind(4, limit + 1);
  std::int64_t expected = after + 1;
  for (;;) {
    auto row = stmt->step();
    if (!row.ok())
      return row.error();
    if (!*row)
      break;
    if (static_cast<int>(replay.events.size()) == limit) {
      replay.more = true;
      break;
    }
    if (stmt->int64(0) != expected) {
      replay.events.clear();
      replay.more = false;
      replay.resync = true;
      return replay;
    }
    ++expected;
    replay.events.push_back(Event{stmt->text(1), stmt->int64(0), stmt->text(2), stmt->int64(3),
                                  who.account_id, who.user_id, stmt->text(4), stmt->text(5)});
  }
  if (replay.events.empty() && !replay.more) {
    replay.resync = true;  // (after, last_seq] is not empty, but nothing of it is left
  }
  return replay;
}

Result<std::int64_t> EventLog::purge(store::Database& db, const Retention& retention,
                                     std::int64_t now_ms, int batch) {
  std::int64_t removed = 0;
  auto old = db.prepare(kPurgeOld);
  if (!old.ok())
    return old.error();
  old->bind(1, now_ms - retention.max_age_ms).bind(2, batch);
  CONFAB_TRY(old->run());
  removed += db.changes();
  auto excess = db.prepare(kPurgeExcess);
  if (!excess.ok())
    return excess.error();
  excess->bind(1, retention.max_count).bind(2, batch);
  CONFAB_TRY(excess->run());
  removed += db.changes();
  return removed;
}

}  // namespace confab::events
