// SPDX-License-Identifier: Apache-2.0
#pragma once
// The long-lived services that the daemon and the maintenance commands build the same way from a
// Config: the audit log with its signing key, and the retention scheduler with every job
// registered. One place, so that `confabd retention run` removes exactly what the daemon would.

#include <confab/audit/audit_log.h>
#include <confab/audit/retention.h>
#include <confab/config/config.h>
#include <confab/core/crypto.h>
#include <confab/core/metrics.h>
#include <confab/store/store.h>

#include <memory>
#include <string>

namespace confab::store {
class BlobStore;
class KeyStore;
}  // namespace confab::store

namespace confab::app {

// The Ed25519 key of audit checkpoints, from the key store (created there on first use unless
// the key store is read-only). Null with `error` set when it cannot be had.
std::shared_ptr<const core::crypto::Ed25519Key> auditSigningKey(store::KeyStore& keys,
                                                                std::string* error);

audit::AuditOptions auditOptions(const config::Config& config);

// A scheduler with the jobs of every module: audit entries and the events replay buffer (later
// issues add messages, recordings and terminated accounts here). `options.interval` and
// `batch_size` come from the configuration; `on_batch` from the caller.
std::unique_ptr<audit::RetentionScheduler> makeRetentionScheduler(
    const config::Config& config, store::Store& store, store::BlobStore* blobs,
    const audit::AuditLog& audit, core::Clock& clock, core::Metrics* metrics,
    audit::RetentionOptions options);

}  // namespace confab::app
