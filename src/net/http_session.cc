// SPDX-License-Identifier: Apache-2.0
#include "net/http_session.h"

#include <confab/core/log.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include <chrono>
#include <span>

#include "net/http_request.h"
#include "net/websocket_session.h"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using namespace std::chrono_literals;

namespace confab::net {
namespace {

constexpr auto kUse = asio::as_tuple(asio::use_awaitable);

// After an error response the peer may still be sending (an oversized body, say). Closing with
// unread data makes the kernel send RST, which can destroy the response before the client reads
// it; so stop sending, then read and discard for a short while before closing.
template <typename Stream>
asio::awaitable<void> lingerAndClose(Stream& stream) {
  auto& lowest = beast::get_lowest_layer(stream);
  boost::system::error_code ec;
  lowest.socket().shutdown(tcp::socket::shutdown_send, ec);
  lowest.expires_after(1s);
  char sink[4096];
  std::size_t total = 0;
  while (total < 256 * 1024) {
    auto [rec, n] = co_await lowest.async_read_some(asio::buffer(sink), kUse);
    if (rec) {
      break;
    }
    total += n;
  }
  lowest.socket().close(ec);
}

// An origin as browsers serialise it (RFC 6454 §6.2): lower case, without the scheme's default
// port, so that "https://chat.example.com:443" in the configuration matches what they send.
std::string serialisedOrigin(std::string_view origin) {
  auto o = toLower(origin);
  for (auto [scheme, port] :
       {std::pair<std::string_view, std::string_view>{"https://", ":443"}, {"http://", ":80"}}) {
    if (o.size() > scheme.size() + port.size() && o.starts_with(scheme) && o.ends_with(port)) {
      o.resize(o.size() - port.size());
    }
  }
  return o;
}

// Origins compare case-insensitively on scheme and host, default ports omitted.
bool originAllowed(std::string_view origin, const SessionContext& ctx) {
  auto o = serialisedOrigin(origin);
  const auto& allowed = ctx.options->websocket.allowed_origins;
  if (allowed.empty()) {
    return o == serialisedOrigin(*ctx.public_url);
  }
  for (const auto& a : allowed) {
    if (o == serialisedOrigin(a)) {
      return true;
    }
  }
  return false;
}

http::response<http::string_body> toBeast(Response&& resp, unsigned version, bool keep_alive,
                                          bool head) {
  http::response<http::string_body> res{static_cast<http::status>(resp.status), version};
  for (auto& [k, v] : resp.headers) {
    res.set(k, v);
  }
  if (!resp.body.empty() || resp.status != 204) {
    res.set(http::field::content_type, resp.content_type);
  }
  auto size = resp.body.size();
  if (!head) {
    res.body() = std::move(resp.body);
  }
  res.content_length(size);
  res.keep_alive(keep_alive);
  return res;
}

// Request ids must be unique, not secret: a per-thread SplitMix64 sequence, seeded once per
// thread from the injected random source, spares a CSPRNG call per request.
std::string requestId(core::Random& seed) {
  thread_local std::uint64_t state = [&seed] {
    std::uint64_t s = 0;
    seed.fill(std::span<std::uint8_t>(reinterpret_cast<std::uint8_t*>(&s), sizeof s));
    return s;
  }();
  state += 0x9e3779b97f4a7c15ULL;
  std::uint64_t z = state;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, z >>= 4) {
    out[static_cast<std::size_t>(i)] = kDigits[z & 0xf];
  }
  return out;
}

class Session {
 public:
  Session(std::shared_ptr<SessionContext> ctx, tcp::endpoint remote)
      : ctx_(std::move(ctx)), remote_(std::move(remote)), log_(core::logger("net")) {}

  template <typename Stream>
  asio::awaitable<void> serve(Stream& stream, bool* upgraded,
                              http::request<http::string_body>* upgrade_req,
                              Request* upgrade_request,
                              std::shared_ptr<WebSocketHandler>* upgrade_handler);

  std::atomic<bool> ending{false};
  // Waiting for the next request's first byte; read and written only on the connection's strand.
  bool idle = false;

 private:
  template <typename Stream>
  asio::awaitable<bool> send(Stream& stream, Response resp, const Request* req, unsigned version,
                             bool keep_alive, bool head);
  template <typename Stream>
  asio::awaitable<boost::system::error_code> sendStream(Stream& stream, Response resp,
                                                        unsigned version, bool keep_alive,
                                                        bool head,
                                                        std::chrono::milliseconds write_timeout);
  asio::awaitable<Response> dispatch(Request& req, const http::request<http::string_body>& raw,
                                     std::shared_ptr<WebSocketHandler>* websocket);
  Response redirect(const Request& req) const;

  std::shared_ptr<SessionContext> ctx_;
  tcp::endpoint remote_;
  std::shared_ptr<spdlog::logger> log_;
};

Response Session::redirect(const Request& req) const {
  // The Host header never decides where we send people: always public_url (SPEC §7).
  Response r = Response::text(301, "Moved Permanently\n");
  r.headers.emplace_back(
      "Location", *ctx_->public_url +
                      (req.target.empty() || req.target[0] != '/' ? std::string("/") : req.target));
  return r;
}

asio::awaitable<Response> Session::dispatch(Request& req,
                                            const http::request<http::string_body>& raw,
                                            std::shared_ptr<WebSocketHandler>* websocket) {
  if (ctx_->kind == SessionContext::Kind::Redirect) {
    req.route = "redirect";
    co_return redirect(req);
  }
  if (!decodePath(req)) {
    co_return problem(400, "", "The request target is not a valid origin-form path.",
                      req.request_id);
  }
  if (ctx_->kind == SessionContext::Kind::Api) {
    if (const Route* ws = ctx_->router->matchWebSocket(req.path)) {
      req.route = ws->pattern;
      if (!beast::websocket::is_upgrade(raw)) {
        co_return problem(426, "", "This endpoint speaks WebSocket only.", req.request_id,
                          {{"Upgrade", "websocket"}, {"Connection", "Upgrade"}});
      }
      if (auto origin = req.header("origin"); origin && !originAllowed(*origin, *ctx_)) {
        co_return problem(403, "", "The Origin of this request is not allowed.", req.request_id);
      }
      // Checked here so that a bad handshake gets a problem document, not Beast's plain text
      // (RFC 6455 §4.2.1: a 16-byte base64 key; §4.4: version 13 only).
      auto key = req.header("sec-websocket-key");
      if (!key || key->size() != 24 || (*key)[22] != '=' || (*key)[23] != '=') {
        co_return problem(400, "", "Sec-WebSocket-Key must be 16 bytes in base64.", req.request_id);
      }
      if (req.header("sec-websocket-version") != std::optional<std::string_view>("13")) {
        co_return problem(426, "", "Only WebSocket version 13 is spoken.", req.request_id,
                          {{"Sec-WebSocket-Version", "13"}});
      }
      *websocket = ws->websocket;
      co_return Response{};
    }
  }
  auto match = ctx_->router->match(req.method, req.path, req.params);
  if (!match.route) {
    req.route = match.path_known ? "unmatched_method" : "unmatched";
    if (match.path_known) {
      co_return problem(405, "", "Method " + req.method + " is not allowed here.", req.request_id,
                        {{"Allow", match.allow}});
    }
    co_return problem(404, "", "No resource at this path.", req.request_id);
  }
  req.route = match.route->pattern;
  try {
    co_return co_await match.route->handler(req);
  } catch (const std::exception& e) {
    log_->error("request_id={} route={} unhandled exception: {}", req.request_id, req.route,
                e.what());
  }
  co_return problem(500, "", "The server failed to handle this request.", req.request_id);
}

template <typename Stream>
asio::awaitable<bool> Session::send(Stream& stream, Response resp, const Request* req,
                                    unsigned version, bool keep_alive, bool head) {
  const std::string& request_id = req ? req->request_id : std::string();
  if (!request_id.empty()) {
    resp.headers.emplace_back("X-Request-Id", request_id);
  }
  resp.headers.emplace_back("X-Content-Type-Options", "nosniff");
  if (ctx_->kind == SessionContext::Kind::Api) {
    // Two years, with subdomains: the HSTS preload list's minimum is one year.
    resp.headers.emplace_back("Strict-Transport-Security", "max-age=63072000; includeSubDomains");
    bool has_cache_control = false;
    for (const auto& h : resp.headers) {
      has_cache_control = has_cache_control || toLower(h.first) == "cache-control";
    }
    if (!has_cache_control) {
      resp.headers.emplace_back("Cache-Control", "no-store");
    }
  }
  int status = resp.status;
  auto& lowest = beast::get_lowest_layer(stream);
  const auto write_timeout = std::chrono::milliseconds(ctx_->options->limits.request_timeout_ms);
  lowest.expires_after(write_timeout);
  boost::system::error_code ec;
  if (resp.stream) {
    ec = co_await sendStream(stream, std::move(resp), version, keep_alive, head, write_timeout);
  } else {
    auto res = toBeast(std::move(resp), version, keep_alive, head);
    auto [wec, n] = co_await http::async_write(stream, res, kUse);
    (void)n;
    ec = wec;
  }
  ctx_->metrics->increment("confab_http_requests_total",
                           {{"listener", ctx_->listener},
                            {"route", req && !req->route.empty() ? req->route : "none"},
                            {"status", std::to_string(status)}});
  co_return !ec;
}

template <typename Stream>
asio::awaitable<boost::system::error_code> Session::sendStream(
    Stream& stream, Response resp, unsigned version, bool keep_alive, bool head,
    std::chrono::milliseconds write_timeout) {
  http::response<http::empty_body> res{static_cast<http::status>(resp.status), version};
  for (auto& [k, v] : resp.headers) {
    res.set(k, v);
  }
  res.set(http::field::content_type, resp.content_type);
  // HTTP/1.0 knows no chunked coding: the body then ends where the connection does (the caller
  // closes it after a streamed answer to a 1.0 request).
  const bool chunked = version >= 11;
  res.chunked(chunked);
  res.keep_alive(chunked && keep_alive);
  http::response_serializer<http::empty_body> sr{res};
  auto [ec, n] = co_await http::async_write_header(stream, sr, kUse);
  (void)n;
  if (ec || head) {
    co_return ec;
  }
  auto& lowest = beast::get_lowest_layer(stream);
  for (;;) {
    std::optional<std::string> piece;
    try {
      piece = co_await resp.stream();
    } catch (const std::exception& e) {
      log_->error("streamed response failed after its header: {}", e.what());
      co_return asio::error::operation_aborted;
    }
    lowest.expires_after(write_timeout);
    if (!piece) {
      if (!chunked) {
        co_return boost::system::error_code{};
      }
      auto [lec, ln] = co_await asio::async_write(stream, http::make_chunk_last(), kUse);
      (void)ln;
      co_return lec;
    }
    if (piece->empty()) {
      continue;  // an empty chunk would end the body
    }
    if (!chunked) {
      auto [rec, rn] = co_await asio::async_write(stream, asio::buffer(*piece), kUse);
      (void)rn;
      if (rec) {
        co_return rec;
      }
      continue;
    }
    auto [cec, cn] =
        co_await asio::async_write(stream, http::make_chunk(asio::buffer(*piece)), kUse);
    (void)cn;
    if (cec) {
      co_return cec;
    }
  }
}

template <typename Stream>
asio::awaitable<void> Session::serve(Stream& stream, bool* upgraded,
                                     http::request<http::string_body>* upgrade_req,
                                     Request* upgrade_request,
                                     std::shared_ptr<WebSocketHandler>* upgrade_handler) {
  auto& lowest = beast::get_lowest_layer(stream);
  const auto& limits = ctx_->options->limits;
  beast::flat_buffer buffer(static_cast<std::size_t>(limits.header_bytes) + 4096);
  for (;;) {
    if (buffer.size() == 0) {
      if (ending.load() || ctx_->stopping->load()) {
        co_return;  // the server is stopping: no next request
      }
      // Between requests: the idle timeout applies until the next request's first byte.
      lowest.expires_after(std::chrono::milliseconds(limits.idle_timeout_ms));
      idle = true;
      auto [ec, n] = co_await stream.async_read_some(buffer.prepare(4096), kUse);
      idle = false;
      if (ec) {
        co_return;
      }
      buffer.commit(n);
    }
    auto started = std::chrono::steady_clock::now();
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(limits.header_bytes));
    parser.body_limit(static_cast<std::uint64_t>(limits.body_bytes));
    // The whole request, first byte to last, must arrive within request_timeout: a slowloris
    // client that trickles headers is cut off here without affecting anyone else. Our own timer
    // rather than the stream's, because the stream's closes the socket, and a client that was
    // too slow should still read a 408 saying so. `state` is 0 while reading, 1 once the timer
    // fired, 2 once the read ended; a timer handler already queued then touches nothing.
    lowest.expires_never();
    auto state = std::make_shared<int>(0);
    asio::steady_timer deadline(stream.get_executor(),
                                std::chrono::milliseconds(limits.request_timeout_ms));
    deadline.async_wait([state, &lowest](boost::system::error_code wec) {
      if (!wec && *state == 0) {
        *state = 1;
        boost::system::error_code ignored;
        lowest.socket().cancel(ignored);
      }
    });
    auto [ec, n] = co_await http::async_read(stream, buffer, parser, kUse);
    (void)n;
    bool timed_out = *state == 1;
    *state = 2;
    deadline.cancel();
    std::string request_id = requestId(*ctx_->random);
    if (ec) {
      int status = 0;
      std::string detail;
      if (timed_out) {
        status = 408;
        detail = "The request did not arrive within " + std::to_string(limits.request_timeout_ms) +
                 " ms.";
      } else if (ec == http::error::header_limit) {
        status = 431;
        detail = "The request header exceeds " + std::to_string(limits.header_bytes) + " bytes.";
      } else if (ec == http::error::body_limit) {
        status = 413;
        detail = "The request body exceeds " + std::to_string(limits.body_bytes) + " bytes.";
      } else if (ec == http::error::end_of_stream || ec == asio::error::eof ||
                 ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
                 ec == asio::ssl::error::stream_truncated) {
        co_return;
      } else {
        status = 400;
        detail = "The request is not valid HTTP/1.1.";  // the parser's words stay in the log
      }
      log_->info("request_id={} remote={} rejected with {}: {}", request_id,
                 remote_.address().to_string(), status, ec.message());
      Request shell;
      shell.request_id = request_id;
      shell.route = "invalid";
      co_await send(stream, problem(status, "", detail, request_id), &shell, 11, false, false);
      co_await lingerAndClose(stream);
      co_return;
    }

    auto& raw = parser.get();
    Request req = toRequest(raw, remote_.address().to_string(), remote_.port(), request_id);
    bool head = raw.method() == http::verb::head;
    bool keep_alive = raw.keep_alive() && !ctx_->stopping->load() && !ending.load();

    // RFC 9112 §3.2: an HTTP/1.1 request carries exactly one Host header.
    if (raw.version() >= 11 && raw.count(http::field::host) != 1) {
      req.route = "invalid";
      co_await send(
          stream,
          problem(400, "", "An HTTP/1.1 request must have exactly one Host header.", request_id),
          &req, raw.version(), false, head);
      co_await lingerAndClose(stream);
      co_return;
    }

    std::chrono::milliseconds retry_after{0};
    if (ctx_->kind == SessionContext::Kind::Api &&
        !ctx_->limiter->allow(req.remote_address, std::chrono::steady_clock::now(), &retry_after)) {
      auto secs = std::max<std::int64_t>(1, (retry_after.count() + 999) / 1000);
      req.route = "rate_limited";
      // Built before the co_await: GCC 12 miscompiles braced lists that span a suspension.
      Headers retry{{"Retry-After", std::to_string(secs)}};
      Response limited =
          problem(429, "", "Too many requests from this address; retry later.", request_id, retry);
      if (!co_await send(stream, std::move(limited), &req, raw.version(), keep_alive, head)) {
        co_return;
      }
      if (!keep_alive) {
        co_return;
      }
      continue;
    }

    std::shared_ptr<WebSocketHandler> websocket;
    Response resp = co_await dispatch(req, raw, &websocket);
    if (websocket) {
      if (upgraded) {
        *upgraded = true;
        *upgrade_req = parser.release();
        *upgrade_request = std::move(req);
        *upgrade_handler = std::move(websocket);
      }
      co_return;
    }
    auto elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started);
    ctx_->metrics->observe("confab_http_request_duration_seconds",
                           {{"listener", ctx_->listener}, {"route", req.route}}, elapsed.count());
    int status = resp.status;
    if (status >= 500) {
      log_->warn("request_id={} {} {} -> {}", request_id, req.method, req.route, status);
    } else {
      log_->debug("request_id={} {} {} -> {} in {:.3f} ms", request_id, req.method, req.route,
                  status, elapsed.count() * 1000);
    }
    if (resp.stream && raw.version() < 11) {
      keep_alive = false;  // a streamed body without chunks ends with the connection
    }
    if (!co_await send(stream, std::move(resp), &req, raw.version(), keep_alive, head)) {
      co_return;
    }
    if (!keep_alive) {
      co_return;
    }
  }
}

// Counts the connection, registers it for shutdown, and forgets it on the way out.
struct ConnectionScope {
  ConnectionScope(SessionContext& ctx, std::function<void(bool)> end) : ctx(ctx) {
    id = ctx.registry->add(std::move(end));
    ctx.metrics->add("confab_http_connections", {{"listener", ctx.listener}}, 1);
  }
  ~ConnectionScope() {
    ctx.registry->remove(id);
    ctx.connections->fetch_sub(1);
    ctx.metrics->add("confab_http_connections", {{"listener", ctx.listener}}, -1);
  }
  SessionContext& ctx;
  std::uint64_t id = 0;
};

struct AliveUntilReturn {
  std::shared_ptr<bool> alive;
  ~AliveUntilReturn() { *alive = false; }
};

// How the registry ends a connection. `alive` is read and cleared only on the connection's
// strand, so a request posted there never touches a stream that has gone away or moved into a
// WebSocket session. Graceful: only an idle connection is cut (expires_after would not do, Beast
// ignores it for a read in progress); one mid-request answers with Connection: close.
template <typename Stream>
std::function<void(bool)> endOnStrand(asio::any_io_executor executor,
                                      std::shared_ptr<Session> session, std::shared_ptr<bool> alive,
                                      Stream& stream) {
  return [executor, session, alive, &stream](bool force) {
    session->ending = true;
    asio::post(executor, [alive, session, &stream, force] {
      if (!*alive) {
        return;
      }
      auto& lowest = beast::get_lowest_layer(stream);
      if (force) {
        lowest.close();
      } else if (session->idle) {
        lowest.cancel();
      }
    });
  };
}

}  // namespace

asio::awaitable<void> serveTlsConnection(tcp::socket socket,
                                         std::shared_ptr<asio::ssl::context> tls,
                                         std::shared_ptr<SessionContext> ctx) {
  boost::system::error_code ec;
  auto remote = socket.remote_endpoint(ec);
  if (ec) {
    ctx->connections->fetch_sub(1);
    co_return;
  }
  auto executor = socket.get_executor();
  TlsStream stream(beast::tcp_stream(std::move(socket)), *tls);
  auto session = std::make_shared<Session>(ctx, remote);
  auto alive = std::make_shared<bool>(true);
  AliveUntilReturn alive_guard{alive};
  ConnectionScope scope(*ctx, endOnStrand(executor, session, alive, stream));
  beast::get_lowest_layer(stream).expires_after(
      std::chrono::milliseconds(ctx->options->limits.request_timeout_ms));
  auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::server, kUse);
  if (hec) {
    co_return;
  }
  bool upgraded = false;
  http::request<http::string_body> upgrade;
  Request request;
  std::shared_ptr<WebSocketHandler> handler;
  co_await session->serve(stream, &upgraded, &upgrade, &request, &handler);
  if (upgraded) {
    *alive = false;  // the WebSocket session registers its own way to end
    co_await runWebSocket(std::move(stream), std::move(upgrade), std::move(request),
                          std::move(handler), ctx);
    co_return;
  }
  beast::get_lowest_layer(stream).expires_after(1s);
  co_await stream.async_shutdown(kUse);
}

asio::awaitable<void> servePlainConnection(tcp::socket socket,
                                           std::shared_ptr<SessionContext> ctx) {
  boost::system::error_code ec;
  auto remote = socket.remote_endpoint(ec);
  if (ec) {
    ctx->connections->fetch_sub(1);
    co_return;
  }
  auto executor = socket.get_executor();
  beast::tcp_stream stream(std::move(socket));
  auto session = std::make_shared<Session>(ctx, remote);
  auto alive = std::make_shared<bool>(true);
  AliveUntilReturn alive_guard{alive};
  ConnectionScope scope(*ctx, endOnStrand(executor, session, alive, stream));
  co_await session->serve(stream, nullptr, nullptr, nullptr, nullptr);
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
}

}  // namespace confab::net
