// SPDX-License-Identifier: Apache-2.0
#include <confab/app/cli.h>
#include <confab/app/daemon.h>
#include <confab/config/config.h>
#include <confab/core/log.h>
#include <confab/core/random.h>
#include <confab/core/version.h>
#include <confab/store/keys.h>

#include <CLI/CLI.hpp>

#include <iostream>
#include <optional>
#include <vector>

namespace confab::app {
namespace {

// `confabd rekey --new-master-key-file NEW`: every wrapped key re-wrapped under NEW, then the
// operator is told exactly how to retire the old key file.
int rekeyMaster(const config::Config& config, const std::string& new_key_file) {
  auto hierarchy = store::openKeyHierarchy(config, core::CsprngRandom::instance(), false);
  if (!hierarchy.ok()) {
    std::cerr << "confabd rekey: " << hierarchy.error().message << "\n";
    return exitCodeFor(hierarchy.error());
  }
  auto& keys = *hierarchy->keys;
  const std::string old_path = hierarchy->master_key_path.string();
  auto fresh = store::loadMasterKey(new_key_file);
  if (!fresh.ok()) {
    std::cerr << "confabd rekey: " << fresh.error().message << "\n";
    if (fresh.error().message.ends_with(": not found")) {
      std::cerr << "  create one with: (umask 077; openssl rand -hex 32 > " << new_key_file
                << ")\n";
    }
    return kExitBadConfig;
  }
  const std::string old_id = keys.masterKeyId();
  const std::string new_id = store::masterKeyId(*fresh);
  if (new_id == old_id) {
    std::cerr << "confabd rekey: " << new_key_file << " holds the current master key (key id "
              << old_id << "); give a new one\n";
    return kExitBadConfig;
  }
  const std::string new_ledger = new_key_file + ".shredded";
  if (auto s = keys.rewrap(*fresh, new_ledger); !s.ok()) {
    std::cerr << "confabd rekey: " << s.error().message << "\n";
    return kExitFailure;
  }
  const std::size_t data_keys = keys.dataKeyCount();
  std::cout << "confabd rekey: re-wrapped the database key and " << data_keys
            << (data_keys == 1 ? " data key" : " data keys") << " under the new master key.\n"
            << "  key store       " << keys.path().string() << "\n"
            << "  new master key  " << new_key_file << " (key id " << new_id
            << "); destroyed-key ledger " << new_ledger << "\n"
            << "  old master key  " << old_path << " (key id " << old_id
            << ") no longer opens this key store\n"
            << "Next:\n"
            << "  1. Make confabd use the new key file:\n"
            << "       mv " << new_key_file << " " << old_path << "\n"
            << "       mv " << new_ledger << " " << old_path << ".shredded\n";
  if (!config.master_key_file.empty()) {
    std::cout << "     or set master_key_file (CONFAB_MASTER_KEY_FILE, --master-key-file) to "
              << new_key_file << " and keep " << new_ledger << " beside it.\n";
  }
  std::cout << "  2. Back up the new key file, apart from the data directory, and start confabd.\n"
            << "  3. Backups of the data directory made before now still need the old key (id "
            << old_id << "):\n"
            << "     keep it with them until they expire, then destroy every copy of it.\n";
  return kExitOk;
}

}  // namespace

int runCommandLine(int argc, char** argv) {
  CLI::App cli{"confabd — the Confab unified-communications server", "confabd"};
  std::string config_file;
  std::string data_dir;
  std::string master_key_file;
  std::string ready_file;
  std::string log_format;
  bool check_config = false;
  bool version = false;
  cli.add_option("--config", config_file, "TOML configuration file")->check(CLI::ExistingFile);
  cli.add_option("--data-dir", data_dir, "data directory (default ./var)");
  cli.add_option("--master-key-file", master_key_file,
                 "master key file (overrides master_key_file; default: created on first start "
                 "outside the data directory)");
  cli.add_option("--ready-file", ready_file,
                 "write the bound ports as JSON to this file once listening");
  cli.add_option("--log-format", log_format, "text or json")
      ->check(CLI::IsMember({"text", "json"}));
  cli.add_flag("--check-config", check_config, "validate the configuration and exit");
  cli.add_flag("--version", version, "print the version and exit");

  std::string new_master_key_file;
  bool rekey_database = false;
  auto* rekey = cli.add_subcommand(
      "rekey",
      "re-wrap every key under a new master key (--new-master-key-file), or re-encrypt the "
      "database under a new database key (--database); stop confabd first");
  rekey->add_option("--config", config_file, "TOML configuration file")->check(CLI::ExistingFile);
  rekey->add_option("--data-dir", data_dir, "data directory (default ./var)");
  rekey->add_option("--master-key-file", master_key_file, "the current master key file");
  auto* new_key = rekey->add_option("--new-master-key-file", new_master_key_file,
                                    "the new master key: 64 hex digits or 44 base64 characters, "
                                    "mode 0600 or 0400");
  auto* database = rekey->add_flag("--database", rekey_database,
                                   "re-encrypt the database under a new database key");
  new_key->excludes(database);

  std::string backup_file;
  auto* backup = cli.add_subcommand(
      "backup", "write an encrypted backup of the data directory to FILE (confabd may run)");
  backup->add_option("file", backup_file, "the backup file to create (never overwritten)")
      ->required();
  std::string restore_file;
  std::string backup_key_file;
  std::vector<std::string> shred_ledgers;
  auto* restore = cli.add_subcommand(
      "restore", "restore a backup FILE into an empty data directory (confabd stopped)");
  restore->add_option("file", restore_file, "a file written by confabd backup")
      ->required()
      ->check(CLI::ExistingFile);
  restore->add_option("--master-key-file", backup_key_file,
                      "the master key the backup was made with (default: the configured one)");
  restore->add_option("--shred-ledger", shred_ledgers,
                      "a shred ledger whose destroyed keys stay destroyed (repeatable; the "
                      "ledgers beside the backup's key and the configured key are always read)");
  backup->add_option("--master-key-file", master_key_file, "the master key file");
  for (auto* sub : {backup, restore}) {
    sub->add_option("--config", config_file, "TOML configuration file")->check(CLI::ExistingFile);
    sub->add_option("--data-dir", data_dir, "data directory (default ./var)");
  }
  auto* audit_cmd = cli.add_subcommand("audit", "the audit log (docs/audit.md)");
  audit_cmd->require_subcommand(1);
  std::vector<std::string> verify_accounts;
  std::vector<std::string> verify_logs;
  std::string verify_key;
  auto* verify = audit_cmd->add_subcommand(
      "verify",
      "walk every account's hash chain against its signed checkpoints and those in the log; "
      "exit 1 and name the first broken link when one does not hold (confabd may run)");
  verify->add_option("--account", verify_accounts, "only this account (repeatable)");
  verify
      ->add_option("--log", verify_logs,
                   "a confabd log (text or JSON lines) whose \"audit checkpoint\" lines are "
                   "checked too (repeatable)")
      ->check(CLI::ExistingFile);
  verify
      ->add_option("--public-key", verify_key,
                   "trust only this Ed25519 public key (PEM from confabd audit public-key)")
      ->check(CLI::ExistingFile);
  auto* public_key = audit_cmd->add_subcommand(
      "public-key", "print the PEM public key that verifies audit checkpoints");
  auto* retention_cmd = cli.add_subcommand("retention", "data that expires on schedule");
  retention_cmd->require_subcommand(1);
  auto* retention_run = retention_cmd->add_subcommand(
      "run", "run every retention job now, to completion (confabd stopped; else kill -USR1)");
  for (auto* sub : {verify, public_key, retention_run}) {
    sub->add_option("--config", config_file, "TOML configuration file")->check(CLI::ExistingFile);
    sub->add_option("--data-dir", data_dir, "data directory (default ./var)");
    sub->add_option("--master-key-file", master_key_file, "the master key file");
  }
  try {
    cli.parse(argc, argv);
    if (rekey->parsed() && new_master_key_file.empty() && !rekey_database) {
      throw CLI::ValidationError("rekey: give --new-master-key-file FILE or --database");
    }
    for (auto* sub : {rekey, backup, restore, audit_cmd, retention_cmd}) {
      if (sub->parsed() && (check_config || !ready_file.empty())) {
        throw CLI::ValidationError(sub->get_name() +
                                   ": --check-config and --ready-file do not apply");
      }
    }
  } catch (const CLI::ParseError& e) {
    int rc = cli.exit(e);
    return rc == 0 ? kExitOk : kExitBadConfig;
  }
  if (version) {
    std::cout << "confabd " << core::kVersion << " (" << core::kGitCommit << ", "
              << core::kBuildType << ")\n";
    return kExitOk;
  }

  config::LoadOptions load;
  if (!config_file.empty()) {
    load.file = config_file;
  }
  load.environment = config::environmentFromProcess();
  if (!data_dir.empty()) {
    load.overrides["server.data_dir"] = data_dir;
  }
  if (!master_key_file.empty()) {
    load.overrides["master_key_file"] = master_key_file;
  }
  if (!log_format.empty()) {
    load.overrides["log.format"] = log_format;
  }
  auto cfg = config::load(load);
  if (!cfg.ok()) {
    std::cerr << "confabd: configuration error: " << cfg.error().message << "\n";
    return kExitBadConfig;
  }
  if (check_config) {
    std::cout << "configuration OK\n" << config::describe(*cfg);
    return kExitOk;
  }
  core::setupLogging(cfg->log.format == "json" ? core::LogFormat::Json : core::LogFormat::Text,
                     cfg->log.level);
  if (rekey->parsed()) {
    if (!rekey_database) {
      return rekeyMaster(*cfg, new_master_key_file);
    }
    // rekey --database: the re-encryption itself lives in src/app/rekey_database.cc.
    auto hierarchy = store::openKeyHierarchy(*cfg, core::CsprngRandom::instance(), false);
    if (!hierarchy.ok()) {
      std::cerr << "confabd rekey: " << hierarchy.error().message << "\n";
      return exitCodeFor(hierarchy.error());
    }
    return rekeyDatabase(*cfg, *hierarchy);
  }
  if (backup->parsed()) {
    return backupCommand(*cfg, backup_file);
  }
  if (restore->parsed()) {
    return restoreCommand(*cfg, restore_file, backup_key_file, shred_ledgers);
  }
  if (verify->parsed()) {
    return auditVerifyCommand(*cfg, verify_accounts, verify_logs, verify_key);
  }
  if (public_key->parsed()) {
    return auditPublicKeyCommand(*cfg);
  }
  if (retention_run->parsed()) {
    return retentionRunCommand(*cfg);
  }
  core::logger("app")->info("confabd {} ({}) starting, data directory {}", core::kVersion,
                            core::kGitCommit, cfg->server.data_dir);
  DaemonOptions options;
  if (!ready_file.empty()) {
    options.ready_file = ready_file;
  }
  Daemon daemon(std::move(*cfg), std::move(options));
  return daemon.run();
}

}  // namespace confab::app
