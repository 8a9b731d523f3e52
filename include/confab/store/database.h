// SPDX-License-Identifier: Apache-2.0
#pragma once
// Database and Statement: thin RAII wrappers over one sqlite3 connection and its prepared
// statements. Not thread-safe: a Database belongs to one thread at a time (Store hands them out).
// Nothing here throws; failures come back as Error{Internal or Unavailable}.

#include <confab/core/result.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct sqlite3;
struct sqlite3_stmt;

namespace confab::store {

class Statement {
 public:
  Statement(sqlite3_stmt* stmt, sqlite3* db) : stmt_(stmt), db_(db) {}
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&&) = delete;
  ~Statement();

  // Parameters are numbered from 1, as in SQLite.
  Statement& bind(int index, std::int64_t value);
  Statement& bind(int index, std::string_view text);
  Statement& bind(int index, const char* text) { return bind(index, std::string_view(text)); }
  Statement& bindNull(int index);

  // Advances to the next row: true if there is one, false when done.
  Result<bool> step();
  // Runs a statement that returns no rows.
  Status run();
  // Steps through every remaining row, calling `row` with this statement positioned on it.
  Status forEachRow(const std::function<void(const Statement&)>& row);
  void reset();

  std::int64_t int64(int column) const;
  std::string text(int column) const;
  bool isNull(int column) const;

 private:
  sqlite3_stmt* stmt_;
  sqlite3* db_;
  Status bindError_;
};

struct OpenOptions {
  std::string path;
  // The SQLite VFS to open the file through; empty: the default VFS. The encrypting VFS registers
  // itself under its own name and is chosen here — the one seam through which every connection
  // opens.
  std::string vfs;
  int busy_timeout_ms = 5000;
  bool read_only = false;
  // Bytes SQLite leaves unused at the end of every page of a new database: the encrypting VFS
  // keeps each page's epoch, counter and tag there (kPageReserveBytes). Ignored for an existing
  // file, whose header already says.
  int reserve_bytes = 0;
  // SQLite's page cache for this connection; 0: SQLite's default (2 MiB).
  int cache_kib = 0;
};

class Database {
 public:
  // Opens (creating if needed, unless read_only) and applies the connection pragmas:
  // WAL, foreign_keys=ON, synchronous=FULL, secure_delete=FAST, busy_timeout.
  static Result<std::unique_ptr<Database>> open(const OpenOptions& options);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  Status exec(std::string_view sql);  // one or more statements, no parameters
  Result<Statement> prepare(std::string_view sql);
  // The same, kept prepared on this connection for the next call with the same text, and reset
  // (no row, no bindings) each time it is handed out: for statements on a hot path, where
  // preparing costs more than running. The pointer is valid until the Database closes; use it
  // for one execution at a time (do not hand out the same text while it is still stepping).
  Result<Statement*> cached(std::string_view sql);
  std::int64_t changes() const;
  // The first column of the first row of `sql` (no parameters); 0 when there is no row.
  Result<std::int64_t> queryInt(std::string_view sql);
  // PRAGMA user_version: the schema version the migrations have reached.
  Result<std::int64_t> userVersion() { return queryInt("PRAGMA user_version"); }
  // SQLite's online backup of this database into `target` (replacing its content) in one step,
  // under one read transaction: a consistent snapshot. Returns the number of pages copied.
  Result<std::int64_t> copyTo(Database& target);
  // PRAGMA integrity_check; FailedPrecondition naming the first problem it reports.
  Status checkIntegrity();
  sqlite3* handle() { return db_; }

  // Work for once the current transaction has committed: Store::write runs it on the writer
  // thread right after COMMIT, in the order added; a rollback discards it. For what must only
  // happen if the change is durable — a log line about it, removing a file after its row. It must
  // not block for long; an exception from it is swallowed.
  void afterCommit(std::function<void()> fn) { after_commit_.push_back(std::move(fn)); }
  // Hands the queued work over (and forgets it): Store::write runs it, or drops it on rollback.
  std::vector<std::function<void()>> takeAfterCommit() { return std::exchange(after_commit_, {}); }

 private:
  explicit Database(sqlite3* db) : db_(db) {}
  sqlite3* db_;
  std::vector<std::function<void()>> after_commit_;
  std::map<std::string, std::unique_ptr<Statement>, std::less<>> cache_;
};

// Error for the last failure on `db`, with `what` as context (logged, never shown to clients).
Error sqliteError(sqlite3* db, std::string_view what);

}  // namespace confab::store
