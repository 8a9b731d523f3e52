// SPDX-License-Identifier: Apache-2.0
#pragma once
// Parsing untrusted JSON: never throws, bounds nesting depth before the parser sees the text,
// and says what was wrong in a way that can go back to the client.

#include <confab/core/result.h>

#include <nlohmann/json.hpp>

#include <string_view>

namespace confab::api {

// The deepest nesting of arrays and objects in `text`, ignoring brackets inside strings.
// Stops counting (returning limit + 1) as soon as `limit` is exceeded.
int jsonDepth(std::string_view text, int limit);

// InvalidArgument with field "body" for invalid JSON, nesting deeper than `max_depth`, or a
// top level that is not an object.
Result<nlohmann::json> parseJsonObject(std::string_view text, int max_depth);

}  // namespace confab::api
