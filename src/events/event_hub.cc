// SPDX-License-Identifier: Apache-2.0
#include <confab/events/event_hub.h>

namespace confab::events {
namespace {

std::pair<std::string, std::string> key(const std::string& account, const std::string& user) {
  return {account, user};
}

}  // namespace

EventHub::Subscription& EventHub::Subscription::operator=(Subscription&& o) noexcept {
  if (this != &o) {
    reset();
    hub_ = o.hub_;
    id_ = o.id_;
    o.hub_ = nullptr;
  }
  return *this;
}

void EventHub::Subscription::reset() {
  if (hub_) {
    hub_->unsubscribe(id_);
    hub_ = nullptr;
  }
}

EventHub::Subscription EventHub::subscribe(const Recipient& who, EventSink sink) {
  std::lock_guard lock(mu_);
  auto id = next_++;
  subs_.emplace(id, Entry{who, std::make_shared<EventSink>(std::move(sink))});
  byUser_.emplace(key(who.account_id, who.user_id), id);
  return Subscription(this, id);
}

void EventHub::unsubscribe(std::uint64_t id) {
  std::lock_guard lock(mu_);
  auto it = subs_.find(id);
  if (it == subs_.end()) {
    return;
  }
  auto range = byUser_.equal_range(key(it->second.who.account_id, it->second.who.user_id));
  for (auto i = range.first; i != range.second; ++i) {
    if (i->second == id) {
      byUser_.erase(i);
      break;
    }
  }
  subs_.erase(it);
}

void EventHub::publish(const std::vector<Event>& events) {
  for (const auto& e : events) {
    std::vector<std::shared_ptr<EventSink>> sinks;
    {
      std::lock_guard lock(mu_);
      auto range = byUser_.equal_range(key(e.account_id, e.user_id));
      for (auto i = range.first; i != range.second; ++i) {
        sinks.push_back(subs_.at(i->second).sink);
      }
    }
    for (auto& s : sinks) {
      (*s)(e);
    }
  }
}

std::size_t EventHub::size() const {
  std::lock_guard lock(mu_);
  return subs_.size();
}

}  // namespace confab::events
