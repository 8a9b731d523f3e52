// SPDX-License-Identifier: Apache-2.0
// `confabd audit verify`, `confabd audit public-key` and `confabd retention run`: the audit and
// retention commands of docs/audit.md and docs/operations.md. Each prints what it found or did
// and returns an exit code.
#include <confab/app/cli.h>
#include <confab/app/daemon.h>
#include <confab/app/services.h>
#include <confab/audit/audit_log.h>
#include <confab/audit/retention.h>
#include <confab/core/clock.h>
#include <confab/core/random.h>
#include <confab/store/blob_store.h>
#include <confab/store/encrypting_vfs.h>
#include <confab/store/keys.h>
#include <confab/store/store.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

namespace confab::app {
namespace {

namespace fs = std::filesystem;

// The keys and the audit log of a data directory, read-only: works beside a running daemon.
struct AuditReader {
  store::KeyHierarchy hierarchy;
  std::unique_ptr<audit::AuditLog> log;
};

Result<AuditReader> openAuditReader(const config::Config& config) {
  auto hierarchy = store::openKeyHierarchy(config, core::CsprngRandom::instance(), false, nullptr,
                                           /*read_only=*/true);
  if (!hierarchy.ok()) {
    return hierarchy.error();
  }
  std::string error;
  auto key = auditSigningKey(*hierarchy->keys, &error);
  if (!key) {
    return makeError(ErrorCode::FailedPrecondition,
                     "no audit signing key: " + error + " (confabd creates it at its first start)");
  }
  AuditReader r{std::move(*hierarchy), nullptr};
  r.log =
      std::make_unique<audit::AuditLog>(key, core::SystemClock::instance(), auditOptions(config));
  return r;
}

}  // namespace

int auditVerifyCommand(const config::Config& config, const std::vector<std::string>& accounts,
                       const std::vector<std::string>& log_files,
                       const std::string& public_key_file) {
  auto reader = openAuditReader(config);
  if (!reader.ok()) {
    std::cerr << "confabd audit verify: " << reader.error().message << "\n";
    return exitCodeFor(reader.error());
  }
  auto& log = *reader->log;
  if (!public_key_file.empty()) {
    std::ifstream in(public_key_file);
    std::stringstream pem;
    pem << in.rdbuf();
    auto key = core::crypto::ed25519PublicKeyFromPem(pem.str());
    if (!in.good() && !in.eof()) {
      std::cerr << "confabd audit verify: cannot read " << public_key_file << "\n";
      return kExitBadConfig;
    }
    if (!key) {
      std::cerr << "confabd audit verify: " << public_key_file
                << " holds no Ed25519 public key (PEM, as confabd audit public-key prints)\n";
      return kExitBadConfig;
    }
    log.trustOnly(*key);
    if (audit::AuditLog::keyIdOf(*key) != log.keyId()) {
      std::cout << "note: " << public_key_file << " (key " << audit::AuditLog::keyIdOf(*key)
                << ") is not the key this node signs with now (key " << log.keyId()
                << "): checkpoints signed since it changed will not verify\n";
    }
  }
  std::vector<audit::Checkpoint> logged;
  for (const auto& file : log_files) {
    std::ifstream in(file);
    if (!in) {
      std::cerr << "confabd audit verify: cannot read " << file << "\n";
      return kExitBadConfig;
    }
    auto parsed = audit::parseLoggedCheckpoints(in);
    if (!parsed.ok()) {
      std::cerr << "confabd audit verify: " << file << ": " << parsed.error().message << "\n";
      return kExitBadConfig;
    }
    logged.insert(logged.end(), parsed->begin(), parsed->end());
  }

  auto vfs = store::EncryptingVfs::create(reader->hierarchy.keys->databaseKey());
  if (!vfs.ok()) {
    std::cerr << "confabd audit verify: " << vfs.error().message << "\n";
    return kExitFailure;
  }
  store::OpenOptions o = store::storeOptions(config).database;
  o.vfs = (*vfs)->name();
  o.read_only = true;
  if (!fs::exists(o.path)) {
    std::cerr << "confabd audit verify: no database at " << o.path << "\n";
    return kExitBadConfig;
  }
  auto db = store::Database::open(o);
  if (!db.ok()) {
    std::cerr << "confabd audit verify: " << db.error().message << "\n";
    return exitCodeFor(db.error());
  }
  // Every account with a chain, and every account a logged checkpoint names: an account whose
  // rows were all removed still has its checkpoints in the log.
  std::set<std::string> which(accounts.begin(), accounts.end());
  if (which.empty()) {
    auto stored = log.accounts(**db);
    if (!stored.ok()) {
      std::cerr << "confabd audit verify: " << stored.error().message << "\n";
      return kExitFailure;
    }
    which.insert(stored->begin(), stored->end());
    for (const auto& c : logged) {
      which.insert(c.account_id);
    }
  }
  std::cout << "audit verify: " << which.size() << (which.size() == 1 ? " account" : " accounts")
            << ", " << logged.size() << " logged checkpoint(s) from " << log_files.size()
            << " file(s), trusting key "
            << (public_key_file.empty() ? log.keyId() + " (from the key store)" : public_key_file)
            << "\n";
  int broken = 0;
  int missing = 0;
  for (const auto& account : which) {
    auto report = log.verify(**db, account, logged);
    if (!report.ok()) {
      std::cerr << "confabd audit verify: " << account << ": " << report.error().message << "\n";
      return kExitFailure;
    }
    if (!report->broken && report->entries == 0 && report->checkpoints == 0 &&
        report->logged_checkpoints == 0) {
      ++missing;
      std::cout << "  " << account << ": no audit chain (no entries, no checkpoints)\n";
      continue;
    }
    if (report->broken) {
      ++broken;
      std::cout << "  " << account << ": BROKEN at seq " << report->broken->seq << ": "
                << report->broken->reason << "\n";
    } else {
      std::cout << "  " << account << ": ok, " << report->entries << " entries (seq "
                << report->first_seq << ".." << report->last_seq << "), " << report->checkpoints
                << " stored and " << report->logged_checkpoints << " logged checkpoint(s)\n";
    }
  }
  if (broken > 0) {
    std::cout << broken << (broken == 1 ? " chain does" : " chains do")
              << " not verify: see docs/audit.md, \"When verification fails\"\n";
    return kExitFailure;
  }
  if (missing > 0 && !accounts.empty()) {
    std::cerr << "confabd audit verify: " << missing
              << " of the accounts named have no audit chain here (a typo?)\n";
    return kExitBadConfig;
  }
  return kExitOk;
}

int auditPublicKeyCommand(const config::Config& config) {
  auto reader = openAuditReader(config);
  if (!reader.ok()) {
    std::cerr << "confabd audit public-key: " << reader.error().message << "\n";
    return exitCodeFor(reader.error());
  }
  std::cerr << "audit checkpoint key " << reader->log->keyId() << " (Ed25519)\n";
  std::cout << reader->log->publicKeyPem();
  return kExitOk;
}

int retentionRunCommand(const config::Config& config) {
  auto& random = core::CsprngRandom::instance();
  auto& clock = core::SystemClock::instance();
  auto hierarchy = store::openKeyHierarchy(config, random, false, &clock);
  if (!hierarchy.ok()) {
    std::cerr << "confabd retention run: " << hierarchy.error().message << "\n";
    if (hierarchy.error().code == ErrorCode::Unavailable) {
      std::cerr << "  confabd is running: ask it for a run instead with  kill -USR1 <its pid>\n";
    }
    return exitCodeFor(hierarchy.error());
  }
  auto& keys = *hierarchy->keys;
  auto vfs = store::EncryptingVfs::create(keys.databaseKey());
  if (!vfs.ok()) {
    std::cerr << "confabd retention run: " << vfs.error().message << "\n";
    return kExitFailure;
  }
  auto options = store::storeOptions(config);
  if (!fs::exists(options.database.path)) {
    std::cerr << "confabd retention run: no database at " << options.database.path << "\n";
    return kExitBadConfig;
  }
  options.database.vfs = (*vfs)->name();
  options.database.reserve_bytes = store::kPageReserveBytes;
  auto st = store::Store::open(options);
  if (!st.ok()) {
    std::cerr << "confabd retention run: " << st.error().message << "\n";
    return exitCodeFor(st.error());
  }
  std::string error;
  auto key = auditSigningKey(keys, &error);
  if (!key) {
    std::cerr << "confabd retention run: " << error << "\n";
    return kExitFailure;
  }
  audit::AuditLog log(key, clock, auditOptions(config));
  store::BlobStore blobs(fs::path(config.server.data_dir) / "blobs", keys, random);
  audit::RetentionOptions ro;
  ro.on_batch = [](const std::string& job, const audit::Batch& batch) {
    std::int64_t items = 0;
    std::int64_t bytes = 0;
    for (const auto& [account, r] : batch.removed) {
      items += r.items;
      bytes += r.bytes;
    }
    if (items == 0 && batch.blob_files.empty()) {
      return;  // progress lines only for batches that removed something
    }
    std::cout << "  " << job << ": removed " << items << " item(s), " << bytes << " bytes, "
              << batch.blob_files.size() << " file(s)" << (batch.more ? "; more to do" : "") << "\n"
              << std::flush;
  };
  auto scheduler = makeRetentionScheduler(config, **st, &blobs, log, clock, nullptr, ro);
  std::cout << "retention run: " << config.server.data_dir << "\n";
  auto report = scheduler->runNow();
  for (const auto& j : report.jobs) {
    std::cout << (j.error.empty() ? "  done " : "  FAILED ") << j.job << ": " << j.items
              << " item(s), " << j.bytes << " bytes, " << j.files_removed << " file(s) in "
              << j.batches << " batch(es)" << (j.error.empty() ? "" : ": " + j.error) << "\n";
  }
  // The retention entries just written are covered by a checkpoint before the command ends.
  auto signed_ = (*st)->writeNow<int>([&](store::Database& db) { return log.checkpointAll(db); });
  if (!signed_.ok()) {
    std::cerr << "confabd retention run: signing the audit chains failed: "
              << signed_.error().message << "\n";
    return kExitFailure;
  }
  std::cout << "retention run: " << (report.ok() ? "finished" : "finished with failures") << " in "
            << (report.finished_ms - report.started_ms) << " ms\n";
  return report.ok() ? kExitOk : kExitFailure;
}

}  // namespace confab::app
