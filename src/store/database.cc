// SPDX-License-Identifier: Apache-2.0
#include <confab/store/database.h>

#include <sqlite3.h>

namespace confab::store {

Error sqliteError(sqlite3* db, std::string_view what) {
  int code = db ? sqlite3_extended_errcode(db) : SQLITE_ERROR;
  std::string message = std::string(what) + ": " + (db ? sqlite3_errmsg(db) : "no connection");
  // Contention that outlived busy_timeout is transient: the client may retry.
  if (code == SQLITE_IOERR_DATA) {
    // The encrypting VFS found a page that does not authenticate (it logged which one).
    return makeError(ErrorCode::Internal, "storage corruption: " + std::string(what) +
                                              " read a page that failed authentication");
  }
  auto primary = code & 0xff;
  auto kind = (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) ? ErrorCode::Unavailable
                                                                   : ErrorCode::Internal;
  return makeError(kind, message);
}

Statement::Statement(Statement&& other) noexcept
    : stmt_(other.stmt_), db_(other.db_), bindError_(std::move(other.bindError_)) {
  other.stmt_ = nullptr;
}

Statement::~Statement() {
  if (stmt_) {
    sqlite3_finalize(stmt_);
  }
}

Statement& Statement::bind(int index, std::int64_t value) {
  if (sqlite3_bind_int64(stmt_, index, value) != SQLITE_OK && bindError_.ok()) {
    bindError_ = sqliteError(db_, "bind");
  }
  return *this;
}

Statement& Statement::bind(int index, std::string_view text) {
  if (sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8) !=
          SQLITE_OK &&
      bindError_.ok()) {
    bindError_ = sqliteError(db_, "bind");
  }
  return *this;
}

Statement& Statement::bindNull(int index) {
  if (sqlite3_bind_null(stmt_, index) != SQLITE_OK && bindError_.ok()) {
    bindError_ = sqliteError(db_, "bind");
  }
  return *this;
}

Result<bool> Statement::step() {
  if (!bindError_.ok()) {
    return bindError_.error();
  }
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) {
    return true;
  }
  if (rc == SQLITE_DONE) {
    return false;
  }
  return sqliteError(db_, "step");
}

Status Statement::run() {
  auto r = step();
  if (!r.ok()) {
    return r.error();
  }
  return {};
}

Status Statement::forEachRow(const std::function<void(const Statement&)>& row) {
  for (;;) {
    auto more = step();
    if (!more.ok()) {
      return more.error();
    }
    if (!*more) {
      return {};
    }
    row(*this);
  }
}

void Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  bindError_ = {};
}

std::int64_t Statement::int64(int column) const {
  return sqlite3_column_int64(stmt_, column);
}

std::string Statement::text(int column) const {
  const auto* p = sqlite3_column_text(stmt_, column);
  int n = sqlite3_column_bytes(stmt_, column);
  return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n))
           : std::string();
}

bool Statement::isNull(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

Result<std::unique_ptr<Database>> Database::open(const OpenOptions& options) {
  sqlite3* raw = nullptr;
  int flags =
      SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE |
      (options.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  int rc = sqlite3_open_v2(options.path.c_str(), &raw, flags,
                           options.vfs.empty() ? nullptr : options.vfs.c_str());
  if (rc != SQLITE_OK) {
    auto err = sqliteError(raw, "open " + options.path);
    sqlite3_close(raw);
    return err;
  }
  std::unique_ptr<Database> db(new Database(raw));
  sqlite3_busy_timeout(raw, options.busy_timeout_ms);
  if (options.reserve_bytes > 0) {
    // Takes effect only while the file is still empty; SQLite reads the real value from page 1
    // of an existing database.
    int reserve = options.reserve_bytes;
    if (sqlite3_file_control(raw, "main", SQLITE_FCNTL_RESERVE_BYTES, &reserve) != SQLITE_OK) {
      return sqliteError(raw, "reserve bytes for " + options.path);
    }
  }
  // WAL lets readers run beside the one writer; FULL syncs the WAL on every commit so that a
  // committed request survives power loss, not only a process crash.
  if (!options.read_only) {
    CONFAB_TRY(db->exec("PRAGMA journal_mode=WAL"));
  }
  // secure_delete=FAST zeroes deleted content inside the pages it touches anyway, so deleted
  // rows do not linger in pages still in use (at no extra I/O).
  CONFAB_TRY(
      db->exec("PRAGMA foreign_keys=ON; PRAGMA synchronous=FULL; PRAGMA secure_delete=FAST;"));
  if (options.cache_kib > 0) {
    CONFAB_TRY(db->exec("PRAGMA cache_size=-" + std::to_string(options.cache_kib)));
  }
  return db;
}

Database::~Database() {
  cache_.clear();  // finalized before the connection closes
  sqlite3_close_v2(db_);
}

Status Database::exec(std::string_view sql) {
  char* msg = nullptr;
  std::string copy(sql);
  if (sqlite3_exec(db_, copy.c_str(), nullptr, nullptr, &msg) != SQLITE_OK) {
    sqlite3_free(msg);
    return sqliteError(db_, "exec");
  }
  return {};
}

Result<Statement> Database::prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr) !=
      SQLITE_OK) {
    return sqliteError(db_, "prepare");
  }
  return Statement(stmt, db_);
}

Result<Statement*> Database::cached(std::string_view sql) {
  if (auto it = cache_.find(sql); it != cache_.end()) {
    it->second->reset();
    return it->second.get();
  }
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                         &stmt, nullptr) != SQLITE_OK) {
    return sqliteError(db_, "prepare");
  }
  auto [it, inserted] = cache_.emplace(std::string(sql), std::make_unique<Statement>(stmt, db_));
  (void)inserted;
  return it->second.get();
}

std::int64_t Database::changes() const {
  return sqlite3_changes64(db_);
}

Result<std::int64_t> Database::queryInt(std::string_view sql) {
  auto stmt = prepare(sql);
  if (!stmt.ok()) {
    return stmt.error();
  }
  auto row = stmt->step();
  if (!row.ok()) {
    return row.error();
  }
  return *row ? stmt->int64(0) : 0;
}

Result<std::int64_t> Database::copyTo(Database& target) {
  sqlite3_backup* b = sqlite3_backup_init(target.db_, "main", db_, "main");
  if (!b) {
    return sqliteError(target.db_, "backup");
  }
  int rc = sqlite3_backup_step(b, -1);
  std::int64_t pages = sqlite3_backup_pagecount(b);
  sqlite3_backup_finish(b);
  if (rc != SQLITE_DONE) {
    return sqliteError(target.db_, "backup step");
  }
  return pages;
}

Status Database::checkIntegrity() {
  auto s = prepare("PRAGMA integrity_check");
  if (!s.ok()) {
    return s.error();
  }
  auto row = s->step();
  if (!row.ok()) {
    return row.error();
  }
  if (!*row || s->text(0) != "ok") {
    return makeError(ErrorCode::FailedPrecondition,
                     "PRAGMA integrity_check: " + (*row ? s->text(0) : std::string("no result")));
  }
  return {};
}

}  // namespace confab::store
