// SPDX-License-Identifier: Apache-2.0
#pragma once
// The routes of the foundation: health, readiness, metrics and the events WebSocket.
// Domain modules add their own route files beside these.

#include <confab/api/authenticator.h>
#include <confab/core/metrics.h>
#include <confab/core/result.h>
#include <confab/events/event_bus.h>
#include <confab/net/router.h>

#include <boost/asio/awaitable.hpp>

#include <functional>
#include <memory>

namespace confab::api {

struct Readiness {
  std::function<boost::asio::awaitable<Status>()> store;  // the store takes a write
  std::function<bool()> listening;                        // the listeners are up, not stopping
};

// GET /healthz (the process answers) and GET /readyz (it can serve: store and listeners).
void addHealthRoutes(net::Router& router, Readiness readiness);

// GET /metrics in Prometheus text format, for the metrics listener.
void addMetricsRoute(net::Router& router, core::Metrics& metrics);

struct EventsSocketOptions {
  int auth_timeout_ms = 5000;
  int json_depth = 32;
  int replay_batch = 500;
};

class Access;

struct AuditRoutesOptions {
  int json_depth = 32;
  int export_page = 1000;  // entries per store read while exporting
};

// The audit API under /api/v1/accounts/{account_id}/audit and GET /api/v1/audit/public-key.
void addAuditRoutes(net::Router& router, std::shared_ptr<Access> access,
                    AuditRoutesOptions options);

// The WebSocket handler of /api/v1/events; see docs/events.md for the protocol.
std::shared_ptr<net::WebSocketHandler> makeEventsSocket(events::EventBus& bus,
                                                        Authenticator& authenticator,
                                                        EventsSocketOptions options);

}  // namespace confab::api
