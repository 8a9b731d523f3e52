// SPDX-License-Identifier: Apache-2.0
#pragma once
// Server: the daemon's listeners. HTTPS + WSS on the public port (router: the API), plain HTTP
// that answers every request with 301 to public_url, and a plain-HTTP metrics listener bound to
// loopback by default. Every connection is one coroutine on its own strand.
//
// Lifetime: construct, start(), run the io_context, stop() on shutdown; the Server must outlive
// the io_context's run() calls. start(), reloadCertificate() and stop() are thread-safe.

#include <confab/config/config.h>
#include <confab/core/metrics.h>
#include <confab/core/random.h>
#include <confab/core/result.h>
#include <confab/net/router.h>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace confab::net {

struct ServerOptions {
  config::Config::Server server;
  config::Config::Limits limits;
  config::Config::WebSocket websocket;
  std::string cert_file;
  std::string key_file;
};

struct BoundPorts {
  int https = 0;
  int http = 0;
  int metrics = 0;
};

class Server {
 public:
  // Listeners and shutdown run on `ioc`. Accepted connections are spread round-robin over
  // `workers` (each an io_context run by one thread: a connection then never changes thread, and
  // its strand costs nothing); empty `workers` means `ioc` serves them too.
  Server(boost::asio::io_context& ioc, ServerOptions options, const Router& api,
         const Router& metrics_routes, core::Metrics& metrics, core::Random& random,
         std::vector<boost::asio::io_context*> workers = {});
  ~Server();

  // Loads the certificate, binds and starts accepting. public_url (options or, if empty, the
  // bound HTTPS address) is known once this returns.
  Result<BoundPorts> start();
  const std::string& publicUrl() const;

  // Loads the certificate and key again; new connections use them, open ones keep theirs.
  // On failure the old ones stay in use.
  Status reloadCertificate();

  // Stops accepting, closes WebSockets with 1001, lets in-flight requests finish, and calls
  // `done` when every connection is gone or `grace` has passed (then the rest are cut).
  void stop(std::chrono::milliseconds grace, std::function<void()> done);

  int openConnections() const;

 private:
  class State;
  std::shared_ptr<State> state_;
};

}  // namespace confab::net
