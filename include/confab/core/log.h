// SPDX-License-Identifier: Apache-2.0
#pragma once
// Logging: one spdlog logger per module ("net", "store", ...), all writing to stderr in one format.
// setupLogging() is called once at start-up before any thread starts; logger() is thread-safe.
// Never pass passwords, tokens, keys or message bodies to a logger.

#include <spdlog/spdlog.h>

#include <memory>
#include <string>
#include <string_view>

namespace confab::core {

enum class LogFormat { Text, Json };

// Configures every module logger. `level` is one of trace, debug, info, warn, error, critical, off.
void setupLogging(LogFormat format, std::string_view level);

// The logger of `module`, created on first use with the configured format and level.
std::shared_ptr<spdlog::logger> logger(const std::string& module);

// Escapes `s` for inclusion inside a JSON string in a log line (quotes, backslashes, controls).
std::string jsonEscape(std::string_view s);

}  // namespace confab::core
