// SPDX-License-Identifier: Apache-2.0
// The HTTP request path up to the handler: Beast's parser with the daemon's default limits, the
// conversion to Confab's Request, path decoding, routing and query lookup.
#include <confab/config/config.h>
#include <confab/net/router.h>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>

#include <cstddef>
#include <cstdint>

#include "net/http_request.h"

namespace {

confab::net::Handler nothing() {
  return [](confab::net::Request&) -> boost::asio::awaitable<confab::net::Response> {
    co_return confab::net::Response{};
  };
}

const confab::net::Router& router() {
  static confab::net::Router r = [] {
    confab::net::Router x;
    x.add("GET", "/healthz", nothing());
    x.add("GET", "/api/v1/users/{id}", nothing());
    x.add("DELETE", "/api/v1/users/{id}/sessions/{sid}", nothing());
    x.addWebSocket("/api/v1/events", nullptr);
    return x;
  }();
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace http = boost::beast::http;
  confab::config::Config::Limits limits;
  http::request_parser<http::string_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(limits.header_bytes));
  parser.body_limit(static_cast<std::uint64_t>(limits.body_bytes));
  parser.eager(true);
  boost::beast::error_code ec;
  std::size_t used = 0;
  while (used < size && !parser.is_done()) {
    auto n = parser.put(boost::asio::buffer(data + used, size - used), ec);
    if (ec == http::error::need_more) {
      break;
    }
    if (ec || n == 0) {
      return 0;
    }
    used += n;
  }
  if (!parser.is_done()) {
    return 0;
  }
  auto req = confab::net::toRequest(parser.get(), "127.0.0.1", 40000, "fuzz");
  if (!confab::net::decodePath(req)) {
    return 0;
  }
  std::map<std::string, std::string> params;
  auto m = router().match(req.method, req.path, params);
  if (m.route && m.route->pattern.find('{') == std::string::npos && !params.empty()) {
    __builtin_trap();  // a literal route cannot produce parameters
  }
  (void)router().matchWebSocket(req.path);
  (void)req.queryParam("since");
  (void)req.header("origin");
  return 0;
}
