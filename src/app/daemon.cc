// SPDX-License-Identifier: Apache-2.0
#include <confab/app/daemon.h>
#include <confab/app/routes.h>
#include <confab/app/services.h>
#include <confab/audit/audit_log.h>
#include <confab/audit/retention.h>
#include <confab/core/log.h>
#include <confab/core/metrics.h>
#include <confab/core/version.h>
#include <confab/net/certificate.h>
#include <confab/net/server.h>
#include <confab/store/blob_store.h>
#include <confab/store/encrypting_vfs.h>
#include <confab/store/keys.h>
#include <confab/store/node.h>
#include <confab/store/rekey.h>
#include <confab/store/store.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <sys/stat.h>
#include <thread>

namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace confab::app {

struct Daemon::Parts {
  // `ioc` runs listeners, signals and timers on the main thread; each worker io_context is run
  // by one thread of its own and serves the connections it is given (server.threads of them).
  asio::io_context ioc;
  std::vector<std::unique_ptr<asio::io_context>> workers;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> worker_guards;
  core::Metrics metrics;
  // Declared before the store: the store's connections go through the VFS, which holds the
  // database key from the key store; all three go in the reverse order.
  std::unique_ptr<store::KeyStore> keys;
  std::unique_ptr<store::EncryptingVfs> vfs;
  std::unique_ptr<store::Store> store;
  std::unique_ptr<store::BlobStore> blobs;
  // The audit log signs with a key from the key store; the scheduler's jobs point into the log.
  std::unique_ptr<audit::AuditLog> audit;
  std::unique_ptr<audit::RetentionScheduler> retention;
  events::EventHub hub;
  std::unique_ptr<events::EventBus> bus;
  api::NoIdentityProvider no_identity;
  net::Router api;
  net::Router metrics_routes;
  std::unique_ptr<net::Server> server;
  std::unique_ptr<asio::signal_set> signals;
  std::unique_ptr<asio::steady_timer> checkpoint_timer;
  std::atomic<bool> stopping{false};
  std::mutex stop_mu;           // guards server creation against requestStop()
  bool stop_requested = false;  // under stop_mu
  std::chrono::milliseconds grace{0};

  // Stops the server, then everything else on the io_context. Caller holds stop_mu.
  void beginStop() {
    stopping = true;
    server->stop(grace, [this] {
      signals->cancel();
      checkpoint_timer->cancel();
      retention->stop();
      ioc.stop();
      for (auto& w : workers) {
        w->stop();
      }
    });
  }
};

Daemon::Daemon(config::Config config, DaemonOptions options)
    : config_(std::move(config)), options_(std::move(options)), parts_(std::make_unique<Parts>()) {}

Daemon::~Daemon() = default;

namespace {

Status writeReadyFile(const std::string& path, const net::BoundPorts& ports,
                      const std::string& public_url) {
  nlohmann::json j{{"https", ports.https},
                   {"http", ports.http},
                   {"metrics", ports.metrics},
                   {"public_url", public_url},
                   {"pid", static_cast<int>(::getpid())}};
  auto tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << j.dump() << "\n";
    if (!out.good()) {
      return makeError(ErrorCode::Internal, "cannot write " + tmp);
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    return makeError(ErrorCode::Internal, "cannot write " + path + ": " + ec.message());
  }
  return {};
}

}  // namespace

int Daemon::run() {
  auto log = core::logger("app");
  auto& p = *parts_;
  core::Clock& clock = options_.clock ? *options_.clock : core::SystemClock::instance();
  core::Random& random = options_.random ? *options_.random : core::CsprngRandom::instance();
  api::Authenticator& authenticator =
      options_.authenticator ? *options_.authenticator : p.no_identity;

  // The data directory holds keys and the database: only the service user may enter it.
  std::error_code ec;
  fs::create_directories(config_.server.data_dir, ec);
  if (ec || !fs::is_directory(config_.server.data_dir)) {
    log->critical("cannot create the data directory {}: {}", config_.server.data_dir, ec.message());
    return kExitFailure;
  }
  ::chmod(config_.server.data_dir.c_str(), 0700);

  // Encryption at rest: the master key opens the key store, whose database key seals every page.
  // Any doubt about the keys stops here with exit code 2, before a database is created or read.
  fs::path data_dir = config_.server.data_dir;
  if (fs::exists(data_dir / "restore-in-progress", ec)) {
    log->critical("an interrupted restore left {} incomplete: run confabd restore again",
                  data_dir.string());
    return kExitBadConfig;
  }
  const bool had_key_store = fs::exists(data_dir / "keystore.json", ec);
  auto hierarchy = store::openKeyHierarchy(config_, random, true, &clock);
  if (!hierarchy.ok()) {
    log->critical("{}", hierarchy.error().message);
    return hierarchy.error().code == ErrorCode::FailedPrecondition ||
                   hierarchy.error().code == ErrorCode::InvalidArgument
               ? kExitBadConfig
               : kExitFailure;
  }
  p.keys = std::move(hierarchy->keys);
  if (hierarchy->created_master_key) {
    log->warn(
        "created a new master key at {} — keep it safe and back it up separately from the "
        "data directory: without it the data cannot be read",
        hierarchy->master_key_path.string());
  } else {
    log->info("master key {} (id {})", hierarchy->master_key_path.string(), p.keys->masterKeyId());
  }
  if (auto s = store::finishInterruptedRekey(data_dir, *p.keys); !s.ok()) {
    log->critical("cannot finish an interrupted re-encryption: {}", s.error().message);
    return kExitFailure;
  }
  auto vfs = store::EncryptingVfs::create(p.keys->databaseKey());
  if (!vfs.ok()) {
    log->critical("{}", vfs.error().message);
    return kExitFailure;
  }
  p.vfs = std::move(*vfs);
  auto store_options = store::storeOptions(config_);
  store_options.metrics = &p.metrics;
  const bool have_database = fs::exists(store_options.database.path, ec) &&
                             fs::file_size(store_options.database.path, ec) > 0;
  if (had_key_store && !have_database) {
    // A key store without its database: the database was lost or moved. Starting a new, empty
    // one would also let the blob sweep delete every file as unrecorded.
    log->critical(
        "{} has a key store but no database ({} is missing or empty): restore the "
        "database from a backup (confabd does not start a new one beside existing "
        "keys), or, if this data directory never held data, remove keystore.json",
        data_dir.string(), store_options.database.path);
    return kExitBadConfig;
  }
  store_options.database.vfs = p.vfs->name();
  store_options.database.reserve_bytes = store::kPageReserveBytes;
  if (auto s = p.vfs->checkDatabaseFile(store_options.database.path); !s.ok()) {
    log->critical("{}", s.error().message);
    return kExitBadConfig;
  }
  auto store = store::Store::open(store_options);
  if (!store.ok()) {
    log->critical("cannot open the store: {}", store.error().message);
    return store.error().code == ErrorCode::FailedPrecondition ? kExitBadConfig : kExitFailure;
  }
  p.store = std::move(*store);
  log->info("store {} at schema version {}, encrypted (database key {})", p.store->path(),
            p.store->schemaVersion(), p.keys->databaseKeyId());
  // SPEC.md §7: one node serves one region, and a data directory holds one region's data.
  auto region = p.store->writeNow<std::string>(
      [&](store::Database& db) { return store::claimRegion(db, config_.region.serves); });
  if (!region.ok()) {
    log->critical("cannot read the node's region: {}", region.error().message);
    return kExitFailure;
  }
  if (*region != config_.region.serves) {
    log->critical(
        "region.serves: this data directory holds the data of region \"{}\", but this node is "
        "configured to serve \"{}\"; a node serves the one region of its data directory "
        "(docs/operations.md, \"Regions\")",
        *region, config_.region.serves);
    return kExitBadConfig;
  }
  std::string key_error;
  auto audit_key = auditSigningKey(*p.keys, &key_error);
  if (!audit_key) {
    log->critical("cannot open the audit signing key: {}", key_error);
    return kExitFailure;
  }
  p.audit = std::make_unique<audit::AuditLog>(audit_key, clock, auditOptions(config_));
  log->info("serving region {}; audit checkpoints signed with Ed25519 key {}", *region,
            p.audit->keyId());
  p.blobs = std::make_unique<store::BlobStore>(data_dir / "blobs", *p.keys, random);
  auto swept = p.store->writeNow<store::SweepReport>(
      [&](store::Database& db) { return p.blobs->sweep(db); });
  if (!swept.ok()) {
    log->critical("cannot check the blob directory: {}", swept.error().message);
    return kExitFailure;
  }
  if (swept->partials_removed + swept->orphans_removed > 0) {
    log->info(
        "blob store: removed {} unfinished upload(s) ({} bytes) and {} unrecorded file(s) "
        "({} bytes) left by an earlier stop",
        swept->partials_removed, swept->partial_bytes, swept->orphans_removed, swept->orphan_bytes);
  }
  // The certificate comes after the keys and the store, so a refused start creates nothing.
  std::string cert = config_.tls.cert_file;
  std::string key = config_.tls.key_file;
  if (cert.empty()) {
    auto tls_dir = fs::path(config_.server.data_dir) / "tls";
    cert = (tls_dir / "cert.pem").string();
    key = (tls_dir / "key.pem").string();
    auto created = net::ensureSelfSignedCertificate(cert, key);
    if (!created.ok()) {
      log->critical("cannot create the self-signed certificate: {}", created.error().message);
      return kExitFailure;
    }
    if (*created) {
      log->info("created a self-signed certificate {} (trust it with curl --cacert {})", cert,
                cert);
    }
  }

  p.bus = std::make_unique<events::EventBus>(*p.store, p.hub, clock, random);

  p.metrics.describe("confab_build_info", core::Metrics::Type::Gauge,
                     "Always 1; the labels say which build this is.");
  p.metrics.set("confab_build_info", {{"version", core::kVersion}, {"commit", core::kGitCommit}},
                1);

  p.retention =
      makeRetentionScheduler(config_, *p.store, p.blobs.get(), *p.audit, clock, &p.metrics, {});

  registerRoutes(
      RouteDependencies{config_, *p.store, *p.bus, authenticator, p.metrics, p.stopping, *p.audit},
      p.api, p.metrics_routes);

  net::ServerOptions server_options{config_.server, config_.limits, config_.websocket, cert, key};
  {
    std::lock_guard lock(p.stop_mu);
    p.grace = std::chrono::milliseconds(config_.server.shutdown_grace_ms);
    std::vector<asio::io_context*> workers;
    for (int i = 0; i < config_.server.threads; ++i) {
      // Concurrency hint 1: one thread runs it (others still post to it).
      p.workers.push_back(std::make_unique<asio::io_context>(1));
      p.worker_guards.push_back(asio::make_work_guard(*p.workers.back()));
      workers.push_back(p.workers.back().get());
    }
    p.server = std::make_unique<net::Server>(p.ioc, server_options, p.api, p.metrics_routes,
                                             p.metrics, random, std::move(workers));
  }
  auto ports = p.server->start();
  if (!ports.ok()) {
    log->critical("{}", ports.error().message);
    return ports.error().code == ErrorCode::InvalidArgument ? kExitBadConfig : kExitFailure;
  }
  log->info("listening: {} (https {}), http {} redirects there, metrics on {}:{}",
            p.server->publicUrl(), ports->https, ports->http, config_.server.metrics.address,
            ports->metrics);
  if (options_.ready_file) {
    if (auto s = writeReadyFile(*options_.ready_file, *ports, p.server->publicUrl()); !s.ok()) {
      log->critical("{}", s.error().message);
      return kExitFailure;
    }
  }

  p.signals = std::make_unique<asio::signal_set>(p.ioc, SIGINT, SIGTERM, SIGHUP);
  p.signals->add(SIGUSR1);
  std::function<void()> wait_signal;
  wait_signal = [&] {
    p.signals->async_wait([&](const boost::system::error_code& sec, int signo) {
      if (sec) {
        return;
      }
      if (signo == SIGHUP) {
        auto s = p.server->reloadCertificate();
        if (s.ok()) {
          auto serial = net::certificateSerial(cert);
          log->info("SIGHUP: certificate reloaded (serial {})", serial.ok() ? *serial : "?");
        } else {
          log->error("SIGHUP: certificate not reloaded, keeping the old one: {}",
                     s.error().message);
        }
        wait_signal();
        return;
      }
      if (signo == SIGUSR1) {
        log->info("SIGUSR1: retention run requested");
        p.retention->trigger();
        wait_signal();
        return;
      }
      log->info("signal {}: stopping", signo);
      requestStop();
    });
  };
  wait_signal();

  // Retention (audit entries, events, and what later modules register) runs on the main
  // io_context, one batch per write; audit chains are signed every checkpoint interval.
  p.retention->start(p.ioc.get_executor());
  p.checkpoint_timer = std::make_unique<asio::steady_timer>(p.ioc);
  asio::co_spawn(
      p.ioc,
      [&]() -> asio::awaitable<void> {
        const auto interval = std::chrono::seconds(config_.audit.checkpoint_interval_seconds);
        while (!p.stopping.load()) {
          p.checkpoint_timer->expires_after(interval);
          auto [tec] = co_await p.checkpoint_timer->async_wait(asio::as_tuple(asio::use_awaitable));
          if (tec || p.stopping.load()) {
            break;
          }
          auto signed_ = co_await p.store->write<int>(
              [&](store::Database& db) { return p.audit->checkpointAll(db); });
          if (!signed_.ok()) {
            log->error("signing the audit chains failed: {}", signed_.error().message);
          }
        }
      },
      asio::detached);

  {
    std::lock_guard lock(p.stop_mu);
    if (p.stop_requested) {
      p.beginStop();
    }
  }

  if (options_.on_listening) {
    asio::post(p.ioc, [this, &p] {
      DaemonServices services{*p.bus, *p.store, *p.blobs, *p.keys, *p.audit, *p.retention};
      options_.on_listening(services, p.ioc);
    });
  }

  std::vector<std::thread> threads;
  for (auto& w : p.workers) {
    threads.emplace_back([&w] { w->run(); });
  }
  // Stop handling: the server calls back when connections are gone; then everything else.
  p.ioc.run();
  for (auto& t : threads) {
    t.join();
  }
  p.worker_guards.clear();
  p.retention->stop();
  // The last heads go to the log, so that entries written since the last interval are covered.
  auto signed_last =
      p.store->writeNow<int>([&](store::Database& db) { return p.audit->checkpointAll(db); });
  if (!signed_last.ok()) {
    log->warn("signing the audit chains at shutdown failed: {}", signed_last.error().message);
  }
  auto cp = p.store->checkpoint();
  if (!cp.ok()) {
    log->warn("WAL checkpoint at shutdown failed: {}", cp.error().message);
  }
  // Completions that arrived after the io_context stopped (a store job that outlived the
  // grace period) still belong to coroutines that point into the server and the metrics: let
  // them finish now, while those exist, instead of destroying them half-way later.
  std::vector<asio::io_context*> all{&p.ioc};
  for (auto& w : p.workers) {
    all.push_back(w.get());
  }
  for (auto* c : all) {
    c->restart();
  }
  for (auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
       std::chrono::steady_clock::now() < until;) {
    std::size_t ran = 0;
    bool idle = true;
    for (auto* c : all) {
      ran += c->poll();
      idle = idle && c->stopped();
    }
    if (idle) {
      break;
    }
    if (ran == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  // Whatever is still queued on the workers points into the server: destroy it while the
  // server exists.
  p.workers.clear();
  log->info("stopped");
  return kExitOk;
}

void Daemon::requestStop() {
  auto& p = *parts_;
  std::lock_guard lock(p.stop_mu);
  if (p.stop_requested) {
    return;
  }
  p.stop_requested = true;
  if (p.server && p.signals && p.checkpoint_timer) {
    p.beginStop();
  }
  // Otherwise run() has not finished starting: it sees stop_requested once it has.
}

}  // namespace confab::app
