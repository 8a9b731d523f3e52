// SPDX-License-Identifier: Apache-2.0
#pragma once
// EventHub: the live part of users' event streams — who is listening right now. publish() hands
// each event to every subscriber of its recipient. Thread-safe; sinks are called without the
// hub's lock held and must not block (a WebSocket sink posts to its connection's strand).

#include <confab/events/event.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace confab::events {

using EventSink = std::function<void(const Event&)>;

class EventHub {
 public:
  class Subscription {
   public:
    Subscription() = default;
    Subscription(EventHub* hub, std::uint64_t id) : hub_(hub), id_(id) {}
    Subscription(Subscription&& o) noexcept : hub_(o.hub_), id_(o.id_) { o.hub_ = nullptr; }
    Subscription& operator=(Subscription&& o) noexcept;
    ~Subscription() { reset(); }
    void reset();

   private:
    EventHub* hub_ = nullptr;
    std::uint64_t id_ = 0;
  };

  // Live events for `who` go to `sink` until the Subscription is destroyed.
  [[nodiscard]] Subscription subscribe(const Recipient& who, EventSink sink);
  // Delivers events in the order given. Call once the events are committed, from one thread at
  // a time per recipient (the store's writer thread), so that each stream stays in seq order.
  void publish(const std::vector<Event>& events);
  // Number of live subscriptions (for metrics and tests).
  std::size_t size() const;

 private:
  void unsubscribe(std::uint64_t id);
  struct Entry {
    Recipient who;
    std::shared_ptr<EventSink> sink;
  };
  mutable std::mutex mu_;
  std::uint64_t next_ = 1;
  std::map<std::uint64_t, Entry> subs_;
  // (account_id, user_id): a pair, not a joined string, so that no choice of ids can make one
  // user's key equal another's across the tenant boundary.
  std::multimap<std::pair<std::string, std::string>, std::uint64_t> byUser_;
};

}  // namespace confab::events
