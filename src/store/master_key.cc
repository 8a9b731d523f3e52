// SPDX-License-Identifier: Apache-2.0
// Master key files (loading, creating, the default location) and openKeyHierarchy, which decides
// where the master key comes from before the key store is opened.
#include <confab/store/keys.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <sys/stat.h>

#include "store/key_files.h"

namespace confab::store {
namespace fs = std::filesystem;
namespace crypto = core::crypto;
using key_files::syncDirectory;
using key_files::systemError;
using key_files::trim;
using key_files::writeAll;

namespace {

constexpr std::size_t kMaxKeyFileBytes = 4096;

Error masterKeyError(const std::string& path, const std::string& reason) {
  return makeError(ErrorCode::FailedPrecondition, "master key file " + path + ": " + reason,
                   "master_key_file");
}

}  // namespace

Result<crypto::SecretKey> loadMasterKey(const std::string& path) {
  // Refuse a FIFO, device or directory before opening it: opening a FIFO for reading blocks until
  // a writer appears. O_NONBLOCK and the fstat() below cover a swap between stat() and open().
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return masterKeyError(
        path, errno == ENOENT ? std::string("not found") : "cannot read: " + systemError(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    return masterKeyError(path, "not a regular file");
  }
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    return masterKeyError(
        path, errno == ENOENT ? std::string("not found") : "cannot read: " + systemError(errno));
  }
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return masterKeyError(path, "cannot read: " + systemError(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return masterKeyError(path, "not a regular file");
  }
  unsigned mode = st.st_mode & 07777;
  if (mode != 0600 && mode != 0400) {
    ::close(fd);
    char octal[8];
    std::snprintf(octal, sizeof octal, "%04o", mode);
    return masterKeyError(path, std::string("mode ") + octal +
                                    " is too open (must be 0600 or 0400, owned by this user)");
  }
  if (st.st_uid != ::geteuid()) {
    ::close(fd);
    return masterKeyError(path, "owned by uid " + std::to_string(st.st_uid) +
                                    ", not by this user (uid " + std::to_string(::geteuid()) + ")");
  }
  std::string text(kMaxKeyFileBytes + 1, '\0');
  std::size_t got = 0;
  while (got < text.size()) {
    ssize_t n = ::read(fd, text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      int err = errno;
      ::close(fd);
      crypto::wipe(text.data(), text.size());
      return masterKeyError(path, "cannot read: " + systemError(err));
    }
    if (n == 0) {
      break;
    }
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  std::string content = trim(std::string_view(text.data(), got));
  crypto::wipe(text.data(), text.size());
  if (content.empty()) {
    return masterKeyError(path, "is empty");
  }
  std::optional<std::string> raw;
  if (content.size() == 2 * crypto::kKeyBytes) {
    raw = crypto::fromHex(content);
  } else if (content.size() == 44) {
    raw = crypto::fromBase64(content);
  }
  crypto::wipe(content.data(), content.size());
  if (!raw || raw->size() != crypto::kKeyBytes) {
    if (raw) {
      crypto::wipe(raw->data(), raw->size());
    }
    return masterKeyError(path,
                          "not a 256-bit key (expected 64 hex digits or 44 base64 characters)");
  }
  crypto::SecretKey key(crypto::asBytes(*raw));
  crypto::wipe(raw->data(), raw->size());
  return key;
}

Result<crypto::SecretKey> createMasterKeyFile(const fs::path& path, core::Random& random) {
  const fs::path dir = path.parent_path();
  std::error_code ec;
  if (!dir.empty() && !fs::is_directory(dir, ec)) {
    fs::create_directories(dir, ec);
    if (ec) {
      return makeError(ErrorCode::Internal, "master key file " + path.string() +
                                                ": cannot create " + dir.string() + ": " +
                                                ec.message());
    }
    ::chmod(dir.c_str(), 0700);
  }
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    return makeError(errno == EEXIST ? ErrorCode::AlreadyExists : ErrorCode::Internal,
                     "master key file " + path.string() + ": cannot create: " + systemError(errno));
  }
  crypto::SecretKey key;
  random.fill(key.mutableBytes());
  std::string text = crypto::toHex(key.bytes()) + "\n";
  bool ok = ::fchmod(fd, 0600) == 0 && writeAll(fd, text) && ::fsync(fd) == 0;
  int err = errno;
  crypto::wipe(text.data(), text.size());
  ok = ::close(fd) == 0 && ok;
  if (!ok) {
    ::unlink(path.c_str());
    return makeError(ErrorCode::Internal,
                     "master key file " + path.string() + ": cannot write: " + systemError(err));
  }
  if (!syncDirectory(dir)) {
    return makeError(ErrorCode::Internal, "master key file " + path.string() +
                                              ": cannot sync its directory: " + systemError(errno));
  }
  return key;
}

Result<fs::path> defaultMasterKeyPath(const fs::path& data_dir) {
  fs::path base;
  const char* xdg = std::getenv("XDG_CONFIG_HOME");
  const char* home = std::getenv("HOME");
  // The XDG base directory specification says relative values are to be ignored.
  if (xdg && *xdg == '/') {
    base = xdg;
  } else if (home && *home == '/') {
    base = fs::path(home) / ".config";
  } else {
    return makeError(ErrorCode::FailedPrecondition,
                     "master_key_file: not set, and neither XDG_CONFIG_HOME nor HOME names a "
                     "directory for the default master key",
                     "master_key_file");
  }
  std::error_code ec;
  fs::path dir = fs::weakly_canonical(fs::absolute(data_dir, ec), ec);
  if (ec) {
    return makeError(ErrorCode::Internal, "cannot resolve the data directory " + data_dir.string() +
                                              ": " + ec.message());
  }
  auto digest = crypto::sha256(crypto::asBytes(dir.native()));
  return base / "confab" / ("master-" + crypto::toHex(digest).substr(0, 16) + ".key");
}

std::string masterKeyId(const crypto::SecretKey& master) {
  auto mac = crypto::hmacSha256(master.bytes(), crypto::asBytes("confab master key id"));
  return crypto::toHex(mac).substr(0, 16);
}

namespace {

// True if `inner` is `outer` or lies below it (both resolved through symlinks).
bool isWithin(const fs::path& inner, const fs::path& outer) {
  std::error_code ec;
  fs::path a = fs::weakly_canonical(fs::absolute(inner, ec), ec);
  fs::path b = fs::weakly_canonical(fs::absolute(outer, ec), ec);
  if (ec) {
    return false;
  }
  auto [ai, bi] = std::mismatch(a.begin(), a.end(), b.begin(), b.end());
  return bi == b.end() || (std::next(bi) == b.end() && bi->empty());
}

// A data directory that holds encrypted data but no keystore.json lost its key store: a new one
// (a new database key) could never open that data, so it is not created.
Status refuseDataWithoutKeyStore(const fs::path& data_dir) {
  std::error_code ec;
  const fs::path database = data_dir / "confab.db";
  const bool has_database = fs::exists(database, ec) && fs::file_size(database, ec) > 0 && !ec;
  bool has_blobs = false;
  if (!has_database && fs::is_directory(data_dir / "blobs", ec)) {
    for (fs::recursive_directory_iterator it(data_dir / "blobs", ec), end;
         !ec && it != end && !has_blobs; it.increment(ec)) {
      has_blobs = !it->is_directory(ec);
    }
  }
  if (!has_database && !has_blobs) {
    return {};
  }
  return makeError(ErrorCode::FailedPrecondition,
                   data_dir.string() + (has_database ? " holds a database" : " holds blob files") +
                       " but no key store (keystore.json): restore keystore.json from a backup; "
                       "a new key store cannot open existing data",
                   "keystore");
}

}  // namespace

Result<KeyHierarchy> openKeyHierarchy(const config::Config& config, core::Random& random,
                                      bool create, core::Clock* clock, bool read_only) {
  const fs::path data_dir = config.server.data_dir;
  const bool configured = !config.master_key_file.empty();
  KeyHierarchy h;
  if (configured) {
    h.master_key_path = config.master_key_file;
  } else {
    auto path = defaultMasterKeyPath(data_dir);
    if (!path.ok()) {
      return path.error();
    }
    h.master_key_path = *path;
  }
  // Every refusal comes before anything is created.
  if (isWithin(h.master_key_path, data_dir)) {
    return masterKeyError(
        h.master_key_path.string(),
        "lies inside the data directory " + data_dir.string() +
            (configured ? " (keep it elsewhere, so that a copy of the data directory does not "
                          "carry its key)"
                        : " (the default under $XDG_CONFIG_HOME or $HOME/.config: set "
                          "master_key_file to a file outside the data directory, so that a copy "
                          "of the data directory does not carry its key)"));
  }
  std::error_code ec;
  const bool store_exists = fs::exists(data_dir / "keystore.json", ec);
  if (create && !store_exists) {
    CONFAB_TRY(refuseDataWithoutKeyStore(data_dir));
  }
  if (create && !fs::is_directory(data_dir, ec)) {
    fs::create_directories(data_dir, ec);
    if (ec) {
      return makeError(ErrorCode::Internal, "cannot create the data directory " +
                                                data_dir.string() + ": " + ec.message());
    }
    ::chmod(data_dir.c_str(), 0700);
  }

  crypto::SecretKey master;
  if (configured) {
    auto key = loadMasterKey(config.master_key_file);
    if (!key.ok()) {
      return key.error();
    }
    master = *key;
  } else {
    const bool key_exists = fs::exists(h.master_key_path, ec);
    if (!key_exists && store_exists) {
      return masterKeyError(h.master_key_path.string(),
                            "not found, but " + data_dir.string() +
                                " already holds a key store: restore the key file from its "
                                "backup (a new master key cannot open existing data)");
    }
    if (key_exists || !create) {
      auto key = loadMasterKey(h.master_key_path.string());
      if (!key.ok()) {
        return key.error();
      }
      master = *key;
    } else {
      auto key = createMasterKeyFile(h.master_key_path, random);
      if (!key.ok()) {
        return key.error();
      }
      master = *key;
      h.created_master_key = true;
    }
  }
  KeyStoreOptions options;
  options.shred_ledger = h.master_key_path;
  options.shred_ledger += ".shredded";
  options.clock = clock;
  options.read_only = read_only && !create;
  auto store = KeyStore::open(data_dir, master, random, create, std::move(options));
  if (!store.ok()) {
    return store.error();
  }
  h.keys = std::move(*store);
  return h;
}
}  // namespace confab::store
