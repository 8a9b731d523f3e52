// SPDX-License-Identifier: Apache-2.0
#include <confab/events/event_bus.h>

namespace confab::events {

boost::asio::awaitable<Result<std::vector<Event>>> EventBus::emit(std::vector<Recipient> recipients,
                                                                  std::string type,
                                                                  std::string actor,
                                                                  std::string data) {
  auto id = random_.hex(16);
  auto ts = core::toUnixMillis(clock_.now());
  co_return co_await store_.write<std::vector<Event>>(
      [&](store::Database& db) {
        return EventLog::append(db, recipients, id, type, actor, data, ts);
      },
      [this](const std::vector<Event>& events) { hub_.publish(events); });
}

}  // namespace confab::events
