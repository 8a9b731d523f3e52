// SPDX-License-Identifier: Apache-2.0
#include "net/websocket_session.h"

#include <confab/core/log.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <deque>
#include <optional>

#include "net/rate_limiter.h"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using namespace std::chrono_literals;

namespace confab::net {
namespace {

constexpr auto kUse = asio::as_tuple(asio::use_awaitable);

class WsConnection final : public WebSocketConnection,
                           public std::enable_shared_from_this<WsConnection> {
 public:
  WsConnection(TlsStream stream, Request request, std::shared_ptr<SessionContext> ctx)
      : ws_(std::move(stream)),
        request_(std::move(request)),
        ctx_(std::move(ctx)),
        signal_(ws_.get_executor()),
        write_deadline_(ws_.get_executor()),
        log_(core::logger("net")) {}

  void send(std::string text, bool bounded) override {
    asio::post(ws_.get_executor(), [self = shared_from_this(), t = std::move(text),
                                    bounded]() mutable { self->enqueue(std::move(t), bounded); });
  }

  void close(CloseCode code, std::string reason) override {
    asio::post(ws_.get_executor(),
               [self = shared_from_this(), code, r = std::move(reason)]() mutable {
                 self->requestClose(code, std::move(r));
               });
  }

  asio::any_io_executor executor() override { return ws_.get_executor(); }
  const Request& upgradeRequest() const override { return request_; }

  asio::awaitable<void> run(beast::http::request<beast::http::string_body> upgrade,
                            std::shared_ptr<WebSocketHandler> handler);

 private:
  void enqueue(std::string text, bool bounded) {
    if (closed_ || close_request_) {
      return;
    }
    // Only bounded messages count: an unbounded replay ahead of them in the queue is no sign
    // of a slow reader, and must not get a fast one closed as soon as live messages follow.
    if (bounded &&
        bounded_queued_ >= static_cast<std::size_t>(ctx_->options->websocket.send_queue_messages)) {
      // A reader this slow would hold unbounded memory; it resumes from its last seq instead.
      log_->info("request_id={} websocket send queue overflow ({} messages): closing with 1008",
                 request_.request_id, queue_.size());
      requestClose(CloseCode::PolicyViolation, "send queue overflow; reconnect with your last seq");
      return;
    }
    queue_.push_back({std::move(text), bounded});
    bounded_queued_ += bounded ? 1 : 0;
    signal_.cancel();
  }

  void requestClose(CloseCode code, std::string reason) {
    if (closed_ || close_request_) {
      return;
    }
    if (reason.size() > 120) {
      reason.resize(120);  // RFC 6455 §5.5: control frame payloads are at most 125 bytes
    }
    close_request_.emplace(code, std::move(reason));
    signal_.cancel();
  }

  // Beast's idle timeout watches what arrives, not what leaves: a peer that keeps sending but
  // never reads would hold a write (and its queue) for ever. Each write and the close get
  // request_timeout_ms; past it the socket is cut. The generation tells a timer that fires
  // after its write finished that it has nothing to do.
  void armWriteDeadline() {
    auto generation = write_generation_;
    write_deadline_.expires_after(
        std::chrono::milliseconds(ctx_->options->limits.request_timeout_ms));
    write_deadline_.async_wait([weak = weak_from_this(), generation](boost::system::error_code ec) {
      auto self = weak.lock();
      if (ec || !self || self->write_generation_ != generation) {
        return;
      }
      self->log_->info("request_id={} websocket write timed out; closing",
                       self->request_.request_id);
      beast::get_lowest_layer(self->ws_).close();
    });
  }

  asio::awaitable<void> writer() {
    auto self = shared_from_this();
    while (!closed_) {
      if (close_request_) {
        websocket::close_reason why;
        why.code = static_cast<std::uint16_t>(close_request_->first);
        why.reason = close_request_->second;
        armWriteDeadline();
        co_await ws_.async_close(why, kUse);
        ++write_generation_;
        break;
      }
      if (!queue_.empty()) {
        std::string msg = std::move(queue_.front().first);
        bounded_queued_ -= queue_.front().second ? 1 : 0;
        queue_.pop_front();
        ws_.text(true);
        armWriteDeadline();
        auto [ec, n] = co_await ws_.async_write(asio::buffer(msg), kUse);
        ++write_generation_;
        (void)n;
        if (ec) {
          break;
        }
        continue;
      }
      signal_.expires_at(asio::steady_timer::time_point::max());
      co_await signal_.async_wait(kUse);
    }
  }

  websocket::stream<TlsStream> ws_;
  Request request_;
  std::shared_ptr<SessionContext> ctx_;
  asio::steady_timer signal_;
  asio::steady_timer write_deadline_;
  std::uint64_t write_generation_ = 0;
  std::shared_ptr<spdlog::logger> log_;
  std::deque<std::pair<std::string, bool>> queue_;  // text, bounded
  std::size_t bounded_queued_ = 0;                  // bounded messages in queue_
  std::optional<std::pair<CloseCode, std::string>> close_request_;
  bool closed_ = false;
};

asio::awaitable<void> WsConnection::run(beast::http::request<beast::http::string_body> upgrade,
                                        std::shared_ptr<WebSocketHandler> handler) {
  auto self = shared_from_this();
  const auto& opts = ctx_->options->websocket;
  // Beast's own timeouts take over from the TCP stream's: a ping at half the idle timeout,
  // and the connection ends when nothing at all arrives for the whole of it.
  beast::get_lowest_layer(ws_).expires_never();
  websocket::stream_base::timeout timeouts;
  timeouts.handshake_timeout = std::chrono::milliseconds(ctx_->options->limits.request_timeout_ms);
  timeouts.idle_timeout = std::chrono::milliseconds(opts.ping_interval_ms) * 2;
  timeouts.keep_alive_pings = true;
  ws_.set_option(timeouts);
  ws_.read_message_max(static_cast<std::size_t>(opts.max_message_bytes));
  ws_.set_option(websocket::stream_base::decorator([id = request_.request_id](
                                                       websocket::response_type& res) {
    res.set("X-Request-Id", id);
    res.set(beast::http::field::strict_transport_security, "max-age=63072000; includeSubDomains");
  }));
  auto [aec] = co_await ws_.async_accept(upgrade, kUse);
  if (aec) {
    co_return;
  }

  auto id = ctx_->registry->add([weak = weak_from_this()](bool force) {
    if (auto c = weak.lock()) {
      asio::post(c->ws_.get_executor(), [c, force] {
        if (force) {
          beast::get_lowest_layer(c->ws_).close();
        } else {
          c->requestClose(CloseCode::GoingAway, "server shutting down");
        }
      });
    }
  });
  ctx_->metrics->add("confab_websocket_connections", {}, 1);
  if (ctx_->stopping->load()) {
    requestClose(CloseCode::GoingAway, "server shutting down");
  }
  asio::co_spawn(ws_.get_executor(), writer(), asio::detached);

  try {
    co_await handler->onOpen(self);
  } catch (const std::exception& e) {
    log_->error("request_id={} websocket open failed: {}", request_.request_id, e.what());
    requestClose(CloseCode::InternalError, "internal error");
  }

  TokenBucket bucket(opts.messages_per_second, opts.message_burst);
  beast::flat_buffer buffer;
  for (;;) {
    auto [ec, n] = co_await ws_.async_read(buffer, kUse);
    (void)n;
    if (ec) {
      // Beast has already sent 1009 (too big), 1007 (bad UTF-8) or 1002 (protocol) as fitting.
      log_->debug("request_id={} websocket ended: {}", request_.request_id, ec.message());
      break;
    }
    if (close_request_) {
      buffer.consume(buffer.size());
      continue;  // draining until the peer answers our close
    }
    if (!ws_.got_text()) {
      buffer.consume(buffer.size());
      requestClose(CloseCode::UnsupportedData, "text messages only");
      continue;
    }
    if (!bucket.take(std::chrono::steady_clock::now(), nullptr)) {
      buffer.consume(buffer.size());
      requestClose(CloseCode::PolicyViolation, "message rate limit exceeded");
      continue;
    }
    std::string text = beast::buffers_to_string(buffer.data());
    buffer.consume(buffer.size());
    try {
      co_await handler->onMessage(self, std::move(text));
    } catch (const std::exception& e) {
      log_->error("request_id={} websocket message failed: {}", request_.request_id, e.what());
      requestClose(CloseCode::InternalError, "internal error");
    }
  }
  closed_ = true;
  signal_.cancel();
  write_deadline_.cancel();
  ctx_->registry->remove(id);
  ctx_->metrics->add("confab_websocket_connections", {}, -1);
  handler->onClose(*this);
  // The writer holds its own reference, so the stream outlives it even after we return.
}

}  // namespace

asio::awaitable<void> runWebSocket(TlsStream stream,
                                   beast::http::request<beast::http::string_body> upgrade,
                                   Request request, std::shared_ptr<WebSocketHandler> handler,
                                   std::shared_ptr<SessionContext> ctx) {
  auto conn = std::make_shared<WsConnection>(std::move(stream), std::move(request), std::move(ctx));
  co_await conn->run(std::move(upgrade), std::move(handler));
}

}  // namespace confab::net
