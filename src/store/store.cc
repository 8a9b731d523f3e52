// SPDX-License-Identifier: Apache-2.0
#include <confab/core/log.h>
#include <confab/store/store.h>

#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <filesystem>
#include <future>
#include <mutex>
#include <vector>

#include "store/migrations.h"

namespace asio = boost::asio;

namespace confab::store {

class Store::Pools {
 public:
  explicit Pools(int readers) : writerThread(1), readerThreads(static_cast<std::size_t>(readers)) {}
  ~Pools() {
    writerThread.join();
    readerThreads.join();
  }

  std::unique_ptr<Database> writer;
  asio::thread_pool writerThread;
  asio::thread_pool readerThreads;
  std::mutex readersMu;
  std::vector<std::unique_ptr<Database>> idleReaders;

  std::unique_ptr<Database> takeReader() {
    std::lock_guard lock(readersMu);
    auto db = std::move(idleReaders.back());
    idleReaders.pop_back();
    return db;
  }
  void giveBack(std::unique_ptr<Database> db) {
    std::lock_guard lock(readersMu);
    idleReaders.push_back(std::move(db));
  }
};

namespace {

// Runs `job` on `pool`, then resumes the awaiting coroutine on its own executor.
// An exception thrown by the job is carried back and rethrown in the coroutine.
template <typename Job>
asio::awaitable<void> runOn(asio::thread_pool& pool, Job job) {
  std::exception_ptr failure;
  co_await asio::async_initiate<const asio::use_awaitable_t<>&, void()>(
      [&pool, &job, &failure](auto handler) {
        asio::post(pool, [&job, &failure, h = std::move(handler)]() mutable {
          try {
            job();
          } catch (...) {
            failure = std::current_exception();
          }
          auto ex = asio::get_associated_executor(h);
          asio::dispatch(ex, std::move(h));
        });
      },
      asio::use_awaitable);
  if (failure) {
    std::rethrow_exception(failure);
  }
}

}  // namespace

Store::Store(StoreOptions options) : options_(std::move(options)) {}

Store::~Store() = default;

Result<std::unique_ptr<Store>> Store::open(const StoreOptions& options) {
  if (options.metrics) {
    options.metrics->describe(
        "confab_store_operation_seconds", core::Metrics::Type::Histogram,
        "Store jobs from queueing to completion, by kind.",
        {0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1});
  }
  std::unique_ptr<Store> store(new Store(options));
  auto writer = Database::open(options.database);
  if (!writer.ok()) {
    return writer.error();
  }
  auto version = migrate(**writer, embeddedMigrations());
  if (!version.ok()) {
    return version.error();
  }
  store->schemaVersion_ = *version;
  store->pools_ = std::make_unique<Pools>(options.read_connections);
  store->pools_->writer = std::move(*writer);
  for (int i = 0; i < options.read_connections; ++i) {
    auto reader = Database::open(options.database);
    if (!reader.ok()) {
      return reader.error();
    }
    store->pools_->idleReaders.push_back(std::move(*reader));
  }
  return store;
}

namespace {

// Observes how long a job took from being queued to being done.
struct Timed {
  core::Metrics* metrics;
  const char* kind;
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  ~Timed() {
    if (metrics) {
      metrics->observe(
          "confab_store_operation_seconds", {{"kind", kind}},
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
  }
};

}  // namespace

asio::awaitable<void> Store::onWriter(std::function<void(Database&)> job) {
  Timed timed{options_.metrics, "write"};
  co_await runOn(pools_->writerThread, [&] { job(*pools_->writer); });
}

asio::awaitable<void> Store::onReader(std::function<void(Database&)> job) {
  Timed timed{options_.metrics, "read"};
  co_await runOn(pools_->readerThreads, [&] {
    // As many reader threads as connections: a connection is always free here.
    auto db = pools_->takeReader();
    struct Return {
      Pools& p;
      std::unique_ptr<Database>& db;
      ~Return() { p.giveBack(std::move(db)); }
    } giveBack{*pools_, db};
    job(*db);
  });
}

void Store::runOnWriterAndWait(const std::function<void(Database&)>& job) {
  std::promise<void> done;
  asio::post(pools_->writerThread, [&] {
    try {
      job(*pools_->writer);
      done.set_value();
    } catch (...) {
      done.set_exception(std::current_exception());
    }
  });
  done.get_future().get();
}

asio::awaitable<Status> Store::probe() {
  Status result;
  co_await onWriter([&](Database& db) {
    result = db.exec("BEGIN IMMEDIATE");
    if (result.ok()) {
      result = db.exec("ROLLBACK");
    }
  });
  co_return result;
}

Status Store::checkpoint() {
  Status result;
  runOnWriterAndWait([&](Database& db) { result = db.exec("PRAGMA wal_checkpoint(TRUNCATE)"); });
  return result;
}

StoreOptions storeOptions(const config::Config& config) {
  StoreOptions o;
  o.database.path = (std::filesystem::path(config.server.data_dir) / "confab.db").string();
  o.database.busy_timeout_ms = config.store.busy_timeout_ms;
  o.database.cache_kib = config.store.page_cache_kib;
  o.read_connections = config.store.read_connections;
  return o;
}

}  // namespace confab::store
