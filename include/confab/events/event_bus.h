// SPDX-License-Identifier: Apache-2.0
#pragma once
// EventBus: how modules announce what happened. emit() stores one event per recipient (each
// with the recipient's next seq) and, once committed, hands them to the live subscribers.
// Thread-safe. Later, the hub behind it can be carried between nodes (DESIGN.md, scale-out).

#include <confab/core/clock.h>
#include <confab/core/random.h>
#include <confab/events/event_hub.h>
#include <confab/events/event_log.h>
#include <confab/store/store.h>

#include <boost/asio/awaitable.hpp>

namespace confab::events {

class EventBus {
 public:
  EventBus(store::Store& store, EventHub& hub, core::Clock& clock, core::Random& random)
      : store_(store), hub_(hub), clock_(clock), random_(random) {}

  // `data` is a serialised JSON object. Returns the stored events, one per recipient.
  boost::asio::awaitable<Result<std::vector<Event>>> emit(std::vector<Recipient> recipients,
                                                          std::string type, std::string actor,
                                                          std::string data);
  EventHub& hub() { return hub_; }
  store::Store& store() { return store_; }

 private:
  store::Store& store_;
  EventHub& hub_;
  core::Clock& clock_;
  core::Random& random_;
};

}  // namespace confab::events
