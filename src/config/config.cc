// SPDX-License-Identifier: Apache-2.0
#include <confab/config/config.h>

#include <toml++/toml.h>

#include <cctype>
#include <charconv>
#include <sstream>

#include "config/config_keys.h"

extern char** environ;

namespace confab::config {
namespace {

Error keyError(const std::string& key, const std::string& reason) {
  return makeError(ErrorCode::InvalidArgument, key + ": " + reason, key);
}

const Key* findKey(const std::string& name) {
  for (const auto& k : keys()) {
    if (k.name == name) {
      return &k;
    }
  }
  return nullptr;
}

Status setInteger(const Key& key, Config& c, std::int64_t v) {
  if (v < key.min || v > key.max) {
    return keyError(key.name, "must be between " + std::to_string(key.min) + " and " +
                                  std::to_string(key.max) + " (got " + std::to_string(v) + ")");
  }
  Field f = key.field(c);
  if (auto* p = std::get_if<int*>(&f)) {
    **p = static_cast<int>(v);
  } else if (auto* p64 = std::get_if<std::int64_t*>(&f)) {
    **p64 = v;
  } else {
    return keyError(key.name, "must be a string");
  }
  return {};
}

std::vector<std::string> splitList(const std::string& s) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in(s);
  while (std::getline(in, item, ',')) {
    auto b = item.find_first_not_of(" \t");
    auto e = item.find_last_not_of(" \t");
    if (b != std::string::npos) {
      out.push_back(item.substr(b, e - b + 1));
    }
  }
  return out;
}

// A value given as text (environment variable or flag).
Status setFromText(const Key& key, Config& c, const std::string& text) {
  Field f = key.field(c);
  if (auto* s = std::get_if<std::string*>(&f)) {
    **s = text;
    return {};
  }
  if (auto* l = std::get_if<std::vector<std::string>*>(&f)) {
    **l = splitList(text);
    return {};
  }
  std::int64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size() || text.empty()) {
    return keyError(key.name, "must be an integer (got \"" + text + "\")");
  }
  return setInteger(key, c, v);
}

Status setFromToml(const Key& key, Config& c, const toml::node& node) {
  Field f = key.field(c);
  if (auto* s = std::get_if<std::string*>(&f)) {
    auto v = node.value<std::string>();
    if (!node.is_string() || !v) {
      return keyError(key.name, "must be a string");
    }
    **s = *v;
    return {};
  }
  if (auto* l = std::get_if<std::vector<std::string>*>(&f)) {
    const auto* arr = node.as_array();
    if (!arr) {
      return keyError(key.name, "must be an array of strings");
    }
    (*l)->clear();
    for (const auto& item : *arr) {
      if (!item.is_string()) {
        return keyError(key.name, "must be an array of strings");
      }
      (*l)->push_back(*item.value<std::string>());
    }
    return {};
  }
  if (!node.is_integer()) {
    return keyError(key.name, "must be an integer");
  }
  return setInteger(key, c, *node.value<std::int64_t>());
}

Status readToml(const std::string& path, Config& c) {
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    return makeError(ErrorCode::InvalidArgument,
                     path + ":" + std::to_string(where.line) + ":" + std::to_string(where.column) +
                         ": " + std::string(e.description()),
                     "config");
  }
  for (const auto& [section, node] : root) {
    const auto* table = node.as_table();
    if (const Key* top = table ? nullptr : findKey(std::string(section.str()))) {
      CONFAB_TRY(setFromToml(*top, c, node));  // a top-level key such as master_key_file
      continue;
    }
    if (!table) {
      return keyError(std::string(section.str()),
                      "unknown key (settings live in sections such as "
                      "[server] or [limits])");
    }
    for (const auto& [name, value] : *table) {
      std::string full = std::string(section.str()) + "." + std::string(name.str());
      const Key* key = findKey(full);
      if (!key) {
        return keyError(full, "unknown key");
      }
      CONFAB_TRY(setFromToml(*key, c, value));
    }
  }
  return {};
}

}  // namespace

Result<Config> load(const LoadOptions& options) {
  Config c;
  if (options.file) {
    CONFAB_TRY(readToml(*options.file, c));
  }
  for (const auto& key : keys()) {
    auto it = options.environment.find(environmentName(key.name));
    if (it != options.environment.end()) {
      CONFAB_TRY(setFromText(key, c, it->second));
    }
  }
  for (const auto& [name, value] : options.overrides) {
    const Key* key = findKey(name);
    if (!key) {
      return keyError(name, "unknown key");
    }
    CONFAB_TRY(setFromText(*key, c, value));
  }
  // Unknown CONFAB_* variables are most likely typos of real ones: refuse them too.
  for (const auto& [name, value] : options.environment) {
    bool known = false;
    for (const auto& key : keys()) {
      known = known || environmentName(key.name) == name;
    }
    if (!known) {
      return makeError(ErrorCode::InvalidArgument, name + ": unknown CONFAB_* variable", name);
    }
  }
  for (const auto& key : keys()) {
    if (key.check) {
      if (auto reason = key.check(c); !reason.empty()) {
        return keyError(key.name, reason);
      }
    }
  }
  // Two listeners on one address and port would fail at bind time with a less helpful
  // message: name the keys that collide.
  const std::pair<const char*, const Listen*> listeners[] = {
      {"https", &c.server.https}, {"http", &c.server.http}, {"metrics", &c.server.metrics}};
  for (std::size_t i = 0; i < 3; ++i) {
    for (std::size_t j = i + 1; j < 3; ++j) {
      const auto& a = *listeners[i].second;
      const auto& b = *listeners[j].second;
      if (a.port != 0 && a.port == b.port && a.address == b.address) {
        return keyError(std::string("server.") + listeners[j].first + "_port",
                        std::string("is the same address and port as server.") +
                            listeners[i].first + "_port (" + a.address + ":" +
                            std::to_string(a.port) + ")");
      }
    }
  }
  return c;
}

std::string regionForCountry(const Config& config, std::string_view country) {
  if (country.size() != 2) {
    return {};
  }
  for (const auto& e : config.region.countries) {
    if (e.size() > 3 && e[2] == '=' &&
        std::toupper(static_cast<unsigned char>(e[0])) ==
            std::toupper(static_cast<unsigned char>(country[0])) &&
        std::toupper(static_cast<unsigned char>(e[1])) ==
            std::toupper(static_cast<unsigned char>(country[1]))) {
      return e.substr(3);
    }
  }
  return {};
}

std::map<std::string, std::string> environmentFromProcess() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string entry(*e);
    if (entry.rfind("CONFAB_", 0) != 0) {
      continue;
    }
    auto eq = entry.find('=');
    if (eq != std::string::npos) {
      env[entry.substr(0, eq)] = entry.substr(eq + 1);
    }
  }
  return env;
}

std::string describe(const Config& config) {
  Config copy = config;
  std::string out;
  std::string section;
  for (const auto& key : keys()) {
    auto dot = key.name.find('.');
    // Top-level keys come first in the table, before any section header.
    auto sec = dot == std::string::npos ? std::string() : key.name.substr(0, dot);
    if (sec != section) {
      out += (out.empty() ? "[" : "\n[") + sec + "]\n";
      section = sec;
    }
    out += (dot == std::string::npos ? key.name : key.name.substr(dot + 1)) + " = ";
    Field f = key.field(copy);
    if (auto* s = std::get_if<std::string*>(&f)) {
      out += "\"" + **s + "\"";
    } else if (auto* l = std::get_if<std::vector<std::string>*>(&f)) {
      out += "[";
      for (std::size_t i = 0; i < (*l)->size(); ++i) {
        out += (i ? ", \"" : "\"") + (**l)[i] + "\"";
      }
      out += "]";
    } else if (auto* p = std::get_if<int*>(&f)) {
      out += std::to_string(**p);
    } else if (auto* p64 = std::get_if<std::int64_t*>(&f)) {
      out += std::to_string(**p64);
    }
    out += "\n";
  }
  return out;
}

}  // namespace confab::config
