// SPDX-License-Identifier: Apache-2.0
#include <confab/core/log.h>

#include <spdlog/pattern_formatter.h>
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

// %* : the message, escaped for a JSON string. Messages carry free text (paths, OpenSSL and OS
// error strings) that may hold quotes, backslashes or control characters.
class JsonMessageFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    auto escaped = jsonEscape(std::string_view(msg.payload.data(), msg.payload.size()));
    dest.append(escaped.data(), escaped.data() + escaped.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonMessageFlag>();
  }
};

void applyPattern(spdlog::logger& l, LogFormat format) {
  if (format == LogFormat::Json) {
    auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    formatter->add_flag<JsonMessageFlag>('*').set_pattern(
        R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","module":"%n","msg":"%*"})");
    l.set_formatter(std::move(formatter));
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
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
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
