// SPDX-License-Identifier: Apache-2.0
#include <confab/app/services.h>
#include <confab/events/event_log.h>
#include <confab/store/keys.h>

namespace confab::app {
namespace {

// The events replay buffer as a retention job: events past their time or count limit. They belong
// to users, not to an account's records, so removals are logged and counted, not audited.
class EventsRetentionJob final : public audit::RetentionJob {
 public:
  explicit EventsRetentionJob(events::Retention retention) : retention_(retention) {}
  std::string name() const override { return "events"; }
  Result<audit::Batch> runBatch(store::Database& db, std::int64_t now_ms, int limit) override {
    auto removed = events::EventLog::purge(db, retention_, now_ms, limit);
    if (!removed.ok()) {
      return removed.error();
    }
    audit::Batch batch;
    if (*removed > 0) {
      batch.removed[""] = audit::Removal{*removed, 0};
    }
    batch.more = *removed >= limit;
    return batch;
  }

 private:
  events::Retention retention_;
};

}  // namespace

std::unique_ptr<audit::RetentionScheduler> makeRetentionScheduler(
    const config::Config& config, store::Store& store, store::BlobStore* blobs,
    const audit::AuditLog& audit, core::Clock& clock, core::Metrics* metrics,
    audit::RetentionOptions options) {
  options.interval = std::chrono::seconds(config.retention.interval_seconds);
  options.batch_size = config.retention.batch_size;
  auto scheduler = std::make_unique<audit::RetentionScheduler>(store, blobs, audit, clock, metrics,
                                                               std::move(options));
  scheduler->add(audit::makeAuditRetentionJob(audit));
  scheduler->add(std::make_unique<EventsRetentionJob>(
      events::Retention{static_cast<std::int64_t>(config.events.retention_seconds) * 1000,
                        config.events.retention_count}));
  return scheduler;
}

std::shared_ptr<const core::crypto::Ed25519Key> auditSigningKey(store::KeyStore& keys,
                                                                std::string* error) {
  auto seed = keys.auditSigningKey();
  if (!seed.ok()) {
    *error = seed.error().message;
    return nullptr;
  }
  std::shared_ptr<const core::crypto::Ed25519Key> key =
      core::crypto::Ed25519Key::fromSeed(seed->seed.bytes());
  if (!key) {
    *error = "the audit signing key in the key store is not a valid Ed25519 seed";
  }
  return key;
}

audit::AuditOptions auditOptions(const config::Config& config) {
  return audit::AuditOptions{config.audit.checkpoint_entries, config.audit.retention_days,
                             config.audit.min_retention_days};
}

}  // namespace confab::app
