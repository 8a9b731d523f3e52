// SPDX-License-Identifier: Apache-2.0
#pragma once
// Build identity, filled in by CMake.

namespace confab::core {

extern const char* const kVersion;    // "0.1.0"
extern const char* const kGitCommit;  // short commit hash, or "unknown"
extern const char* const kBuildType;  // CMAKE_BUILD_TYPE

}  // namespace confab::core
