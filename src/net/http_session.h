// SPDX-License-Identifier: Apache-2.0
#pragma once
// One connection's coroutine: TLS handshake (HTTPS), then HTTP/1.1 requests with keep-alive,
// limits and timeouts, until the peer leaves, a limit ends it, or the server stops.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include <memory>

#include "net/session_context.h"

namespace confab::net {

boost::asio::awaitable<void> serveTlsConnection(boost::asio::ip::tcp::socket socket,
                                                std::shared_ptr<boost::asio::ssl::context> tls,
                                                std::shared_ptr<SessionContext> ctx);

boost::asio::awaitable<void> servePlainConnection(boost::asio::ip::tcp::socket socket,
                                                  std::shared_ptr<SessionContext> ctx);

}  // namespace confab::net
