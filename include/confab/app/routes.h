// SPDX-License-Identifier: Apache-2.0
#pragma once
// Every route the daemon serves, registered in one place: the daemon calls this, and the
// OpenAPI coverage test calls it too, so a route cannot exist without its documentation.

#include <confab/api/authenticator.h>
#include <confab/audit/audit_log.h>
#include <confab/config/config.h>
#include <confab/core/metrics.h>
#include <confab/events/event_bus.h>
#include <confab/net/router.h>
#include <confab/store/store.h>

#include <atomic>

namespace confab::app {

struct RouteDependencies {
  const config::Config& config;
  store::Store& store;
  events::EventBus& bus;
  api::Authenticator& authenticator;
  core::Metrics& metrics;
  const std::atomic<bool>& stopping;
  const audit::AuditLog& audit;
};

// `api`: the HTTPS listener's routes; `metrics`: the metrics listener's.
void registerRoutes(const RouteDependencies& deps, net::Router& api, net::Router& metrics);

}  // namespace confab::app
