// SPDX-License-Identifier: Apache-2.0
#pragma once
// File helpers shared by the master key files and the key store (src/store/keys.cc,
// master_key.cc): error text, whitespace trimming, and durable writes — fsync of the file and of
// its directory, so that what was reported written survives a power loss.

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <sys/stat.h>

namespace confab::store::key_files {

namespace fs = std::filesystem;

inline std::string systemError(int err) {
  return std::strerror(err);
}

inline std::string trim(std::string_view s) {
  auto b = s.find_first_not_of(" \t\r\n\v\f");
  if (b == std::string_view::npos) {
    return {};
  }
  auto e = s.find_last_not_of(" \t\r\n\v\f");
  return std::string(s.substr(b, e - b + 1));
}

// fsync of a directory, so that a rename or a new entry in it survives power loss.
inline bool syncDirectory(const fs::path& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return false;
  }
  bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

inline bool writeAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// Replaces `path` with `data` so that a crash leaves either the old or the new file: temp file
// with mode 0600, fsync, rename over, fsync of the directory. Returns the failing step, or "".
inline std::string replaceFile(const fs::path& path, std::string_view data) {
  fs::path tmp = path;
  tmp += ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    return "cannot create " + tmp.string() + ": " + systemError(errno);
  }
  std::string failure;
  if (::fchmod(fd, 0600) != 0 || !writeAll(fd, data) || ::fsync(fd) != 0) {
    failure = "cannot write " + tmp.string() + ": " + systemError(errno);
  }
  if (::close(fd) != 0 && failure.empty()) {
    failure = "cannot write " + tmp.string() + ": " + systemError(errno);
  }
  if (failure.empty() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    failure = "cannot rename " + tmp.string() + ": " + systemError(errno);
  }
  if (!failure.empty()) {
    ::unlink(tmp.c_str());
    return failure;
  }
  if (!syncDirectory(path.parent_path())) {
    return "cannot sync the directory of " + path.string() + ": " + systemError(errno);
  }
  return {};
}

}  // namespace confab::store::key_files
