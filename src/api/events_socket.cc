// SPDX-License-Identifier: Apache-2.0
// /api/v1/events: authentication (Bearer header or first message), replay by seq, live events.
#include <confab/api/json_body.h>
#include <confab/api/routes.h>
#include <confab/core/log.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <mutex>
#include <optional>
#include <unordered_map>

namespace asio = boost::asio;

namespace confab::api {
namespace {

using net::CloseCode;

std::optional<std::int64_t> parseSeq(std::string_view s) {
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < 0) {
    return std::nullopt;
  }
  return v;
}

// The "type" of a client message, or "" if it has none or it is not a string.
std::string messageType(const nlohmann::json& msg) {
  auto it = msg.find("type");
  return it != msg.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string control(std::string_view type, nlohmann::json fields = nlohmann::json::object()) {
  fields["type"] = type;
  return fields.dump();
}

// Per-connection state; touched only on the connection's strand.
struct Stream {
  std::shared_ptr<net::WebSocketConnection> conn;
  bool authenticating = false;
  bool authenticated = false;
  bool replaying = false;
  std::int64_t last_sent = 0;
  std::optional<std::int64_t> since;
  std::vector<events::Event> pending;  // live events that arrived during the replay
  bool pending_dropped = false;        // pending was full: read those events from the store
  std::size_t pending_limit = 0;
  events::EventHub::Subscription subscription;
  std::unique_ptr<asio::steady_timer> auth_deadline;
};

class EventsSocket final : public net::WebSocketHandler,
                           public std::enable_shared_from_this<EventsSocket> {
 public:
  EventsSocket(events::EventBus& bus, Authenticator& auth, EventsSocketOptions options)
      : bus_(bus), auth_(auth), options_(options), log_(core::logger("api")) {}

  asio::awaitable<void> onOpen(std::shared_ptr<net::WebSocketConnection> conn) override {
    auto st = std::make_shared<Stream>();
    st->conn = conn;
    st->pending_limit = static_cast<std::size_t>(std::max(1, options_.replay_batch));
    {
      std::lock_guard lock(mu_);
      streams_[conn.get()] = st;
    }
    const auto& req = conn->upgradeRequest();
    if (auto since = req.queryParam("since")) {
      st->since = parseSeq(*since);
      if (!st->since) {
        conn->close(CloseCode::PolicyViolation, "since must be a non-negative integer");
        co_return;
      }
    }
    if (auto header = req.header("authorization")) {
      // RFC 9110 §11.1: the scheme name is case-insensitive.
      constexpr std::string_view kBearer = "bearer ";
      auto scheme = header->substr(0, std::min(header->size(), kBearer.size()));
      bool bearer = header->size() > kBearer.size() &&
                    std::equal(scheme.begin(), scheme.end(), kBearer.begin(), [](char a, char b) {
                      return std::tolower(static_cast<unsigned char>(a)) == b;
                    });
      if (!bearer) {
        conn->close(CloseCode::PolicyViolation, "Authorization must be a Bearer token");
        co_return;
      }
      co_await start(st, std::string(header->substr(kBearer.size())));
      co_return;
    }
    // Browsers cannot set headers on a WebSocket: they send {"type":"auth"} first, in time.
    st->auth_deadline = std::make_unique<asio::steady_timer>(
        conn->executor(), std::chrono::milliseconds(options_.auth_timeout_ms));
    asio::co_spawn(
        conn->executor(),
        [st]() -> asio::awaitable<void> {
          auto [ec] = co_await st->auth_deadline->async_wait(asio::as_tuple(asio::use_awaitable));
          if (!ec && !st->authenticated) {
            st->conn->close(CloseCode::PolicyViolation, "authentication timeout");
          }
        },
        asio::detached);
  }

  asio::awaitable<void> onMessage(std::shared_ptr<net::WebSocketConnection> conn,
                                  std::string text) override {
    auto st = find(conn.get());
    if (!st) {
      co_return;
    }
    auto msg = parseJsonObject(text, options_.json_depth);
    if (!st->authenticated && !st->authenticating) {
      if (!msg.ok() || messageType(*msg) != "auth" || !msg->contains("token") ||
          !(*msg)["token"].is_string()) {
        conn->close(CloseCode::PolicyViolation, "the first message must be {\"type\":\"auth\"}");
        co_return;
      }
      if (msg->contains("since")) {
        const auto& s = (*msg)["since"];
        if (!s.is_number_integer() || s.get<std::int64_t>() < 0) {
          conn->close(CloseCode::PolicyViolation, "since must be a non-negative integer");
          co_return;
        }
        st->since = s.get<std::int64_t>();
      }
      co_await start(st, (*msg)["token"].get<std::string>());
      co_return;
    }
    if (!msg.ok()) {
      conn->send(control("session.error", {{"detail", msg.error().message}}));
      co_return;
    }
    auto type = messageType(*msg);
    if (type == "ping") {
      conn->send(control("pong"));
    } else if (type == "auth") {
      conn->send(control("session.error", {{"detail", "already authenticated"}}));
    } else {
      conn->send(control("session.error", {{"detail", "unknown message type"}}));
    }
  }

  void onClose(net::WebSocketConnection& conn) override {
    std::shared_ptr<Stream> st;
    {
      std::lock_guard lock(mu_);
      auto it = streams_.find(&conn);
      if (it != streams_.end()) {
        st = std::move(it->second);
        streams_.erase(it);
      }
    }
    if (st) {
      st->subscription.reset();
      if (st->auth_deadline) {
        st->auth_deadline->cancel();
      }
      st->conn.reset();  // breaks the cycle conn -> handler state -> conn
    }
  }

 private:
  std::shared_ptr<Stream> find(net::WebSocketConnection* c) {
    std::lock_guard lock(mu_);
    auto it = streams_.find(c);
    return it == streams_.end() ? nullptr : it->second;
  }

  asio::awaitable<void> start(std::shared_ptr<Stream> st, std::string token) {
    st->authenticating = true;
    auto who = co_await auth_.authenticate(token);
    if (!st->conn) {
      co_return;  // closed meanwhile
    }
    if (!who.ok()) {
      st->conn->close(CloseCode::PolicyViolation, "authentication failed");
      co_return;
    }
    st->authenticated = true;
    if (st->auth_deadline) {
      st->auth_deadline->cancel();
    }
    events::Recipient me{who->account_id, who->user_id};
    st->replaying = true;
    std::weak_ptr<Stream> weak = st;
    auto executor = st->conn->executor();
    // Subscribe before reading the store: an event committed after the read's snapshot is then
    // surely in `pending`, and one in both is dropped by its seq.
    st->subscription = bus_.hub().subscribe(me, [weak, executor](const events::Event& e) {
      asio::post(executor, [weak, e] {
        if (auto s = weak.lock()) {
          deliver(*s, e);
        }
      });
    });
    if (st->since) {
      if (!co_await replay(*st, me, *st->since)) {
        co_return;
      }
    } else {
      auto last = co_await bus_.store().read<std::int64_t>(
          [&](store::Database& db) { return events::EventLog::lastSeq(db, me); });
      if (!st->conn) {
        co_return;
      }
      if (!last.ok()) {
        log_->error("reading the last event seq failed: {}", last.error().message);
        st->conn->close(CloseCode::InternalError, "replay failed");
        co_return;
      }
      st->last_sent = *last;
    }
    // More live events arrived than `pending` holds: they are all in the store by now.
    while (st->pending_dropped) {
      st->pending_dropped = false;
      st->pending.clear();
      if (!co_await replay(*st, me, st->last_sent)) {
        co_return;
      }
    }
    st->replaying = false;
    // What arrived during the replay and session.ready complete the catch-up: like the replay,
    // they are exempt from the send-queue bound (at most one replay batch of them).
    auto pending = std::move(st->pending);
    for (const auto& e : pending) {
      deliver(*st, e, false);
    }
    st->conn->send(
        control("session.ready",
                {{"account_id", me.account_id}, {"user_id", me.user_id}, {"seq", st->last_sent}}),
        false);
  }

  // Sends the stored events of `me` after `after`, batch by batch, or session.resync_required
  // if some of them are gone. False if the connection is closed or closing.
  asio::awaitable<bool> replay(Stream& st, const events::Recipient& me, std::int64_t after) {
    for (;;) {
      auto batch = co_await bus_.store().read<events::Replay>([&](store::Database& db) {
        return events::EventLog::since(db, me, after, options_.replay_batch);
      });
      if (!st.conn) {
        co_return false;
      }
      if (!batch.ok()) {
        log_->error("event replay failed: {}", batch.error().message);
        st.conn->close(CloseCode::InternalError, "replay failed");
        co_return false;
      }
      if (batch->resync) {
        st.conn->send(control("session.resync_required", {{"seq", batch->last_seq}}), false);
        st.last_sent = batch->last_seq;
        co_return true;
      }
      for (const auto& e : batch->events) {
        st.conn->send(e.toJson(), false);
        st.last_sent = e.seq;
      }
      if (!batch->more) {
        st.last_sent = std::max(st.last_sent, after);
        co_return true;
      }
      after = st.last_sent;
    }
  }

  static void deliver(Stream& st, const events::Event& e, bool bounded = true) {
    if (!st.conn) {
      return;
    }
    if (st.replaying) {
      if (st.pending.size() >= st.pending_limit) {
        st.pending_dropped = true;  // read again from the store once this replay is done
      } else {
        st.pending.push_back(e);
      }
      return;
    }
    if (e.seq <= st.last_sent) {
      return;  // already sent by the replay
    }
    st.last_sent = e.seq;
    st.conn->send(e.toJson(), bounded);
  }

  events::EventBus& bus_;
  Authenticator& auth_;
  EventsSocketOptions options_;
  std::shared_ptr<spdlog::logger> log_;
  std::mutex mu_;
  std::unordered_map<net::WebSocketConnection*, std::shared_ptr<Stream>> streams_;
};

}  // namespace

std::shared_ptr<net::WebSocketHandler> makeEventsSocket(events::EventBus& bus,
                                                        Authenticator& authenticator,
                                                        EventsSocketOptions options) {
  return std::make_shared<EventsSocket>(bus, authenticator, options);
}

}  // namespace confab::api
