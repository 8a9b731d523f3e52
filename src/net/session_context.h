// SPDX-License-Identifier: Apache-2.0
#pragma once
// What every connection of one listener shares: options, metrics, the rate limiter, the registry
// of open connections (for shutdown), and how requests are answered. Owned by the Server's
// state through shared_ptr; each session holds one, so it outlives every session.

#include <confab/core/metrics.h>
#include <confab/core/random.h>
#include <confab/net/router.h>
#include <confab/net/server.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "net/rate_limiter.h"

namespace confab::net {

// Open connections, each with a way to ask it to end. Thread-safe.
class ConnectionRegistry {
 public:
  // `end(force)`: called from any thread; must post to the connection's strand. force=false
  // asks for a graceful end (finish the request in flight, close WebSockets with 1001);
  // force=true cuts the socket.
  std::uint64_t add(std::function<void(bool force)> end);
  void remove(std::uint64_t id);
  void endAll(bool force);
  std::size_t size() const;

 private:
  mutable std::mutex mu_;
  std::uint64_t next_ = 1;
  std::unordered_map<std::uint64_t, std::function<void(bool)>> open_;
};

struct SessionContext {
  enum class Kind { Api, Redirect, Metrics };
  Kind kind = Kind::Api;
  const char* listener = "https";  // metrics label
  ServerOptions* options = nullptr;
  const Router* router = nullptr;
  core::Metrics* metrics = nullptr;
  core::Random* random = nullptr;
  RateLimiter* limiter = nullptr;
  ConnectionRegistry* registry = nullptr;
  std::atomic<bool>* stopping = nullptr;
  const std::string* public_url = nullptr;
  std::atomic<int>* connections = nullptr;
};

}  // namespace confab::net
