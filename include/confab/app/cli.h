// SPDX-License-Identifier: Apache-2.0
#pragma once
// The confabd command line: parses flags, loads the configuration and runs the daemon or the
// requested action. Exit codes: 0 ok, 1 runtime failure, 2 bad configuration or usage.

namespace confab::app {

int runCommandLine(int argc, char** argv);

}  // namespace confab::app
