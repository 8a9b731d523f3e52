// SPDX-License-Identifier: Apache-2.0
#pragma once
// Store: the daemon's SQLite database. One writer connection on its own thread serialises every
// write; a pool of reader connections serves reads. Neither ever runs on an I/O thread: callers
// co_await write()/read(), which run the job on the store's threads and resume the caller on its
// own executor. write() wraps the job in BEGIN IMMEDIATE ... COMMIT; an Error from the job (or a
// failed COMMIT) rolls everything back, so a request commits completely or changes nothing.
// Thread-safe. The Store must outlive every coroutine that awaits it.

#include <confab/config/config.h>
#include <confab/core/metrics.h>
#include <confab/core/result.h>
#include <confab/store/database.h>

#include <boost/asio/awaitable.hpp>

#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace confab::store {

struct StoreOptions {
  OpenOptions database;  // path, vfs, busy timeout
  int read_connections = 4;
  // If set, each read and write job's latency (queueing included) is observed as
  // confab_store_operation_seconds{kind="read"|"write"}.
  core::Metrics* metrics = nullptr;
};

class Store {
 public:
  // Opens the database, applies pending migrations, opens the readers. Fails (without changing
  // the file) when the database was written by a newer confabd.
  static Result<std::unique_ptr<Store>> open(const StoreOptions& options);
  ~Store();

  // `after_commit`, if given, runs on the writer thread right after a successful commit and
  // before the next write starts: the place to publish what the transaction made visible, in
  // commit order. It must not block.
  template <typename T>
  boost::asio::awaitable<Result<T>> write(std::function<Result<T>(Database&)> job,
                                          std::function<void(const T&)> after_commit = {}) {
    std::optional<Result<T>> out;
    co_await onWriter([&](Database& db) {
      out.emplace(transact<T>(db, job));
      if (out->ok() && after_commit) {
        after_commit(out->value());
      }
    });
    co_return std::move(*out);
  }

  template <typename T>
  boost::asio::awaitable<Result<T>> read(std::function<Result<T>(Database&)> job) {
    std::optional<Result<T>> out;
    co_await onReader([&](Database& db) { out.emplace(job(db)); });
    co_return std::move(*out);
  }

  // Synchronous forms for start-up and command-line tools; never call from an I/O thread.
  template <typename T>
  Result<T> writeNow(const std::function<Result<T>(Database&)>& job) {
    std::optional<Result<T>> out;
    runOnWriterAndWait([&](Database& db) { out.emplace(transact<T>(db, job)); });
    return std::move(*out);
  }

  // Readiness: the write lock can be taken (BEGIN IMMEDIATE, then ROLLBACK: nothing is
  // written, so probing costs no fsync).
  boost::asio::awaitable<Status> probe();
  // Folds the WAL into the database file (on shutdown); TRUNCATE mode leaves an empty WAL.
  Status checkpoint();
  int schemaVersion() const { return schemaVersion_; }
  const std::string& path() const { return options_.database.path; }

 private:
  class Pools;
  explicit Store(StoreOptions options);

  template <typename T>
  static Result<T> transact(Database& db, const std::function<Result<T>(Database&)>& job) {
    if (auto s = db.exec("BEGIN IMMEDIATE"); !s.ok()) {
      return s.error();
    }
    std::optional<Result<T>> out;
    try {
      out.emplace(job(db));
    } catch (...) {
      // Never leave the writer inside a transaction: every later write would fail.
      (void)db.exec("ROLLBACK");
      db.takeAfterCommit();
      throw;
    }
    Result<T>& r = *out;
    if (!r.ok()) {
      (void)db.exec("ROLLBACK");
      db.takeAfterCommit();
      return r;
    }
    if (auto s = db.exec("COMMIT"); !s.ok()) {
      (void)db.exec("ROLLBACK");
      db.takeAfterCommit();
      return s.error();
    }
    for (auto& fn : db.takeAfterCommit()) {
      try {
        fn();
      } catch (...) {  // the change is committed; what follows it must not undo the answer
      }
    }
    return std::move(r);
  }

  boost::asio::awaitable<void> onWriter(std::function<void(Database&)> job);
  boost::asio::awaitable<void> onReader(std::function<void(Database&)> job);
  void runOnWriterAndWait(const std::function<void(Database&)>& job);

  StoreOptions options_;
  std::unique_ptr<Pools> pools_;
  int schemaVersion_ = 0;
};

// StoreOptions for the daemon's database file under `config.server.data_dir`.
StoreOptions storeOptions(const config::Config& config);

}  // namespace confab::store
