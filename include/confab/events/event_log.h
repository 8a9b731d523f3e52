// SPDX-License-Identifier: Apache-2.0
#pragma once
// EventLog: the stored part of users' event streams. Functions take the Database of a
// transaction the caller runs (Store::write / Store::read), so that a domain change and the
// events announcing it commit together. Stateless apart from its settings; thread-safe.

#include <confab/core/result.h>
#include <confab/events/event.h>
#include <confab/store/database.h>

#include <cstdint>
#include <vector>

namespace confab::events {

struct Retention {
  std::int64_t max_age_ms = 24LL * 3600 * 1000;
  std::int64_t max_count = 10000;  // per user
};

struct Replay {
  std::vector<Event> events;  // seq > after, in order, at most `limit`
  bool resync = false;        // some events after `after` are gone (or `after` was never issued):
                              // the client must resync; `events` is then empty
  bool more = false;          // more than `limit` remain
  std::int64_t last_seq = 0;  // the user's latest seq
};

class EventLog {
 public:
  // Appends one event to each recipient's stream, assigning the next seq of each. `data` must be
  // a serialised JSON object. Returns the stored events (one per recipient).
  static Result<std::vector<Event>> append(store::Database& db,
                                           const std::vector<Recipient>& recipients,
                                           const std::string& id, const std::string& type,
                                           const std::string& actor, const std::string& data,
                                           std::int64_t ts_ms);

  // The events of `who` after seq `after`.
  static Result<Replay> since(store::Database& db, const Recipient& who, std::int64_t after,
                              int limit);

  // The latest seq of `who` (0 if none yet).
  static Result<std::int64_t> lastSeq(store::Database& db, const Recipient& who);

  // Removes events older than the retention age and beyond the retention count per user.
  // Returns how many rows went. Sequence numbers are not reused afterwards.
  static Result<std::int64_t> purge(store::Database& db, const Retention& retention,
                                    std::int64_t now_ms, int batch);
};

}  // namespace confab::events
