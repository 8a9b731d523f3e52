// SPDX-License-Identifier: Apache-2.0
#include <confab/core/log.h>

#include <spdlog/sinks/stdout_sinks.h>

#include <mutex>

namespace confab::core {
namespace {

struct LogSettings {
  std::mutex mu;
  LogFormat format = LogFormat::Text;
  spdlog::level::level_enum level = spdlog::level::info;
  spdlog::sink_ptr sink;
};

LogSettings& settings() {
  static LogSettings s;
  return s;
}

void applyPattern(spdlog::logger& l, LogFormat format) {
  if (format == LogFormat::Json) {
    // Messages are written by Confab code that escapes any free text it includes (jsonEscape).
    l.set_pattern(R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","module":"%n","msg":"%v"})",
                  spdlog::pattern_time_type::utc);
  } else {
    l.set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l [%n] %v", spdlog::pattern_time_type::utc);
  }
}

}  // namespace

void setupLogging(LogFormat format, std::string_view level) {
  auto& s = settings();
  std::lock_guard lock(s.mu);
  s.format = format;
  s.level = spdlog::level::from_str(std::string(level));
  if (!s.sink) {
    s.sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  }
  spdlog::apply_all([&](const std::shared_ptr<spdlog::logger>& l) {
    applyPattern(*l, format);
    l->set_level(s.level);
  });
}

std::shared_ptr<spdlog::logger> logger(const std::string& module) {
  auto& s = settings();
  std::lock_guard lock(s.mu);
  if (auto existing = spdlog::get(module)) {
    return existing;
  }
  if (!s.sink) {
    s.sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  }
  auto l = std::make_shared<spdlog::logger>(module, s.sink);
  applyPattern(*l, s.format);
  l->set_level(s.level);
  l->flush_on(spdlog::level::info);
  spdlog::register_logger(l);
  return l;
}

std::string jsonEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          static constexpr char kHex[] = "0123456789abcdef";
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 0xf];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

}  // namespace confab::core
