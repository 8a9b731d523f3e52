// SPDX-License-Identifier: Apache-2.0
#pragma once
// One event on a user's stream, in the envelope of DESIGN.md:
// {id, seq, type, ts, account_id, actor, data}. `seq` increases by one per event on each user's
// stream and never goes back, across restarts and purges. Plain value.

#include <cstdint>
#include <string>

namespace confab::events {

struct Recipient {
  std::string account_id;
  std::string user_id;
  bool operator==(const Recipient&) const = default;
};

struct Event {
  std::string id;        // unique per event (the same id on every recipient's copy)
  std::int64_t seq = 0;  // per recipient
  std::string type;      // dotted noun and past-tense verb: "message.created"
  std::int64_t ts = 0;   // Unix milliseconds
  std::string account_id;
  std::string user_id;  // the recipient (not part of the wire envelope)
  std::string actor;    // who caused it; may be empty
  std::string data;     // a JSON object, already serialised

  // The wire envelope as a JSON object.
  std::string toJson() const;
};

}  // namespace confab::events
