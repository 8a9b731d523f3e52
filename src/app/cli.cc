// SPDX-License-Identifier: Apache-2.0
#include <confab/app/cli.h>
#include <confab/app/daemon.h>
#include <confab/config/config.h>
#include <confab/core/log.h>
#include <confab/core/version.h>

#include <CLI/CLI.hpp>

#include <iostream>

namespace confab::app {

int runCommandLine(int argc, char** argv) {
  CLI::App cli{"confabd — the Confab unified-communications server", "confabd"};
  std::string config_file;
  std::string data_dir;
  std::string ready_file;
  std::string log_format;
  bool check_config = false;
  bool version = false;
  cli.add_option("--config", config_file, "TOML configuration file")->check(CLI::ExistingFile);
  cli.add_option("--data-dir", data_dir, "data directory (default ./var)");
  cli.add_option("--ready-file", ready_file,
                 "write the bound ports as JSON to this file once listening");
  cli.add_option("--log-format", log_format, "text or json")
      ->check(CLI::IsMember({"text", "json"}));
  cli.add_flag("--check-config", check_config, "validate the configuration and exit");
  cli.add_flag("--version", version, "print the version and exit");
  try {
    cli.parse(argc, argv);
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
