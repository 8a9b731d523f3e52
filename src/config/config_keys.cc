// SPDX-License-Identifier: Apache-2.0
#include "config/config_keys.h"

#include <algorithm>
#include <arpa/inet.h>
#include <cctype>

namespace confab::config {
namespace {

std::string checkAddress(const std::string& a) {
  unsigned char buf[16];
  if (inet_pton(AF_INET, a.c_str(), buf) == 1 || inet_pton(AF_INET6, a.c_str(), buf) == 1) {
    return {};
  }
  return "must be an IPv4 or IPv6 address, not a host name";
}

// scheme://host[:port] with nothing after it; `httpsOnly` restricts the scheme.
std::string checkOrigin(const std::string& v, bool httpsOnly) {
  auto scheme_end = v.find("://");
  if (scheme_end == std::string::npos) {
    return "must be an origin such as https://chat.example.com";
  }
  auto scheme = v.substr(0, scheme_end);
  if (scheme != "https" && (httpsOnly || scheme != "http")) {
    return httpsOnly ? "must start with https://" : "must start with https:// or http://";
  }
  auto rest = v.substr(scheme_end + 3);
  if (rest.empty() || rest.find_first_of("/?#@ ") != std::string::npos) {
    return "must be scheme://host[:port] with no path, query or user part";
  }
  // A port, if any, follows the last ':' outside an IPv6 literal's brackets.
  auto colon = rest.rfind(':');
  if (colon != std::string::npos && rest.find(']', colon) == std::string::npos &&
      (rest[0] != '[' || rest.find(']') < colon)) {
    auto port = rest.substr(colon + 1);
    bool digits = !port.empty() && port.size() <= 5 &&
                  port.find_first_not_of("0123456789") == std::string::npos;
    if (!digits || std::stoi(port) < 1 || std::stoi(port) > 65535) {
      return "has an invalid port \"" + port + "\" (1 to 65535)";
    }
    if (colon == 0) {
      return "must name a host";
    }
  }
  return {};
}

// A region name: [a-z0-9-]{1,32}, as it appears in account records and the configuration.
std::string checkRegionName(const std::string& r) {
  if (r.empty() || r.size() > 32 ||
      r.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") != std::string::npos) {
    return "\"" + r + "\" must be 1 to 32 characters of a-z, 0-9 and -";
  }
  return {};
}

// "CC=region" entries: a two-letter country code, each country once.
std::string checkCountries(const std::vector<std::string>& entries) {
  std::vector<std::string> seen;
  for (const auto& e : entries) {
    auto eq = e.find('=');
    auto cc = e.substr(0, eq);
    bool letters = cc.size() == 2 && std::isalpha(static_cast<unsigned char>(cc[0])) &&
                   std::isalpha(static_cast<unsigned char>(cc[1]));
    if (eq == std::string::npos || !letters) {
      return "\"" + e + "\" must be COUNTRY=region with a two-letter country code (\"CA=us\")";
    }
    if (auto bad = checkRegionName(e.substr(eq + 1)); !bad.empty()) {
      return "\"" + e + "\": region " + bad;
    }
    std::string upper{static_cast<char>(std::toupper(static_cast<unsigned char>(cc[0]))),
                      static_cast<char>(std::toupper(static_cast<unsigned char>(cc[1])))};
    if (std::find(seen.begin(), seen.end(), upper) != seen.end()) {
      return "names " + upper + " twice";
    }
    seen.push_back(upper);
  }
  return {};
}

Key intKey(std::string name, std::int64_t lo, std::int64_t hi, std::function<Field(Config&)> f) {
  return Key{std::move(name), lo, hi, std::move(f), {}};
}
Key strKey(std::string name, std::function<Field(Config&)> f,
           std::function<std::string(const Config&)> check = {}) {
  return Key{std::move(name), 0, 0, std::move(f), std::move(check)};
}

constexpr std::int64_t kMaxMs = 24LL * 3600 * 1000;

}  // namespace

const std::vector<Key>& keys() {
  static const std::vector<Key> kKeys = {
      // Top-level keys first: describe() writes them before the first [section].
      strKey("master_key_file", [](Config& c) -> Field { return &c.master_key_file; }),
      strKey(
          "server.data_dir", [](Config& c) -> Field { return &c.server.data_dir; },
          [](const Config& c) {
            return c.server.data_dir.empty() ? std::string("must not be empty") : std::string();
          }),
      strKey(
          "server.public_url", [](Config& c) -> Field { return &c.server.public_url; },
          [](const Config& c) {
            return c.server.public_url.empty() ? std::string()
                                               : checkOrigin(c.server.public_url, true);
          }),
      strKey(
          "server.https_address", [](Config& c) -> Field { return &c.server.https.address; },
          [](const Config& c) { return checkAddress(c.server.https.address); }),
      intKey("server.https_port", 0, 65535,
             [](Config& c) -> Field { return &c.server.https.port; }),
      strKey(
          "server.http_address", [](Config& c) -> Field { return &c.server.http.address; },
          [](const Config& c) { return checkAddress(c.server.http.address); }),
      intKey("server.http_port", 0, 65535, [](Config& c) -> Field { return &c.server.http.port; }),
      strKey(
          "server.metrics_address", [](Config& c) -> Field { return &c.server.metrics.address; },
          [](const Config& c) { return checkAddress(c.server.metrics.address); }),
      intKey("server.metrics_port", 0, 65535,
             [](Config& c) -> Field { return &c.server.metrics.port; }),
      intKey("server.threads", 1, 256, [](Config& c) -> Field { return &c.server.threads; }),
      intKey("server.shutdown_grace_ms", 0, 600000,
             [](Config& c) -> Field { return &c.server.shutdown_grace_ms; }),
      strKey(
          "tls.cert_file", [](Config& c) -> Field { return &c.tls.cert_file; },
          [](const Config& c) {
            return c.tls.cert_file.empty() != c.tls.key_file.empty()
                       ? std::string("tls.cert_file and tls.key_file must be set together")
                       : std::string();
          }),
      strKey("tls.key_file", [](Config& c) -> Field { return &c.tls.key_file; }),
      intKey("limits.header_bytes", 1024, 1024 * 1024,
             [](Config& c) -> Field { return &c.limits.header_bytes; }),
      // Bodies are held in memory while a request is handled; large uploads stream through
      // their own routes (blob store), so the general limit stays modest.
      intKey("limits.body_bytes", 1024, 64LL * 1024 * 1024,
             [](Config& c) -> Field { return &c.limits.body_bytes; }),
      intKey("limits.request_timeout_ms", 100, kMaxMs,
             [](Config& c) -> Field { return &c.limits.request_timeout_ms; }),
      intKey("limits.idle_timeout_ms", 100, kMaxMs,
             [](Config& c) -> Field { return &c.limits.idle_timeout_ms; }),
      intKey("limits.connections", 1, 1000000,
             [](Config& c) -> Field { return &c.limits.connections; }),
      intKey("limits.json_depth", 1, 512, [](Config& c) -> Field { return &c.limits.json_depth; }),
      intKey("limits.requests_per_second", 1, 1000000,
             [](Config& c) -> Field { return &c.limits.requests_per_second; }),
      intKey("limits.request_burst", 1, 1000000,
             [](Config& c) -> Field { return &c.limits.request_burst; }),
      strKey(
          "websocket.allowed_origins",
          [](Config& c) -> Field { return &c.websocket.allowed_origins; },
          [](const Config& c) {
            for (const auto& o : c.websocket.allowed_origins) {
              if (auto e = checkOrigin(o, false); !e.empty()) {
                return "\"" + o + "\" " + e;
              }
            }
            return std::string();
          }),
      intKey("websocket.max_message_bytes", 128, 64 * 1024 * 1024,
             [](Config& c) -> Field { return &c.websocket.max_message_bytes; }),
      intKey("websocket.auth_timeout_ms", 100, 600000,
             [](Config& c) -> Field { return &c.websocket.auth_timeout_ms; }),
      intKey("websocket.ping_interval_ms", 100, 3600000,
             [](Config& c) -> Field { return &c.websocket.ping_interval_ms; }),
      intKey("websocket.messages_per_second", 1, 100000,
             [](Config& c) -> Field { return &c.websocket.messages_per_second; }),
      intKey("websocket.message_burst", 1, 100000,
             [](Config& c) -> Field { return &c.websocket.message_burst; }),
      intKey("websocket.send_queue_messages", 16, 1000000,
             [](Config& c) -> Field { return &c.websocket.send_queue_messages; }),
      intKey("events.retention_seconds", 1, 365LL * 24 * 3600,
             [](Config& c) -> Field { return &c.events.retention_seconds; }),
      intKey("events.retention_count", 1, 10000000,
             [](Config& c) -> Field { return &c.events.retention_count; }),
      intKey("store.read_connections", 1, 64,
             [](Config& c) -> Field { return &c.store.read_connections; }),
      intKey("store.busy_timeout_ms", 0, 600000,
             [](Config& c) -> Field { return &c.store.busy_timeout_ms; }),
      intKey("store.page_cache_kib", 256, 4 * 1024 * 1024,
             [](Config& c) -> Field { return &c.store.page_cache_kib; }),
      intKey("audit.checkpoint_entries", 1, 1000000,
             [](Config& c) -> Field { return &c.audit.checkpoint_entries; }),
      intKey("audit.checkpoint_interval_seconds", 1, 24 * 3600,
             [](Config& c) -> Field { return &c.audit.checkpoint_interval_seconds; }),
      intKey("audit.retention_days", 1, 36500,
             [](Config& c) -> Field { return &c.audit.retention_days; }),
      Key{"audit.min_retention_days", 1, 36500,
          [](Config& c) -> Field { return &c.audit.min_retention_days; },
          [](const Config& c) {
            return c.audit.retention_days < c.audit.min_retention_days
                       ? "must not exceed audit.retention_days (" +
                             std::to_string(c.audit.retention_days) + ")"
                       : std::string();
          }},
      intKey("retention.interval_seconds", 1, 24 * 3600,
             [](Config& c) -> Field { return &c.retention.interval_seconds; }),
      intKey("retention.batch_size", 1, 100000,
             [](Config& c) -> Field { return &c.retention.batch_size; }),
      strKey(
          "region.serves", [](Config& c) -> Field { return &c.region.serves; },
          [](const Config& c) { return checkRegionName(c.region.serves); }),
      strKey(
          "region.countries", [](Config& c) -> Field { return &c.region.countries; },
          [](const Config& c) { return checkCountries(c.region.countries); }),
      // RFC 9106 asks for at least 8 KiB per lane; more than 4 GiB per sign-in is a mistake.
      intKey("passwords.argon2_memory_kib", 8192, 4 * 1024 * 1024,
             [](Config& c) -> Field { return &c.passwords.argon2_memory_kib; }),
      intKey("passwords.argon2_iterations", 1, 100,
             [](Config& c) -> Field { return &c.passwords.argon2_iterations; }),
      intKey("passwords.argon2_parallelism", 1, 64,
             [](Config& c) -> Field { return &c.passwords.argon2_parallelism; }),
      strKey(
          "log.format", [](Config& c) -> Field { return &c.log.format; },
          [](const Config& c) {
            return c.log.format == "text" || c.log.format == "json"
                       ? std::string()
                       : std::string("must be \"text\" or \"json\"");
          }),
      strKey(
          "log.level", [](Config& c) -> Field { return &c.log.level; },
          [](const Config& c) {
            static const char* kLevels[] = {"trace", "debug",    "info", "warn",
                                            "error", "critical", "off"};
            return std::find(std::begin(kLevels), std::end(kLevels), c.log.level) !=
                           std::end(kLevels)
                       ? std::string()
                       : std::string(
                             "must be one of trace, debug, info, warn, error, "
                             "critical, off");
          }),
  };
  return kKeys;
}

std::string environmentName(const std::string& key) {
  std::string out = "CONFAB_";
  for (char c : key) {
    out += c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

}  // namespace confab::config
