// SPDX-License-Identifier: Apache-2.0
#include <confab/app/cli.h>

#include <exception>
#include <iostream>

int main(int argc, char** argv) {
  // Start-up failures throw; they end here with one clear line and a non-zero exit.
  try {
    return confab::app::runCommandLine(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "confabd: fatal: " << e.what() << "\n";
    return 1;
  }
}
