// SPDX-License-Identifier: Apache-2.0
#pragma once
// Router: maps (method, path) to a handler. Patterns are literal segments and {name} segments
// ("/api/v1/users/{id}"); a {name} matches one non-empty segment. Routes are added at start-up,
// before the server runs; after that the router is read-only and safe to share between threads.

#include <confab/net/http.h>
#include <confab/net/websocket.h>

#include <memory>
#include <string>
#include <vector>

namespace confab::net {

struct Route {
  std::string method;  // "GET", ...; "WS" for a WebSocket endpoint
  std::string pattern;
  Handler handler;
  std::shared_ptr<WebSocketHandler> websocket;
};

class Router {
 public:
  void add(std::string method, std::string pattern, Handler handler);
  void addWebSocket(std::string pattern, std::shared_ptr<WebSocketHandler> handler);

  struct Match {
    const Route* route = nullptr;  // null: no route for this path+method
    bool path_known = false;       // the path matched some route under another method (405)
    std::string allow;             // methods allowed for the path, for the Allow header
  };
  // Fills request.params on a match.
  Match match(const std::string& method, const std::string& path,
              std::map<std::string, std::string>& params) const;
  const Route* matchWebSocket(const std::string& path) const;

  const std::vector<Route>& routes() const { return routes_; }

 private:
  std::vector<Route> routes_;
};

}  // namespace confab::net
