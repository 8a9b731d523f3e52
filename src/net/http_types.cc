// SPDX-License-Identifier: Apache-2.0
#include <confab/core/log.h>
#include <confab/net/http.h>

#include <strings.h>

namespace confab::net {
namespace {

int hexValue(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

std::string decodeComponent(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hexValue(s[i + 1]) >= 0 &&
               hexValue(s[i + 2]) >= 0) {
      out += static_cast<char>(hexValue(s[i + 1]) * 16 + hexValue(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

const char* reasonTitle(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 413:
      return "Content Too Large";
    case 415:
      return "Unsupported Media Type";
    case 422:
      return "Unprocessable Content";
    case 426:
      return "Upgrade Required";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Error";
  }
}

}  // namespace

std::optional<std::string_view> Request::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k.size() == name.size() && strncasecmp(k.data(), name.data(), k.size()) == 0) {
      return std::string_view(v);
    }
  }
  return std::nullopt;
}

std::optional<std::string> Request::queryParam(std::string_view name) const {
  std::string_view q = query;
  while (!q.empty()) {
    auto amp = q.find('&');
    auto pair = q.substr(0, amp);
    auto eq = pair.find('=');
    auto key = decodeComponent(pair.substr(0, eq));
    if (key == name) {
      return eq == std::string_view::npos ? std::string() : decodeComponent(pair.substr(eq + 1));
    }
    if (amp == std::string_view::npos) {
      break;
    }
    q.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

Response Response::json(int status, std::string body) {
  return Response{status, "application/json", {}, std::move(body), {}};
}

Response Response::text(int status, std::string body, std::string content_type) {
  return Response{status, std::move(content_type), {}, std::move(body), {}};
}

std::string jsonString(std::string_view s) {
  return "\"" + core::jsonEscape(s) + "\"";
}

Response problem(int status, std::string_view title, std::string_view detail,
                 std::string_view request_id, const Headers& extra_headers,
                 const std::vector<std::pair<std::string, std::string>>& members) {
  std::string body = "{\"type\":\"about:blank\",\"title\":";
  body += jsonString(title.empty() ? reasonTitle(status) : title);
  body += ",\"status\":" + std::to_string(status);
  body += ",\"detail\":" + jsonString(detail);
  body += ",\"request_id\":" + jsonString(request_id);
  for (const auto& [name, value] : members) {
    body += "," + jsonString(name) + ":" + value;
  }
  body += "}";
  Response r{status, "application/problem+json", extra_headers, std::move(body), {}};
  return r;
}

}  // namespace confab::net
