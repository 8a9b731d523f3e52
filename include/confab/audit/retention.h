// SPDX-License-Identifier: Apache-2.0
#pragma once
// Retention: data that expires on schedule. Modules register a RetentionJob per kind of data
// (audit entries, events, and later messages, recordings, terminated accounts); the
// RetentionScheduler runs every job periodically and on demand (`confabd retention run`,
// SIGUSR1), batch by batch:
//
// - each batch is one write transaction that removes at most `batch_size` items and records, in
//   the same transaction, one audit entry per account it touched ("retention.removed", with
//   counts and bytes);
// - blob files whose rows a batch removed are deleted after its commit (a crash in between
//   leaves only files without rows, which the blob store's start-up sweep removes);
// - the scheduler yields between batches, so other writes interleave and the service stays
//   responsive;
// - jobs are idempotent (they remove what is due at `now`, whatever ran before), so a run cut
//   short by a crash is simply finished by the next one; when each job last ran is kept in the
//   store (table retention_runs), so the schedule survives restarts;
// - what a run removed goes to the log, the metrics (confab_retention_removed_items_total and
//   _bytes_total by job) and, per account, the audit trail.
//
// Thread-safe. The scheduler runs its periodic loop on the executor given to start().

#include <confab/core/clock.h>
#include <confab/core/metrics.h>
#include <confab/core/result.h>
#include <confab/store/database.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace confab::store {
class BlobStore;
class Store;
}  // namespace confab::store

namespace confab::audit {

class AuditLog;

// What one batch removed from one account. An empty account id stands for data that belongs to
// no account (the events replay buffer): logged and counted, not audited.
struct Removal {
  std::int64_t items = 0;
  std::int64_t bytes = 0;
  // The audit job only: the account's entries up to this seq are gone. Recorded as through_seq
  // in the retention.removed entry, which verification requires before a chain's first entry.
  std::int64_t through_seq = 0;
};

struct Batch {
  std::map<std::string, Removal> removed;  // by account id
  std::vector<std::string> blob_files;     // blob ids whose rows this batch removed
  bool more = false;                       // more is due now: run another batch
};

class RetentionJob {
 public:
  virtual ~RetentionJob() = default;
  // A short lower-case name: "audit", "events", "messages".
  virtual std::string name() const = 0;
  // Inside a write transaction: removes at most `limit` items that are past their retention at
  // `now_ms`. Must be idempotent.
  virtual Result<Batch> runBatch(store::Database& db, std::int64_t now_ms, int limit) = 0;
};

struct RetentionOptions {
  std::chrono::seconds interval{60};  // between the end of one run and the start of the next
  int batch_size = 1000;
  // Called on the writer thread after each batch commits and before its blob files are
  // removed: progress for `confabd retention run`.
  std::function<void(const std::string& job, const Batch& batch)> on_batch;
};

struct JobReport {
  std::string job;
  std::int64_t batches = 0;
  std::int64_t items = 0;
  std::int64_t bytes = 0;
  std::int64_t files_removed = 0;
  std::map<std::string, Removal> by_account;
  std::string error;  // empty: the job finished
};

struct RunReport {
  std::int64_t started_ms = 0;
  std::int64_t finished_ms = 0;
  std::vector<JobReport> jobs;
  bool ok() const;
};

class RetentionScheduler {
 public:
  // `blobs` may be null when no job removes files. Every argument must outlive the scheduler.
  RetentionScheduler(store::Store& store, store::BlobStore* blobs, const AuditLog& audit,
                     core::Clock& clock, core::Metrics* metrics, RetentionOptions options = {});
  ~RetentionScheduler();

  // Before start() or the first run.
  void add(std::unique_ptr<RetentionJob> job);

  // One run of every job to completion (until a batch says no more is due), each batch its own
  // transaction. A failing job is reported and the others still run.
  boost::asio::awaitable<RunReport> run();
  // The same, blocking, for the command line (never on an I/O thread).
  RunReport runNow();

  // Periodic runs on `executor` until stop(): the first is due one interval after the previous
  // run finished (as recorded in the store), at once if that is past.
  void start(boost::asio::any_io_executor executor);
  // Starts a run now, or right after the current one. Thread-safe; for SIGUSR1.
  void trigger();
  void stop();

 private:
  struct Loop;
  Result<Batch> batchInTransaction(RetentionJob& job, store::Database& db, std::int64_t now_ms,
                                   std::int64_t* files_removed);
  void finish(JobReport& report, std::int64_t started_ms);

  store::Store& store_;
  store::BlobStore* blobs_;
  const AuditLog& audit_;
  core::Clock& clock_;
  core::Metrics* metrics_;
  RetentionOptions options_;
  std::vector<std::unique_ptr<RetentionJob>> jobs_;
  std::shared_ptr<Loop> loop_;
};

}  // namespace confab::audit
