// SPDX-License-Identifier: Apache-2.0
#pragma once
// The WebSocket seam between net and the modules that speak over /api/v1/events. net owns the
// socket, framing, limits, ping/pong and close handshake; a WebSocketHandler owns the protocol
// spoken inside (authentication, subscriptions). Handlers never see Beast.

#include <confab/net/http.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace confab::net {

// RFC 6455 §7.4.1 status codes used by Confab.
enum class CloseCode : std::uint16_t {
  Normal = 1000,
  GoingAway = 1001,  // server shutting down
  ProtocolError = 1002,
  UnsupportedData = 1003,  // binary message where text is expected
  InvalidPayload = 1007,   // invalid UTF-8 in a text message
  PolicyViolation = 1008,  // auth missing or refused, rate limit, send queue overflow
  TooBig = 1009,
  InternalError = 1011,
};

// One open WebSocket. send() and close() are thread-safe and never block: they post to the
// connection's strand. After close, further sends are dropped. Lives as long as someone holds it.
class WebSocketConnection {
 public:
  virtual ~WebSocketConnection() = default;
  // Queues a text message. If the peer does not keep up and the bounded messages waiting in the
  // queue reach websocket.send_queue_messages, the connection is closed with 1008 (the client
  // reconnects and resumes by sequence number). `bounded=false` exempts the message from that
  // limit and from the count: for a replay whose size is already bounded by the event retention.
  virtual void send(std::string text, bool bounded = true) = 0;
  virtual void close(CloseCode code, std::string reason) = 0;
  // The connection's strand: handlers run on it, timers a handler starts should too.
  virtual boost::asio::any_io_executor executor() = 0;
  // The upgrade request (headers, remote address, request id; no body).
  virtual const Request& upgradeRequest() const = 0;
};

class WebSocketHandler {
 public:
  virtual ~WebSocketHandler() = default;
  // After the upgrade completed, on the connection's strand.
  virtual boost::asio::awaitable<void> onOpen(std::shared_ptr<WebSocketConnection> conn) = 0;
  // Each complete text message (valid UTF-8, within the size limit), on the strand, in order.
  virtual boost::asio::awaitable<void> onMessage(std::shared_ptr<WebSocketConnection> conn,
                                                 std::string text) = 0;
  // Once, after the connection is closed for any reason, on the strand.
  virtual void onClose(WebSocketConnection& conn) = 0;
};

}  // namespace confab::net
