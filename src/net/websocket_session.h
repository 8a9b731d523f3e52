// SPDX-License-Identifier: Apache-2.0
#pragma once
// Runs a WebSocket over an HTTPS connection whose upgrade request has been read and approved
// (route found, Origin allowed). Returns when the WebSocket is closed.

#include <confab/net/websocket.h>

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <memory>

#include "net/session_context.h"

namespace confab::net {

using TlsStream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

boost::asio::awaitable<void> runWebSocket(
    TlsStream stream, boost::beast::http::request<boost::beast::http::string_body> upgrade,
    Request request, std::shared_ptr<WebSocketHandler> handler,
    std::shared_ptr<SessionContext> ctx);

}  // namespace confab::net
