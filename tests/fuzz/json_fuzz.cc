// SPDX-License-Identifier: Apache-2.0
// Untrusted JSON as the API and the events socket parse it: depth bound, then parse, never throw.
#include <confab/api/json_body.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto depth = confab::api::jsonDepth(text, 32);
  auto parsed = confab::api::parseJsonObject(text, 32);
  if (parsed.ok()) {
    // What parses must be an object within the depth bound, and serialise again.
    if (!parsed->is_object() || depth > 32) {
      __builtin_trap();
    }
    (void)parsed->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    // Members are read the way the events socket reads them: checked, never value<T>() with a
    // default, which throws when the member has another type ({"type":3}, found by this target).
    auto type = parsed->find("type");
    if (type != parsed->end() && type->is_string()) {
      (void)type->get_ref<const std::string&>();
    }
  }
  return 0;
}
