// SPDX-License-Identifier: Apache-2.0
#include <confab/audit/audit_log.h>
#include <confab/audit/retention.h>
#include <confab/core/log.h>
#include <confab/store/blob_store.h>
#include <confab/store/store.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

namespace confab::audit {
namespace {

namespace asio = boost::asio;

constexpr std::string_view kStarted = R"sql(
INSERT INTO retention_runs (job, started_at, finished_at, items, bytes, error)
VALUES (?1, ?2, 0, 0, 0, '')
ON CONFLICT (job) DO UPDATE SET started_at = excluded.started_at, finished_at = 0)sql";

constexpr std::string_view kFinished =
    "UPDATE retention_runs SET finished_at = ?2, items = ?3, bytes = ?4, error = ?5 WHERE job = ?1";

// When the last complete run of any job ended: the schedule's starting point after a restart.
constexpr std::string_view kLastFinished =
    "SELECT coalesce(min(finished_at), 0) FROM retention_runs WHERE finished_at > 0";

void accumulate(JobReport& r, const Batch& b) {
  ++r.batches;
  for (const auto& [account, removal] : b.removed) {
    r.items += removal.items;
    r.bytes += removal.bytes;
    auto& a = r.by_account[account];
    a.items += removal.items;
    a.bytes += removal.bytes;
  }
}

Status markStarted(store::Database& db, const std::string& job, std::int64_t now_ms) {
  auto s = db.prepare(kStarted);
  if (!s.ok()) {
    return s.error();
  }
  s->bind(1, job).bind(2, now_ms);
  return s->run();
}

Status markFinished(store::Database& db, const JobReport& r, std::int64_t now_ms) {
  auto s = db.prepare(kFinished);
  if (!s.ok()) {
    return s.error();
  }
  s->bind(1, r.job).bind(2, now_ms).bind(3, r.items).bind(4, r.bytes).bind(5, r.error);
  return s->run();
}

}  // namespace

bool RunReport::ok() const {
  return std::all_of(jobs.begin(), jobs.end(), [](const JobReport& j) { return j.error.empty(); });
}

struct RetentionScheduler::Loop {
  explicit Loop(asio::any_io_executor ex) : timer(ex) {}
  asio::steady_timer timer;
  std::atomic<bool> stopped{false};
  std::atomic<bool> triggered{false};
};

RetentionScheduler::RetentionScheduler(store::Store& store, store::BlobStore* blobs,
                                       const AuditLog& audit, core::Clock& clock,
                                       core::Metrics* metrics, RetentionOptions options)
    : store_(store),
      blobs_(blobs),
      audit_(audit),
      clock_(clock),
      metrics_(metrics),
      options_(std::move(options)) {
  if (metrics_) {
    metrics_->describe("confab_retention_removed_items_total", core::Metrics::Type::Counter,
                       "Items (rows) removed by retention, by job.");
    metrics_->describe("confab_retention_removed_bytes_total", core::Metrics::Type::Counter,
                       "Bytes removed by retention (row data and files), by job.");
    metrics_->describe("confab_retention_runs_total", core::Metrics::Type::Counter,
                       "Retention runs by job and result (ok, failed).");
  }
}

RetentionScheduler::~RetentionScheduler() {
  stop();
}

void RetentionScheduler::add(std::unique_ptr<RetentionJob> job) {
  jobs_.push_back(std::move(job));
}

Result<Batch> RetentionScheduler::batchInTransaction(RetentionJob& job, store::Database& db,
                                                     std::int64_t now_ms,
                                                     std::int64_t* files_removed) {
  auto batch = job.runBatch(db, now_ms, options_.batch_size);
  if (!batch.ok()) {
    return batch.error();
  }
  // Each account learns in its own audit trail what retention took, in the same transaction.
  for (const auto& [account, removal] : batch->removed) {
    if (account.empty() || removal.items == 0) {
      continue;
    }
    Entry e;
    e.account_id = account;
    e.actor.account_id = account;
    e.action = "retention.removed";
    e.target_type = "retention_job";
    e.target_id = job.name();
    e.details = {{"items", removal.items}, {"bytes", removal.bytes}};
    if (removal.through_seq > 0) {
      e.details.emplace_back("through_seq", removal.through_seq);
    }
    auto r = audit_.append(db, e);
    if (!r.ok()) {
      return r.error();
    }
  }
  // Files go only once their rows are gone for good.
  db.afterCommit([this, name = job.name(), b = *batch, files_removed] {
    if (options_.on_batch) {
      options_.on_batch(name, b);
    }
    for (const auto& id : b.blob_files) {
      if (blobs_ && blobs_->removeFile(id).ok()) {
        ++*files_removed;
      }
    }
  });
  return batch;
}

void RetentionScheduler::finish(JobReport& r, std::int64_t started_ms) {
  auto log = core::logger("retention");
  auto elapsed = core::toUnixMillis(clock_.now()) - started_ms;
  if (!r.error.empty()) {
    log->error("retention job {} failed after {} batch(es), {} item(s) removed: {}", r.job,
               r.batches, r.items, r.error);
  } else if (r.items > 0 || r.files_removed > 0) {
    log->info("retention job {}: removed {} item(s), {} bytes, {} file(s) in {} batch(es), {} ms",
              r.job, r.items, r.bytes, r.files_removed, r.batches, elapsed);
  }
  if (metrics_) {
    metrics_->increment("confab_retention_removed_items_total", {{"job", r.job}},
                        static_cast<double>(r.items));
    metrics_->increment("confab_retention_removed_bytes_total", {{"job", r.job}},
                        static_cast<double>(r.bytes));
    metrics_->increment("confab_retention_runs_total",
                        {{"job", r.job}, {"result", r.error.empty() ? "ok" : "failed"}});
  }
}

asio::awaitable<RunReport> RetentionScheduler::run() {
  RunReport report;
  report.started_ms = core::toUnixMillis(clock_.now());
  for (auto& job : jobs_) {
    JobReport r;
    r.job = job->name();
    std::int64_t started = core::toUnixMillis(clock_.now());
    auto begun = co_await store_.write<int>([&](store::Database& db) -> Result<int> {
      CONFAB_TRY(markStarted(db, r.job, started));
      return 0;
    });
    if (!begun.ok()) {
      r.error = begun.error().message;
    }
    while (r.error.empty()) {
      std::int64_t now = core::toUnixMillis(clock_.now());
      // One batch per transaction; between batches other writes get the writer.
      auto b = co_await store_.write<Batch>(
          [&](store::Database& db) { return batchInTransaction(*job, db, now, &r.files_removed); });
      if (!b.ok()) {
        r.error = b.error().message;
        break;
      }
      accumulate(r, *b);
      if (!b->more || (loop_ && loop_->stopped.load())) {
        break;
      }
    }
    std::int64_t done = core::toUnixMillis(clock_.now());
    (void)co_await store_.write<int>([&](store::Database& db) -> Result<int> {
      CONFAB_TRY(markFinished(db, r, done));
      return 0;
    });
    finish(r, started);
    report.jobs.push_back(std::move(r));
  }
  report.finished_ms = core::toUnixMillis(clock_.now());
  co_return report;
}

RunReport RetentionScheduler::runNow() {
  // The same run, driven by an io_context of its own on this thread.
  asio::io_context io;
  RunReport out;
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { out = co_await run(); }, asio::detached);
  io.run();
  return out;
}

void RetentionScheduler::start(asio::any_io_executor executor) {
  auto loop = std::make_shared<Loop>(executor);
  loop_ = loop;
  asio::co_spawn(
      executor,
      [this, loop]() -> asio::awaitable<void> {
        auto last = co_await store_.read<std::int64_t>(
            [](store::Database& db) { return db.queryInt(kLastFinished); });
        auto interval = std::chrono::duration_cast<std::chrono::milliseconds>(options_.interval);
        std::int64_t now = core::toUnixMillis(clock_.now());
        std::chrono::milliseconds delay{0};
        if (last.ok() && *last > 0) {
          delay = std::chrono::milliseconds(
              std::clamp<std::int64_t>(*last + interval.count() - now, 0, interval.count()));
        }
        while (!loop->stopped.load()) {
          if (!loop->triggered.exchange(false)) {
            loop->timer.expires_after(delay);
            co_await loop->timer.async_wait(asio::as_tuple(asio::use_awaitable));
            loop->triggered.store(false);
          }
          if (loop->stopped.load()) {
            break;
          }
          co_await run();
          delay = interval;
        }
      },
      asio::detached);
}

void RetentionScheduler::trigger() {
  if (auto loop = loop_) {
    loop->triggered.store(true);
    asio::post(loop->timer.get_executor(), [loop] { loop->timer.cancel(); });
  }
}

void RetentionScheduler::stop() {
  if (auto loop = loop_) {
    loop->stopped.store(true);
    asio::post(loop->timer.get_executor(), [loop] { loop->timer.cancel(); });
  }
}

}  // namespace confab::audit
