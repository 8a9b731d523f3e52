// SPDX-License-Identifier: Apache-2.0
#pragma once
// Confab's own HTTP request and response values. Handlers and services see these, never Beast:
// that keeps HTTP parsing details inside net and keeps Beast out of every other translation unit.
// Plain values; no thread-safety concerns.

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace confab::net {

using Headers = std::vector<std::pair<std::string, std::string>>;  // names in lower case

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string target;  // as received: path and query
  std::string path;    // percent-decoded path
  std::string query;   // raw query string, without '?'
  Headers headers;
  std::string body;
  std::string remote_address;
  std::uint16_t remote_port = 0;
  std::string request_id;
  std::string route;  // the matched route's pattern ("/api/v1/users/{id}"), for logs and metrics
  std::map<std::string, std::string> params;  // values of the pattern's {name} segments

  // The first header of that name (case-insensitive), if any.
  std::optional<std::string_view> header(std::string_view name) const;
  // The first query parameter of that name, percent-decoded, if any.
  std::optional<std::string> queryParam(std::string_view name) const;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  Headers headers;
  std::string body;
  // A body produced piece by piece instead of `body`, sent with chunked transfer coding so that
  // a large answer (an export) is never held whole. Each call returns the next piece; nullopt
  // ends the body. Once the first piece is sent the status can no longer change: a producer that
  // fails then (returns an error piece it cannot, or throws) ends the connection without the
  // final chunk, which tells the client the body is incomplete. Called on the connection's
  // strand, one call at a time; it may co_await (the store, say).
  std::function<boost::asio::awaitable<std::optional<std::string>>()> stream;

  static Response json(int status, std::string body);
  static Response text(int status, std::string body, std::string content_type = "text/plain");
};

// An RFC 9457 problem document: {"type","title","status","detail","instance"?, "request_id"} plus
// the given extension members (already-serialised JSON values keyed by name).
Response problem(int status, std::string_view title, std::string_view detail,
                 std::string_view request_id, const Headers& extra_headers = {},
                 const std::vector<std::pair<std::string, std::string>>& members = {});

// Escapes a string for inclusion between quotes in JSON.
std::string jsonString(std::string_view s);

using Handler = std::function<boost::asio::awaitable<Response>(Request&)>;

}  // namespace confab::net
