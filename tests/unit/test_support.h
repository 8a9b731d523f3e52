// SPDX-License-Identifier: Apache-2.0
#pragma once
// Helpers shared by unit tests: a fresh directory per test, and a store opened in it.

#include <confab/store/store.h>

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

namespace confab::testing {

// A new, empty directory named after the running test; removed again on destruction.
class TestDir {
 public:
  explicit TestDir(const std::string& prefix)
      : path_(std::filesystem::temp_directory_path() /
              (prefix + "-" + std::to_string(::getpid()) + "-" +
               ::testing::UnitTest::GetInstance()->current_test_info()->name())) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TestDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TestDir(const TestDir&) = delete;
  TestDir& operator=(const TestDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// StoreOptions for a database file in `dir`.
inline store::StoreOptions testStoreOptions(const std::filesystem::path& dir, int readers = 1) {
  store::StoreOptions options;
  options.database.path = (dir / "confab.db").string();
  options.read_connections = readers;
  return options;
}

// A store in `dir` with every migration applied; null (and a failed test) if it cannot open.
inline std::unique_ptr<store::Store> openTestStore(const std::filesystem::path& dir,
                                                   int readers = 1) {
  auto s = store::Store::open(testStoreOptions(dir, readers));
  EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
  return s.ok() ? std::move(*s) : nullptr;
}

}  // namespace confab::testing
