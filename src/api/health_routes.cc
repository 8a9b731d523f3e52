// SPDX-License-Identifier: Apache-2.0
#include <confab/api/routes.h>

namespace confab::api {

void addHealthRoutes(net::Router& router, Readiness readiness) {
  router.add("GET", "/healthz", [](net::Request&) -> boost::asio::awaitable<net::Response> {
    co_return net::Response::json(200, R"({"status":"ok"})");
  });
  router.add("GET", "/readyz", [readiness](net::Request&) -> boost::asio::awaitable<net::Response> {
    bool listening = readiness.listening();
    auto store = co_await readiness.store();
    bool ready = listening && store.ok();
    std::string body = std::string(R"({"status":")") + (ready ? "ready" : "not_ready") +
                       R"(","checks":{"store":")" + (store.ok() ? "ok" : "failing") +
                       R"(","listeners":")" + (listening ? "ok" : "stopping") + "\"}}";
    co_return net::Response::json(ready ? 200 : 503, std::move(body));
  });
}

void addMetricsRoute(net::Router& router, core::Metrics& metrics) {
  router.add("GET", "/metrics", [&metrics](net::Request&) -> boost::asio::awaitable<net::Response> {
    co_return net::Response::text(200, metrics.render(), "text/plain; version=0.0.4");
  });
}

}  // namespace confab::api
