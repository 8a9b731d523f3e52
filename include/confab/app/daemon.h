// SPDX-License-Identifier: Apache-2.0
#pragma once
// Daemon: builds everything from a Config, owns the io_context and its threads, handles signals
// (SIGTERM/SIGINT: graceful stop; SIGHUP: reload the certificate; SIGUSR1: a retention run now)
// and shutdown.
// Tests and fixtures construct it with their own clock, random source and authenticator; the
// configuration never switches on anything that exists only for tests.

#include <confab/api/authenticator.h>
#include <confab/config/config.h>
#include <confab/core/clock.h>
#include <confab/core/random.h>
#include <confab/events/event_bus.h>

#include <boost/asio/io_context.hpp>

namespace confab::audit {
class AuditLog;
class RetentionScheduler;
}  // namespace confab::audit

namespace confab::store {
class BlobStore;
class KeyStore;
class Store;
}  // namespace confab::store

#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace confab::app {

enum ExitCode { kExitOk = 0, kExitFailure = 1, kExitBadConfig = 2 };

// What a running daemon offers its fixtures once it listens.
struct DaemonServices {
  events::EventBus& bus;
  store::Store& store;
  store::BlobStore& blobs;
  store::KeyStore& keys;
  audit::AuditLog& audit;
  audit::RetentionScheduler& retention;
};

struct DaemonOptions {
  std::optional<std::string> ready_file;        // JSON with the bound ports, written once listening
  api::Authenticator* authenticator = nullptr;  // null: NoIdentityProvider
  core::Clock* clock = nullptr;                 // null: SystemClock
  core::Random* random = nullptr;               // null: CsprngRandom
  // Called on an I/O thread once the daemon listens; fixtures start their event sources here.
  std::function<void(DaemonServices&, boost::asio::io_context&)> on_listening;
};

class Daemon {
 public:
  Daemon(config::Config config, DaemonOptions options);
  ~Daemon();
  // Runs until stopped; returns the process exit code.
  int run();
  // Asks for a graceful stop, as SIGTERM does. Thread-safe.
  void requestStop();

 private:
  struct Parts;
  config::Config config_;
  DaemonOptions options_;
  std::unique_ptr<Parts> parts_;
};

}  // namespace confab::app
