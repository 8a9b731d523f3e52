// SPDX-License-Identifier: Apache-2.0
#include <confab/core/crypto.h>
#include <confab/core/log.h>
#include <confab/core/version.h>
#include <confab/store/backup.h>
#include <confab/store/blob_store.h>
#include <confab/store/database.h>
#include <confab/store/encrypting_vfs.h>

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <array>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <sys/file.h>
#include <sys/stat.h>

#include "store/key_files.h"

namespace confab::store {

namespace fs = std::filesystem;
namespace crypto = core::crypto;
using json = nlohmann::json;

namespace {

constexpr char kManifest[] = "confab-backup.json";
constexpr char kKeystore[] = "keystore.json";
constexpr char kDatabase[] = "confab.db";
constexpr char kRestoreMarker[] = "restore-in-progress";
constexpr int kFormatVersion = 1;
constexpr std::size_t kCopyBytes = 256 * 1024;

Error ioError(const std::string& what, const fs::path& path, int err) {
  return makeError(ErrorCode::Internal, what + " " + path.string() + ": " + std::strerror(err));
}

bool inside(const fs::path& child, const fs::path& parent) {
  auto c = fs::weakly_canonical(child);
  auto p = fs::weakly_canonical(parent);
  auto [pe, ce] = std::mismatch(p.begin(), p.end(), c.begin(), c.end());
  return pe == p.end();
}

// An exclusive lock on <data_dir>/keystore.lock, the lock a running daemon's key store holds.
class DataDirLock {
 public:
  static Result<DataDirLock> take(const fs::path& data_dir) {
    auto path = data_dir / "keystore.lock";
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
      return ioError("cannot open", path, errno);
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd);
      return makeError(ErrorCode::FailedPrecondition,
                       "data directory " + data_dir.string() +
                           " is in use by another process (stop confabd first)");
    }
    return DataDirLock(fd);
  }
  DataDirLock(DataDirLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  DataDirLock& operator=(DataDirLock&&) = delete;
  ~DataDirLock() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }

 private:
  explicit DataDirLock(int fd) : fd_(fd) {}
  int fd_;
};

struct ArchiveWriter {
  archive* a = archive_write_new();
  ~ArchiveWriter() { archive_write_free(a); }
  Error error(const std::string& what) const {
    return makeError(ErrorCode::Internal,
                     what + ": " + (archive_error_string(a) ? archive_error_string(a) : "?"));
  }
};

struct ArchiveReader {
  archive* a = archive_read_new();
  ~ArchiveReader() { archive_read_free(a); }
};

Status writeEntryHeader(ArchiveWriter& w, const std::string& name, std::int64_t size,
                        std::time_t mtime) {
  archive_entry* e = archive_entry_new();
  archive_entry_set_pathname(e, name.c_str());
  archive_entry_set_size(e, size);
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, 0600);
  archive_entry_set_mtime(e, mtime, 0);
  int rc = archive_write_header(w.a, e);
  archive_entry_free(e);
  if (rc != ARCHIVE_OK) {
    return w.error("writing the backup entry " + name);
  }
  return {};
}

struct EntryDigest {
  std::int64_t size = 0;
  std::string sha256;
};

// Streams `file` into the archive as `name`, hashing it on the way.
Result<EntryDigest> addFile(ArchiveWriter& w, const fs::path& file, const std::string& name) {
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return ioError("cannot open", file, errno);
  }
  struct stat st {};
  ::fstat(fd, &st);
  if (auto h = writeEntryHeader(w, name, st.st_size, st.st_mtime); !h.ok()) {
    ::close(fd);
    return h.error();
  }
  crypto::Sha256 sha;
  std::vector<std::uint8_t> buf(kCopyBytes);
  std::int64_t total = 0;
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return ioError("cannot read", file, err);
    }
    if (n == 0 || total + n > st.st_size) {
      break;  // a file never grows here; a header with the size written must match
    }
    sha.update({buf.data(), std::size_t(n)});
    if (archive_write_data(w.a, buf.data(), std::size_t(n)) != n) {
      ::close(fd);
      return w.error("writing the backup entry " + name);
    }
    total += n;
  }
  ::close(fd);
  if (total != st.st_size) {
    return makeError(ErrorCode::Internal, file.string() + " changed while it was copied");
  }
  auto digest = sha.finish();
  return EntryDigest{total, crypto::toHex(digest)};
}

Status addBytes(ArchiveWriter& w, const std::string& name, const std::string& data) {
  CONFAB_TRY(writeEntryHeader(w, name, std::int64_t(data.size()), ::time(nullptr)));
  if (archive_write_data(w.a, data.data(), data.size()) != la_ssize_t(data.size())) {
    return w.error("writing the backup entry " + name);
  }
  return {};
}

// SQLite's online backup of `source` into a new encrypted file `target`, both through `vfs`.
// One step copies every page under one read transaction: a consistent snapshot.
Status snapshotDatabase(const fs::path& source, const fs::path& target, const EncryptingVfs& vfs) {
  OpenOptions src;
  src.path = source.string();
  src.vfs = vfs.name();
  src.read_only = true;
  auto from = Database::open(src);
  if (!from.ok()) {
    return from.error();
  }
  OpenOptions dst;
  dst.path = target.string();
  dst.vfs = vfs.name();
  dst.reserve_bytes = kPageReserveBytes;
  auto to = Database::open(dst);
  if (!to.ok()) {
    return to.error();
  }
  auto pages = (*from)->copyTo(**to);
  if (!pages.ok()) {
    return pages.error();
  }
  return (*to)->exec("PRAGMA wal_checkpoint(TRUNCATE)");
}

bool validEntryName(const std::string& name) {
  static const std::regex kBlob("blobs/([0-9a-f]{2})/([0-9a-f]{32})\\.blob");
  std::smatch m;
  if (std::regex_match(name, m, kBlob)) {
    return m[1].str() == m[2].str().substr(0, 2);  // the shard is the id's first two digits
  }
  return name == kManifest || name == kKeystore || name == kDatabase;
}

Status renameInto(const fs::path& from, const fs::path& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return ioError("cannot move into place", to, errno);
  }
  return {};
}

}  // namespace

Result<BackupReport> writeBackup(const fs::path& data_dir, KeyStore& keys,
                                 const fs::path& archive) {
  auto log = core::logger("store");
  if (inside(archive, data_dir)) {
    return makeError(ErrorCode::InvalidArgument,
                     "the backup file must lie outside the data directory " + data_dir.string(),
                     "file");
  }
  std::error_code ec;
  if (fs::exists(archive, ec)) {
    return makeError(ErrorCode::InvalidArgument,
                     archive.string() + " exists already; a backup never overwrites a file",
                     "file");
  }
  if (!fs::exists(data_dir / kDatabase, ec)) {
    return makeError(ErrorCode::FailedPrecondition,
                     "no database in " + data_dir.string() + " to back up");
  }
  auto dir = archive.parent_path().empty() ? fs::path(".") : archive.parent_path();
  // Unique names: two backups to the same FILE at once must not share scratch files (the
  // loser then fails at link(), which never replaces a file).
  const std::string unique = core::CsprngRandom::instance().hex(8);
  auto staging = dir / ("." + archive.filename().string() + "." + unique + ".staging");
  if (!fs::create_directory(staging, ec)) {
    return makeError(ErrorCode::Internal,
                     "cannot create " + staging.string() + ": " + ec.message());
  }
  ::chmod(staging.c_str(), 0700);
  struct Cleanup {
    fs::path p;
    ~Cleanup() {
      std::error_code e;
      fs::remove_all(p, e);
    }
  } cleanup{staging};

  BackupReport report;
  auto vfs = EncryptingVfs::create(keys.databaseKey());
  if (!vfs.ok()) {
    return vfs.error();
  }
  CONFAB_TRY(snapshotDatabase(data_dir / kDatabase, staging / kDatabase, **vfs));
  // The blobs the snapshot refers to; their files are immutable once sealed.
  std::vector<std::string> blobIds;
  {
    OpenOptions o;
    o.path = (staging / kDatabase).string();
    o.vfs = (*vfs)->name();
    o.read_only = true;
    auto snap = Database::open(o);
    if (!snap.ok()) {
      return snap.error();
    }
    auto q = (*snap)->prepare("SELECT id FROM blobs ORDER BY id");
    if (!q.ok()) {
      return q.error();
    }
    for (;;) {
      auto row = q->step();
      if (!row.ok()) {
        return row.error();
      }
      if (!*row) {
        break;
      }
      blobIds.push_back(q->text(0));
    }
  }

  auto partial = dir / ("." + archive.filename().string() + "." + unique + ".partial");
  int fd = ::open(partial.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    return ioError("cannot create", partial, errno);
  }
  ArchiveWriter w;
  json entries = json::object();
  bool written = false;
  auto body = [&]() -> Status {
    if (archive_write_set_format_pax_restricted(w.a) != ARCHIVE_OK ||
        archive_write_open_fd(w.a, fd) != ARCHIVE_OK) {
      return w.error("starting the backup archive");
    }
    auto db = addFile(w, staging / kDatabase, kDatabase);
    if (!db.ok()) {
      return db.error();
    }
    report.database_bytes = db->size;
    entries[kDatabase] = {{"bytes", db->size}, {"sha256", db->sha256}};
    // Read after the snapshot: every key a blob in it needs is in this copy. It must still hold
    // the keys the snapshot was sealed with (a rekey between the two would make the backup
    // unrestorable).
    std::string keystore;
    {
      std::ifstream in(keys.path(), std::ios::binary);
      std::ostringstream text;
      text << in.rdbuf();
      keystore = text.str();
      if (!in) {
        return ioError("cannot read", keys.path(), errno);
      }
    }
    auto ks = json::parse(keystore, nullptr, false);
    if (ks.is_discarded() || !ks.is_object() || !ks.contains("database_key") ||
        !ks["database_key"].is_object() ||
        ks["database_key"].value("id", "") != keys.databaseKeyId() ||
        ks.value("master_key_id", "") != keys.masterKeyId()) {
      return makeError(ErrorCode::FailedPrecondition,
                       "the key store changed while the backup ran (confabd rekey?); run the "
                       "backup again");
    }
    CONFAB_TRY(addBytes(w, kKeystore, keystore));
    entries[kKeystore] = {{"bytes", std::int64_t(keystore.size())},
                          {"sha256", crypto::toHex(crypto::sha256(crypto::asBytes(keystore)))}};
    BlobStore layout(data_dir / "blobs", keys, core::CsprngRandom::instance());
    json vanished = json::array();
    for (const auto& id : blobIds) {
      auto path = layout.pathOf(id);
      auto name = fs::relative(path, data_dir).string();
      auto blob = addFile(w, path, name);
      if (!blob.ok()) {
        if (!fs::exists(path)) {
          report.vanished_blobs.push_back(id);
          vanished.push_back(id);
          log->warn("backup: blob {} was deleted after the snapshot; it is not in the backup", id);
          continue;
        }
        return blob.error();
      }
      ++report.blobs;
      report.blob_bytes += blob->size;
      entries[name] = {{"bytes", blob->size}, {"sha256", blob->sha256}};
    }
    json manifest = {{"format", "confab-backup"},
                     {"version", kFormatVersion},
                     {"confabd", core::kVersion},
                     {"created_at_ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                                           std::chrono::system_clock::now().time_since_epoch())
                                           .count()},
                     {"master_key_id", keys.masterKeyId()},
                     {"database_key_id", keys.databaseKeyId()},
                     {"entries", entries},
                     {"vanished_blobs", vanished}};
    CONFAB_TRY(addBytes(w, kManifest, manifest.dump(2) + "\n"));
    if (archive_write_close(w.a) != ARCHIVE_OK) {
      return w.error("finishing the backup archive");
    }
    if (::fsync(fd) != 0) {
      return ioError("cannot fsync", partial, errno);
    }
    written = true;
    return {};
  };
  Status s = body();
  ::close(fd);
  if (!s.ok() || !written) {
    fs::remove(partial, ec);
    return s.ok() ? makeError(ErrorCode::Internal, "backup incomplete") : s.error();
  }
  // Never replace a file that appeared meanwhile: link() fails if `archive` exists.
  if (::link(partial.c_str(), archive.c_str()) != 0) {
    int err = errno;
    fs::remove(partial, ec);
    return ioError("cannot create", archive, err);
  }
  fs::remove(partial, ec);
  key_files::syncDirectory(dir);
  report.archive_bytes = std::int64_t(fs::file_size(archive, ec));
  return report;
}

Result<RestoreReport> restoreBackup(const fs::path& archive, const fs::path& data_dir,
                                    const crypto::SecretKey& master,
                                    const std::vector<fs::path>& shred_ledgers,
                                    core::Random& random) {
  std::error_code ec;
  fs::create_directories(data_dir, ec);
  if (ec) {
    return makeError(ErrorCode::FailedPrecondition,
                     "cannot create the data directory " + data_dir.string() + ": " + ec.message());
  }
  ::chmod(data_dir.c_str(), 0700);
  auto lock = DataDirLock::take(data_dir);
  if (!lock.ok()) {
    return lock.error();
  }
  // Everything a restore writes or that SQLite would replay into it (a stale WAL) must be absent.
  static const char* const kOurs[] = {kKeystore,       kDatabase,           "confab.db-wal",
                                      "confab.db-shm", "confab.db-journal", "blobs"};
  bool resuming = fs::exists(data_dir / kRestoreMarker, ec);
  if (resuming) {
    // An interrupted restore: start over from the archive.
    for (const char* name : kOurs) {
      fs::remove_all(data_dir / name, ec);
    }
  } else {
    std::string held;
    for (const char* name : kOurs) {
      auto p = data_dir / name;
      bool present = fs::is_directory(p, ec) ? !fs::is_empty(p, ec) : fs::exists(p, ec);
      if (present) {
        held += (held.empty() ? "" : ", ") + std::string(name);
      }
    }
    if (!held.empty()) {
      return makeError(ErrorCode::FailedPrecondition, "data directory " + data_dir.string() +
                                                          " is not empty (it holds " + held +
                                                          "); restore into an empty one");
    }
  }
  // The shred ledgers: every id any of them lists stays destroyed.
  std::set<std::string> ledger;
  for (const auto& path : shred_ledgers) {
    std::ifstream in(path);
    if (!in) {
      return makeError(ErrorCode::FailedPrecondition,
                       "cannot read the shred ledger " + path.string() +
                           ": keep the ledger with the master key, or name the deployment's "
                           "ledger with --shred-ledger");
    }
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) {
        ledger.insert(line);
      }
    }
  }

  auto staging = data_dir / ".restore";
  fs::remove_all(staging, ec);
  fs::create_directories(staging, ec);
  struct Cleanup {
    fs::path p;
    ~Cleanup() {
      std::error_code e;
      fs::remove_all(p, e);
    }
  } cleanup{staging};

  // 1. Extract, hashing every entry; refuse anything that is not ours.
  std::map<std::string, EntryDigest> got;
  std::string manifestText;
  {
    ArchiveReader r;
    archive_read_support_format_tar(r.a);
    if (archive_read_open_filename(r.a, archive.c_str(), kCopyBytes) != ARCHIVE_OK) {
      return makeError(ErrorCode::FailedPrecondition,
                       "cannot read the backup " + archive.string() + ": " +
                           (archive_error_string(r.a) ? archive_error_string(r.a) : "?"));
    }
    archive_entry* e = nullptr;
    std::vector<std::uint8_t> buf(kCopyBytes);
    for (;;) {
      int rc = archive_read_next_header(r.a, &e);
      if (rc == ARCHIVE_EOF) {
        break;
      }
      if (rc != ARCHIVE_OK) {
        return makeError(ErrorCode::FailedPrecondition,
                         archive.string() + " is not a readable Confab backup: " +
                             (archive_error_string(r.a) ? archive_error_string(r.a) : "?"));
      }
      std::string name = archive_entry_pathname(e) ? archive_entry_pathname(e) : "";
      if (!validEntryName(name) || archive_entry_filetype(e) != AE_IFREG || got.count(name)) {
        return makeError(ErrorCode::FailedPrecondition, archive.string() + ": unexpected entry \"" +
                                                            name + "\"; not a Confab backup");
      }
      crypto::Sha256 sha;
      EntryDigest d;
      std::ofstream out;
      if (name != kManifest) {
        auto path = staging / name;
        fs::create_directories(path.parent_path(), ec);
        out.open(path, std::ios::binary | std::ios::trunc);
        if (!out) {
          return ioError("cannot write", path, errno);
        }
      }
      for (;;) {
        la_ssize_t n = archive_read_data(r.a, buf.data(), buf.size());
        if (n < 0) {
          return makeError(ErrorCode::FailedPrecondition,
                           archive.string() + ": entry " + name + " is damaged: " +
                               (archive_error_string(r.a) ? archive_error_string(r.a) : "?"));
        }
        if (n == 0) {
          break;
        }
        sha.update({buf.data(), std::size_t(n)});
        d.size += n;
        if (name == kManifest) {
          if (manifestText.size() + std::size_t(n) > 64 * 1024 * 1024) {
            return makeError(ErrorCode::FailedPrecondition,
                             archive.string() + ": manifest too large");
          }
          manifestText.append(reinterpret_cast<const char*>(buf.data()), std::size_t(n));
        } else {
          out.write(reinterpret_cast<const char*>(buf.data()), n);
        }
      }
      if (out.is_open()) {
        out.flush();
        if (!out) {
          return ioError("cannot write", staging / name, errno);
        }
      }
      d.sha256 = crypto::toHex(sha.finish());
      got[name] = d;
    }
  }
  // 2. Check every entry against the manifest. Its members are checked for type before use: a
  // crafted archive gets an error, not an exception.
  json manifest = json::parse(manifestText, nullptr, false);
  auto badManifest = [&](const std::string& why) {
    return makeError(ErrorCode::FailedPrecondition,
                     archive.string() + ": invalid " + kManifest + " (" + why + ")");
  };
  if (!manifest.is_discarded() && manifest.is_object()) {
    if (!manifest.contains("version") || !manifest["version"].is_number_integer()) {
      return badManifest("version must be an integer");
    }
    if (!manifest.contains("format") || !manifest["format"].is_string()) {
      return badManifest("format must be a string");
    }
    for (const char* id : {"master_key_id", "database_key_id"}) {
      if (!manifest.contains(id) || !manifest[id].is_string()) {
        return badManifest(std::string(id) + " must be a string");
      }
    }
    if (manifest.contains("vanished_blobs") && !manifest["vanished_blobs"].is_array()) {
      return badManifest("vanished_blobs must be an array");
    }
    if (manifest.contains("entries") && manifest["entries"].is_object()) {
      for (const auto& [name, want] : manifest["entries"].items()) {
        if (!want.is_object() || !want.contains("bytes") || !want["bytes"].is_number_integer() ||
            !want.contains("sha256") || !want["sha256"].is_string()) {
          return badManifest("entry " + name + " needs integer bytes and string sha256");
        }
      }
    }
  }
  if (manifest.is_discarded() || !manifest.is_object() ||
      manifest.value("format", "") != "confab-backup" || !manifest.contains("entries") ||
      !manifest["entries"].is_object()) {
    return makeError(ErrorCode::FailedPrecondition,
                     archive.string() + " has no valid " + kManifest + "; not a Confab backup");
  }
  if (manifest.value("version", 0) != kFormatVersion) {
    return makeError(ErrorCode::FailedPrecondition,
                     archive.string() + ": backup format version " +
                         std::to_string(manifest.value("version", 0)) +
                         " is not supported by this confabd");
  }
  const json& entries = manifest["entries"];
  for (const auto& [name, want] : entries.items()) {
    auto it = got.find(name);
    if (it == got.end()) {
      return makeError(ErrorCode::FailedPrecondition,
                       archive.string() + " is damaged: entry " + name + " is missing");
    }
    if (!want.is_object() || want.value("bytes", std::int64_t(-1)) != it->second.size ||
        want.value("sha256", "") != it->second.sha256) {
      return makeError(ErrorCode::FailedPrecondition,
                       archive.string() + " is damaged: entry " + name +
                           " does not match its size and SHA-256 in the manifest");
    }
  }
  for (const auto& [name, d] : got) {
    if (name != kManifest && !entries.contains(name)) {
      return makeError(ErrorCode::FailedPrecondition,
                       archive.string() + ": entry " + name + " is not in the manifest");
    }
  }
  if (!got.count(kKeystore) || !got.count(kDatabase)) {
    return makeError(ErrorCode::FailedPrecondition,
                     archive.string() + " holds no key store or no database");
  }

  // 3. Keys: the master key must open the key store; the shred ledger destroys again what was
  // shredded after the backup was taken.
  RestoreReport report;
  std::set<std::string> destroyed;
  {
    auto keys = KeyStore::open(staging, master, random, false, {});
    if (!keys.ok()) {
      return keys.error();
    }
    if ((*keys)->masterKeyId() != manifest["master_key_id"].get<std::string>() ||
        (*keys)->databaseKeyId() != manifest["database_key_id"].get<std::string>()) {
      return makeError(ErrorCode::FailedPrecondition,
                       archive.string() +
                           " is damaged: its key store does not hold the keys "
                           "its manifest names");
    }
    // Asked only once the master key is known to be right: a wrong key is the error to report.
    if (shred_ledgers.empty()) {
      return makeError(
          ErrorCode::FailedPrecondition,
          "no shred ledger: without it, accounts terminated after this backup was made "
          "would come back. Keep <master key file>.shredded beside the master key, or "
          "give the deployment's ledger with --shred-ledger FILE (--shred-ledger "
          "/dev/null if no account was ever terminated)");
    }
    if (!ledger.empty()) {
      CONFAB_TRY((*keys)->applyShredLedger(ledger));
    }
    auto ids = (*keys)->destroyedIds();
    destroyed.insert(ids.begin(), ids.end());
    auto vfs = EncryptingVfs::create((*keys)->databaseKey());
    if (!vfs.ok()) {
      return vfs.error();
    }
    CONFAB_TRY((*vfs)->checkDatabaseFile((staging / kDatabase).string()));
    OpenOptions o;
    o.path = (staging / kDatabase).string();
    o.vfs = (*vfs)->name();
    o.reserve_bytes = kPageReserveBytes;
    auto db = Database::open(o);
    if (!db.ok()) {
      return db.error();
    }
    if (auto ok = (*db)->checkIntegrity(); !ok.ok()) {
      return makeError(
          ErrorCode::FailedPrecondition,
          archive.string() + ": the database in the backup fails " + ok.error().message);
    }
    BlobStore layout(staging / "blobs", **keys, random);
    auto q = (*db)->prepare("SELECT id, key_id, stored_bytes FROM blobs");
    if (!q.ok()) {
      return q.error();
    }
    std::set<std::string> vanished;
    for (const auto& v : manifest.value("vanished_blobs", json::array())) {
      if (v.is_string()) {
        vanished.insert(v.get<std::string>());
      }
    }
    std::vector<std::string> drop;
    std::set<std::string> shreddedKeys;
    std::int64_t shredded = 0;
    for (;;) {
      auto row = q->step();
      if (!row.ok()) {
        return row.error();
      }
      if (!*row) {
        break;
      }
      auto id = q->text(0);
      auto key = q->text(1);
      bool present = fs::exists(layout.pathOf(id), ec);
      if (destroyed.count(key)) {
        drop.push_back(id);
        shreddedKeys.insert(key);
        ++shredded;
        fs::remove(layout.pathOf(id), ec);
      } else if (!present && vanished.count(id)) {
        drop.push_back(id);  // deleted while the backup ran: its row goes too
      } else if (!present) {
        return makeError(ErrorCode::FailedPrecondition,
                         archive.string() + " is damaged: blob " + id +
                             " is in the database but its file is not in the backup");
      } else {
        ++report.blobs;
        report.blob_bytes += q->int64(2);
      }
    }
    auto del = (*db)->prepare("DELETE FROM blobs WHERE id = ?");
    if (!del.ok()) {
      return del.error();
    }
    CONFAB_TRY((*db)->exec("BEGIN IMMEDIATE"));
    for (const auto& id : drop) {
      del->bind(1, id);
      CONFAB_TRY(del->run());
      del->reset();
    }
    CONFAB_TRY((*db)->exec("COMMIT; PRAGMA wal_checkpoint(TRUNCATE);"));
    report.shredded_blobs = shredded;
    report.shredded_keys.assign(shreddedKeys.begin(), shreddedKeys.end());
    report.database_bytes = got[kDatabase].size;
  }

  // 4. Make the staged files durable, then move them into place under a marker, so that a
  // crash midway is noticed (the daemon refuses to start) and the restore redone.
  if (int fd = ::open(staging.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); fd >= 0) {
    ::syncfs(fd);
    ::close(fd);
  }
  {
    std::ofstream marker(data_dir / kRestoreMarker);
    marker << archive.string() << "\n";
  }
  key_files::syncDirectory(data_dir);
  CONFAB_TRY(renameInto(staging / kDatabase, data_dir / kDatabase));
  if (fs::exists(staging / "blobs", ec)) {
    CONFAB_TRY(renameInto(staging / "blobs", data_dir / "blobs"));
  }
  CONFAB_TRY(renameInto(staging / kKeystore, data_dir / kKeystore));
  key_files::syncDirectory(data_dir);
  fs::remove(data_dir / kRestoreMarker, ec);
  key_files::syncDirectory(data_dir);
  return report;
}

}  // namespace confab::store
