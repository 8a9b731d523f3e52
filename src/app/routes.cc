// SPDX-License-Identifier: Apache-2.0
#include <confab/api/access.h>
#include <confab/api/routes.h>
#include <confab/app/routes.h>

namespace confab::app {

void registerRoutes(const RouteDependencies& deps, net::Router& api, net::Router& metrics) {
  store::Store* store = &deps.store;
  const std::atomic<bool>* stopping = &deps.stopping;
  api::addHealthRoutes(api, api::Readiness{[store]() { return store->probe(); },
                                           [stopping]() { return !stopping->load(); }});
  api.addWebSocket(
      "/api/v1/events",
      api::makeEventsSocket(deps.bus, deps.authenticator,
                            api::EventsSocketOptions{deps.config.websocket.auth_timeout_ms,
                                                     deps.config.limits.json_depth, 500}));
  auto access = std::make_shared<api::Access>(deps.authenticator, deps.store, deps.audit);
  api::addAuditRoutes(api, access, api::AuditRoutesOptions{deps.config.limits.json_depth, 1000});
  api::addMetricsRoute(metrics, deps.metrics);
}

}  // namespace confab::app
