// SPDX-License-Identifier: Apache-2.0
#include <confab/api/json_body.h>

namespace confab::api {

int jsonDepth(std::string_view text, int limit) {
  int depth = 0;
  int deepest = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
      if (deepest > limit) {
        return limit + 1;
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

Result<nlohmann::json> parseJsonObject(std::string_view text, int max_depth) {
  // nlohmann's parser recurses per nesting level: bound it before parsing, not after.
  if (jsonDepth(text, max_depth) > max_depth) {
    return makeError(ErrorCode::InvalidArgument,
                     "JSON nesting is deeper than " + std::to_string(max_depth) + " levels",
                     "body");
  }
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) {
    return makeError(ErrorCode::InvalidArgument, "the body is not valid JSON", "body");
  }
  if (!j.is_object()) {
    return makeError(ErrorCode::InvalidArgument, "the body must be a JSON object", "body");
  }
  return j;
}

}  // namespace confab::api
