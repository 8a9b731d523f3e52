// SPDX-License-Identifier: Apache-2.0
#pragma once
// The table of configuration keys: one entry per key, shared by the TOML, environment and flag
// readers so that the three can never disagree on names, types or ranges.

#include <confab/config/config.h>

#include <functional>
#include <string>
#include <variant>
#include <vector>

namespace confab::config {

using Field = std::variant<int*, std::int64_t*, std::string*, std::vector<std::string>*>;

struct Key {
  std::string name;  // "section.name", or "name" for a top-level key
  std::int64_t min = 0;
  std::int64_t max = 0;
  std::function<Field(Config&)> field;
  // Extra validation of the final value; empty string when valid, else the reason.
  std::function<std::string(const Config&)> check;
};

const std::vector<Key>& keys();

// "limits.body_bytes" -> "CONFAB_LIMITS_BODY_BYTES"
std::string environmentName(const std::string& key);

}  // namespace confab::config
