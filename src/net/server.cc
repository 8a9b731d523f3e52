// SPDX-License-Identifier: Apache-2.0
#include <confab/core/log.h>
#include <confab/net/server.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <mutex>
#include <optional>

#include "net/http_session.h"
#include "net/session_context.h"
#include "net/tls_context.h"

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

namespace confab::net {

std::uint64_t ConnectionRegistry::add(std::function<void(bool)> end) {
  std::lock_guard lock(mu_);
  auto id = next_++;
  open_.emplace(id, std::move(end));
  return id;
}

void ConnectionRegistry::remove(std::uint64_t id) {
  std::lock_guard lock(mu_);
  open_.erase(id);
}

void ConnectionRegistry::endAll(bool force) {
  std::vector<std::function<void(bool)>> ends;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, end] : open_) {
      ends.push_back(end);
    }
  }
  for (auto& end : ends) {
    end(force);
  }
}

std::size_t ConnectionRegistry::size() const {
  std::lock_guard lock(mu_);
  return open_.size();
}

class Server::State : public std::enable_shared_from_this<Server::State> {
 public:
  State(asio::io_context& ioc, ServerOptions options, const Router& api, const Router& metrics,
        core::Metrics& m, core::Random& random, std::vector<asio::io_context*> workers)
      : ioc(ioc),
        workers(workers.empty() ? std::vector<asio::io_context*>{&ioc} : std::move(workers)),
        options(std::move(options)),
        api(api),
        metricsRoutes(metrics),
        metrics(m),
        random(random),
        limiter(this->options.limits.requests_per_second, this->options.limits.request_burst),
        log(core::logger("net")) {}

  asio::io_context& ioc;
  std::vector<asio::io_context*> workers;
  std::atomic<std::size_t> nextWorker{0};
  ServerOptions options;
  const Router& api;
  const Router& metricsRoutes;
  core::Metrics& metrics;
  core::Random& random;
  RateLimiter limiter;
  ConnectionRegistry registry;
  std::atomic<bool> stopping{false};
  std::atomic<int> connections{0};
  std::string publicUrl;
  std::shared_ptr<spdlog::logger> log;

  std::mutex tlsMu;
  std::shared_ptr<asio::ssl::context> tls;

  // The accept loop runs on `strand`, and the close at shutdown is posted there too: an
  // acceptor must not be closed on one thread while another starts an accept on it.
  struct Listener {
    std::unique_ptr<tcp::acceptor> acceptor;
    std::shared_ptr<SessionContext> ctx;
    asio::strand<asio::io_context::executor_type> strand;
  };
  std::vector<Listener> listeners;

  std::shared_ptr<asio::ssl::context> currentTls() {
    std::lock_guard lock(tlsMu);
    return tls;
  }

  std::shared_ptr<SessionContext> makeContext(SessionContext::Kind kind, const char* name,
                                              const Router* router) {
    auto ctx = std::make_shared<SessionContext>();
    ctx->kind = kind;
    ctx->listener = name;
    ctx->options = &options;
    ctx->router = router;
    ctx->metrics = &metrics;
    ctx->random = &random;
    ctx->limiter = &limiter;
    ctx->registry = &registry;
    ctx->stopping = &stopping;
    ctx->public_url = &publicUrl;
    ctx->connections = &connections;
    return ctx;
  }

  Result<int> bind(const config::Listen& where, SessionContext::Kind kind, const char* name,
                   const Router* router) {
    boost::system::error_code ec;
    auto address = asio::ip::make_address(where.address, ec);
    if (ec) {
      return makeError(ErrorCode::InvalidArgument,
                       std::string(name) + " address " + where.address + " is not an IP address");
    }
    auto acceptor = std::make_unique<tcp::acceptor>(ioc);
    tcp::endpoint endpoint(address, static_cast<unsigned short>(where.port));
    acceptor->open(endpoint.protocol(), ec);
    if (!ec)
      acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec)
      acceptor->bind(endpoint, ec);
    if (!ec)
      acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return makeError(ErrorCode::Unavailable, std::string("cannot listen on ") + where.address +
                                                   ":" + std::to_string(where.port) + " (" + name +
                                                   "): " + ec.message());
    }
    int port = acceptor->local_endpoint().port();
    listeners.push_back(
        Listener{std::move(acceptor), makeContext(kind, name, router), asio::make_strand(ioc)});
    return port;
  }

  asio::awaitable<void> accept(Listener& listener) {
    auto self = shared_from_this();
    auto& acceptor = *listener.acceptor;
    for (;;) {
      // The socket belongs to the io_context of the worker that will serve it.
      auto& worker = *workers[nextWorker.fetch_add(1) % workers.size()];
      auto strand = asio::make_strand(worker);
      tcp::socket socket(strand);
      auto [ec] = co_await acceptor.async_accept(socket, asio::as_tuple(asio::use_awaitable));
      if (stopping.load() || ec == asio::error::operation_aborted) {
        co_return;
      }
      if (ec) {
        // Out of descriptors or similar: back off briefly instead of spinning.
        log->warn("accept on {} failed: {}", listener.ctx->listener, ec.message());
        asio::steady_timer wait(ioc, 100ms);
        co_await wait.async_wait(asio::as_tuple(asio::use_awaitable));
        continue;
      }
      if (connections.fetch_add(1) >= options.limits.connections) {
        connections.fetch_sub(1);
        metrics.increment("confab_http_connections_refused_total",
                          {{"listener", listener.ctx->listener}});
        boost::system::error_code ignored;
        socket.close(ignored);
        continue;
      }
      auto ctx = listener.ctx;
      auto done = [log = log, name = ctx->listener](std::exception_ptr e) {
        if (e) {
          try {
            std::rethrow_exception(e);
          } catch (const std::exception& ex) {
            log->error("connection on {} ended by exception: {}", name, ex.what());
          }
        }
      };
      if (ctx->kind == SessionContext::Kind::Api) {
        asio::co_spawn(strand, serveTlsConnection(std::move(socket), currentTls(), ctx), done);
      } else {
        asio::co_spawn(strand, servePlainConnection(std::move(socket), ctx), done);
      }
    }
  }
};

Server::Server(asio::io_context& ioc, ServerOptions options, const Router& api,
               const Router& metrics_routes, core::Metrics& metrics, core::Random& random,
               std::vector<asio::io_context*> workers)
    : state_(std::make_shared<State>(ioc, std::move(options), api, metrics_routes, metrics, random,
                                     std::move(workers))) {
  metrics.describe("confab_http_requests_total", core::Metrics::Type::Counter,
                   "HTTP requests answered, by listener, route pattern and status.");
  metrics.describe("confab_http_request_duration_seconds", core::Metrics::Type::Histogram,
                   "Time from a request's first byte to its handler's answer.",
                   {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5});
  metrics.describe("confab_http_connections", core::Metrics::Type::Gauge,
                   "Open TCP connections, by listener.");
  metrics.describe("confab_http_connections_refused_total", core::Metrics::Type::Counter,
                   "Connections closed at once because limits.connections was reached.");
  metrics.describe("confab_websocket_connections", core::Metrics::Type::Gauge,
                   "Open WebSocket connections.");
}

Server::~Server() = default;

Result<BoundPorts> Server::start() {
  auto& s = *state_;
  auto tls = makeServerTlsContext(s.options.cert_file, s.options.key_file);
  if (!tls.ok()) {
    return tls.error();
  }
  s.tls = *tls;
  BoundPorts ports;
  auto https = s.bind(s.options.server.https, SessionContext::Kind::Api, "https", &s.api);
  if (!https.ok())
    return https.error();
  ports.https = *https;
  auto http = s.bind(s.options.server.http, SessionContext::Kind::Redirect, "http", nullptr);
  if (!http.ok())
    return http.error();
  ports.http = *http;
  auto metrics =
      s.bind(s.options.server.metrics, SessionContext::Kind::Metrics, "metrics", &s.metricsRoutes);
  if (!metrics.ok())
    return metrics.error();
  ports.metrics = *metrics;

  if (!s.options.server.public_url.empty()) {
    s.publicUrl = s.options.server.public_url;
  } else {
    const auto& addr = s.options.server.https.address;
    bool v6 = addr.find(':') != std::string::npos;
    s.publicUrl = "https://" + (v6 ? "[" + addr + "]" : addr) + ":" + std::to_string(ports.https);
  }
  while (!s.publicUrl.empty() && s.publicUrl.back() == '/') {
    s.publicUrl.pop_back();
  }
  for (auto& l : s.listeners) {
    asio::co_spawn(l.strand, s.accept(l), asio::detached);
  }
  return ports;
}

const std::string& Server::publicUrl() const {
  return state_->publicUrl;
}

Status Server::reloadCertificate() {
  auto tls = makeServerTlsContext(state_->options.cert_file, state_->options.key_file);
  if (!tls.ok()) {
    return tls.error();
  }
  std::lock_guard lock(state_->tlsMu);
  state_->tls = *tls;
  return {};
}

void Server::stop(std::chrono::milliseconds grace, std::function<void()> done) {
  auto s = state_;
  if (s->stopping.exchange(true)) {
    return;
  }
  for (auto& l : s->listeners) {
    asio::post(l.strand, [s, &l] {
      boost::system::error_code ec;
      l.acceptor->close(ec);
    });
  }
  s->registry.endAll(false);
  // Poll for the last connection to go; cut what remains when the grace period ends.
  auto deadline = std::chrono::steady_clock::now() + grace;
  auto waiter = [s, deadline, done = std::move(done)]() -> asio::awaitable<void> {
    while (s->registry.size() > 0 && std::chrono::steady_clock::now() < deadline) {
      asio::steady_timer t(s->ioc, 20ms);
      co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    if (s->registry.size() > 0) {
      s->log->warn("grace period over: cutting {} connection(s)", s->registry.size());
      s->registry.endAll(true);
      // A cut connection still has to unwind (a handler may be waiting for the store); give
      // it a bounded while, so that nothing of it outlives the server it points into.
      auto cut_deadline = std::chrono::steady_clock::now() + 5s;
      while (s->registry.size() > 0 && std::chrono::steady_clock::now() < cut_deadline) {
        asio::steady_timer t(s->ioc, 20ms);
        co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
      }
    }
    done();
  };
  // Hand co_spawn the lambda itself, not waiter(): a coroutine lambda's captures live in the
  // lambda object, which must outlive the coroutine (this local does not).
  asio::co_spawn(s->ioc, std::move(waiter), asio::detached);
}

int Server::openConnections() const {
  return state_->connections.load();
}

}  // namespace confab::net
