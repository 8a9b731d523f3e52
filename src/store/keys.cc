// SPDX-License-Identifier: Apache-2.0
#include <confab/store/keys.h>

#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <stdexcept>
#include <sys/file.h>
#include <sys/stat.h>

#include "store/key_files.h"

namespace confab::store {
namespace fs = std::filesystem;
namespace crypto = core::crypto;
using key_files::replaceFile;
using key_files::syncDirectory;
using key_files::systemError;
using key_files::trim;
using key_files::writeAll;
using nlohmann::json;

namespace {

constexpr int kFormatVersion = 1;
constexpr std::string_view kFormatName = "confab key store";
constexpr std::string_view kAadPrefix = "confab key v1";
constexpr std::string_view kPurposeDatabase = "database";
constexpr std::string_view kPurposeData = "data";
constexpr std::string_view kPurposeAuditSigning = "audit-signing";
constexpr std::size_t kKeyIdBytes = 16;  // ids are 32 hex digits
constexpr std::size_t kWrappedBytes = crypto::kKeyBytes + crypto::kTagBytes;

Error storeError(const fs::path& path, const std::string& reason,
                 ErrorCode code = ErrorCode::FailedPrecondition) {
  return makeError(code, "key store " + path.string() + ": " + reason, "keystore");
}

bool isKeyId(const std::string& s) {
  return s.size() == 2 * kKeyIdBytes &&
         s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// Associated data of a wrapped key: "confab key v1" 0x00 purpose 0x00 id [0x00 account id].
// Binding purpose, id and account means a wrapped key moved to another slot no longer opens.
std::string wrapAad(std::string_view purpose, const std::string& id,
                    const std::string& account_id) {
  std::string aad(kAadPrefix);
  aad.push_back('\0');
  aad.append(purpose);
  aad.push_back('\0');
  aad.append(id);
  if (purpose == kPurposeData) {
    aad.push_back('\0');
    aad.append(account_id);
  }
  return aad;
}

std::int64_t nowMillis(core::Clock* clock) {
  return core::toUnixMillis(clock ? clock->now() : core::SystemClock::instance().now());
}

Result<std::set<std::string>> readLedger(const fs::path& path) {
  std::set<std::string> ids;
  if (path.empty()) {
    return ids;
  }
  std::FILE* f = std::fopen(path.c_str(), "re");
  if (!f) {
    if (errno == ENOENT) {
      return ids;
    }
    return makeError(ErrorCode::Internal,
                     "shred ledger " + path.string() + ": cannot read: " + systemError(errno));
  }
  char line[256];
  while (std::fgets(line, sizeof line, f)) {
    auto id = trim(line);
    if (!id.empty()) {
      ids.insert(id);
    }
  }
  bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) {
    return makeError(ErrorCode::Internal, "shred ledger " + path.string() + ": cannot read");
  }
  return ids;
}

// Creates an empty shred ledger (mode 0600, fsynced with its directory) unless one exists, so that
// a ledger exists from the moment a key store does: scripts may copy or move it unconditionally.
Status ensureLedger(const fs::path& path) {
  if (path.empty()) {
    return {};
  }
  auto failed = [&](int err) {
    return makeError(ErrorCode::Internal,
                     "shred ledger " + path.string() + ": cannot create: " + systemError(err));
  };
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    return errno == EEXIST ? Status() : failed(errno);
  }
  if (::fsync(fd) != 0) {
    int err = errno;
    ::close(fd);
    return failed(err);
  }
  if (::close(fd) != 0 || !syncDirectory(path.parent_path())) {
    return failed(errno);
  }
  return {};
}

}  // namespace

namespace {

// Seals entry.key under `master` with a fresh nonce into entry.nonce / entry.wrapped.
template <typename Entry>
void seal(crypto::Aes256Gcm& gcm, const crypto::SecretKey& master, std::string_view purpose,
          Entry& entry, core::Random& random) {
  std::array<std::uint8_t, crypto::kNonceBytes> nonce{};
  random.fill(nonce);
  std::array<std::uint8_t, kWrappedBytes> out{};
  auto aad = wrapAad(purpose, entry.id, entry.account_id);
  if (!gcm.seal(master.bytes(), nonce, crypto::asBytes(aad), entry.key.bytes(),
                std::span(out).first(crypto::kKeyBytes),
                std::span(out).subspan(crypto::kKeyBytes))) {
    throw std::runtime_error("AES-256-GCM failed");  // OpenSSL itself is broken
  }
  entry.nonce = crypto::toBase64(nonce);
  entry.wrapped = crypto::toBase64(out);
}

// Opens entry.wrapped into entry.key; false if it does not authenticate.
template <typename Entry>
bool unseal(crypto::Aes256Gcm& gcm, const crypto::SecretKey& master, std::string_view purpose,
            Entry& entry) {
  auto nonce = crypto::fromBase64(entry.nonce);
  auto wrapped = crypto::fromBase64(entry.wrapped);
  if (!nonce || nonce->size() != crypto::kNonceBytes || !wrapped ||
      wrapped->size() != kWrappedBytes) {
    return false;
  }
  auto in = crypto::asBytes(*wrapped);
  auto aad = wrapAad(purpose, entry.id, entry.account_id);
  bool ok = gcm.open(master.bytes(), crypto::asBytes(*nonce), crypto::asBytes(aad),
                     in.first(crypto::kKeyBytes), entry.key.mutableBytes(),
                     in.subspan(crypto::kKeyBytes));
  if (!ok) {
    entry.key = crypto::SecretKey();
  }
  return ok;
}

const json* member(const json& j, const char* name, json::value_t type) {
  if (!j.is_object()) {
    return nullptr;
  }
  auto it = j.find(name);
  if (it == j.end()) {
    return nullptr;
  }
  bool ok =
      it->type() == type || (type == json::value_t::number_integer && it->is_number_unsigned());
  return ok ? &*it : nullptr;
}

}  // namespace

KeyStore::KeyStore(fs::path path, int lock_fd, core::Random& random, KeyStoreOptions options)
    : path_(std::move(path)), lock_fd_(lock_fd), random_(random), options_(std::move(options)) {}

KeyStore::~KeyStore() {
  if (lock_fd_ >= 0) {
    ::close(lock_fd_);  // releases the flock
  }
}

Result<std::unique_ptr<KeyStore>> KeyStore::open(fs::path data_dir, crypto::SecretKey master,
                                                 core::Random& random, bool create,
                                                 KeyStoreOptions options) {
  const fs::path path = data_dir / "keystore.json";
  std::error_code ec;
  if (!fs::is_directory(data_dir, ec)) {
    return storeError(path, "not found (no data directory " + data_dir.string() + ")");
  }
  if (options.read_only) {
    std::unique_ptr<KeyStore> reader(new KeyStore(path, -1, random, std::move(options)));
    auto ledger = readLedger(reader->options_.shred_ledger);
    if (!ledger.ok()) {
      return ledger.error();
    }
    reader->ledger_ = std::move(*ledger);
    if (!fs::exists(path, ec)) {
      return storeError(path, "not found");
    }
    CONFAB_TRY(reader->load(master));
    for (auto it = reader->state_.data.begin(); it != reader->state_.data.end();) {
      it = reader->ledger_.count(it->first) ? reader->state_.data.erase(it) : std::next(it);
    }
    return reader;
  }
  const fs::path lock_path = data_dir / "keystore.lock";
  int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (lock_fd < 0) {
    return storeError(path, "cannot open " + lock_path.string() + ": " + systemError(errno),
                      ErrorCode::Internal);
  }
  if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    ::close(lock_fd);
    if (err == EWOULDBLOCK) {
      return storeError(path, "in use by another process (stop confabd first)",
                        ErrorCode::Unavailable);
    }
    return storeError(path, "cannot lock " + lock_path.string() + ": " + systemError(err),
                      ErrorCode::Internal);
  }
  std::unique_ptr<KeyStore> store(new KeyStore(path, lock_fd, random, std::move(options)));

  auto ledger = readLedger(store->options_.shred_ledger);
  if (!ledger.ok()) {
    return ledger.error();
  }
  store->ledger_ = std::move(*ledger);

  if (!fs::exists(path, ec)) {
    if (!create) {
      return storeError(path, "not found");
    }
    CONFAB_TRY(ensureLedger(store->options_.shred_ledger));
    State fresh;
    fresh.master = master;
    fresh.database = store->newKey(master, std::string(kPurposeDatabase), {});
    CONFAB_TRY(store->save(fresh));
    store->state_ = std::move(fresh);
    return store;
  }
  CONFAB_TRY(store->load(master));
  CONFAB_TRY(ensureLedger(store->options_.shred_ledger));

  // Keys listed in the ledger but still wrapped here come from an older copy of the data
  // directory: destroy them again before anyone can read with them.
  std::set<std::string> resurrected;
  for (const auto& [id, entry] : store->state_.data) {
    if (store->ledger_.count(id)) {
      resurrected.insert(id);
    }
  }
  if (!resurrected.empty()) {
    std::lock_guard lock(store->mu_);
    CONFAB_TRY(store->shred(resurrected, nowMillis(store->options_.clock), false));
  }
  return store;
}

Status KeyStore::load(const crypto::SecretKey& master) {
  std::FILE* f = std::fopen(path_.c_str(), "re");
  if (!f) {
    return storeError(path_, "cannot read: " + systemError(errno));
  }
  std::string text;
  char buf[8192];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
    text.append(buf, n);
  }
  bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) {
    return storeError(path_, "cannot read");
  }
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return storeError(path_, "not a valid key store (not a JSON object)");
  }
  auto invalid = [&](const std::string& field) {
    return storeError(path_, "missing or invalid \"" + field + "\"");
  };
  const json* format = member(j, "format", json::value_t::string);
  const json* version = member(j, "version", json::value_t::number_integer);
  if (!format || format->get<std::string>() != kFormatName) {
    return invalid("format");
  }
  if (!version) {
    return invalid("version");
  }
  if (version->get<std::int64_t>() != kFormatVersion) {
    return storeError(path_, "format version " + std::to_string(version->get<std::int64_t>()) +
                                 " is not supported (written by a newer confabd?)");
  }
  const json* master_id = member(j, "master_key_id", json::value_t::string);
  if (!master_id) {
    return invalid("master_key_id");
  }
  const std::string ours = store::masterKeyId(master);
  if (master_id->get<std::string>() != ours) {
    return makeError(ErrorCode::FailedPrecondition,
                     "the master key does not match the key store " + path_.string() + " (key id " +
                         ours + ", store expects " + master_id->get<std::string>() +
                         "): wrong key file?",
                     "master_key_file");
  }

  crypto::Aes256Gcm gcm;
  State state;
  state.master = master;
  auto readEntry = [&](const json& e, const std::string& where, std::string_view purpose,
                       Wrapped& out) -> Status {
    const json* id = member(e, "id", json::value_t::string);
    const json* nonce = member(e, "nonce", json::value_t::string);
    const json* wrapped = member(e, "wrapped", json::value_t::string);
    if (!id || !isKeyId(id->get<std::string>())) {
      return invalid(where + ".id");
    }
    if (!nonce) {
      return invalid(where + ".nonce");
    }
    if (!wrapped) {
      return invalid(where + ".wrapped");
    }
    out.id = id->get<std::string>();
    out.nonce = nonce->get<std::string>();
    out.wrapped = wrapped->get<std::string>();
    if (purpose == kPurposeData) {
      const json* account = member(e, "account_id", json::value_t::string);
      const json* created = member(e, "created_at", json::value_t::number_integer);
      if (!account || account->get<std::string>().empty()) {
        return invalid(where + ".account_id");
      }
      if (!created) {
        return invalid(where + ".created_at");
      }
      out.account_id = account->get<std::string>();
      out.created_at = created->get<std::int64_t>();
    }
    if (!unseal(gcm, master, purpose, out)) {
      return storeError(path_, "entry " + out.id + " failed authentication (corrupt or tampered)");
    }
    return {};
  };

  const json* database = member(j, "database_key", json::value_t::object);
  if (!database) {
    return invalid("database_key");
  }
  CONFAB_TRY(readEntry(*database, "database_key", kPurposeDatabase, state.database));
  if (j.contains("pending_database_key")) {
    const json* pending = member(j, "pending_database_key", json::value_t::object);
    if (!pending) {
      return invalid("pending_database_key");
    }
    state.pending.emplace();
    CONFAB_TRY(readEntry(*pending, "pending_database_key", kPurposeDatabase, *state.pending));
  }
  if (j.contains("audit_signing_key")) {
    const json* signing = member(j, "audit_signing_key", json::value_t::object);
    if (!signing) {
      return invalid("audit_signing_key");
    }
    state.audit_signing.emplace();
    CONFAB_TRY(
        readEntry(*signing, "audit_signing_key", kPurposeAuditSigning, *state.audit_signing));
  }
  const json* data = member(j, "data_keys", json::value_t::array);
  if (!data) {
    return invalid("data_keys");
  }
  for (std::size_t i = 0; i < data->size(); ++i) {
    Wrapped w;
    CONFAB_TRY(readEntry((*data)[i], "data_keys[" + std::to_string(i) + "]", kPurposeData, w));
    std::string id = w.id;
    state.data.emplace(std::move(id), std::move(w));
  }
  const json* destroyed = member(j, "destroyed", json::value_t::array);
  if (!destroyed) {
    return invalid("destroyed");
  }
  for (std::size_t i = 0; i < destroyed->size(); ++i) {
    const json& e = (*destroyed)[i];
    const std::string where = "destroyed[" + std::to_string(i) + "]";
    const json* id = member(e, "id", json::value_t::string);
    const json* account = member(e, "account_id", json::value_t::string);
    const json* at = member(e, "destroyed_at", json::value_t::number_integer);
    if (!id || !account || !at) {
      return invalid(where);
    }
    state.destroyed.push_back(
        {id->get<std::string>(), account->get<std::string>(), at->get<std::int64_t>()});
  }
  std::lock_guard lock(mu_);
  state_ = std::move(state);
  return {};
}

Error KeyStore::readOnlyError() const {
  return storeError(path_, "opened read-only; no key can be created or changed here");
}

Status KeyStore::save(const State& state) {
  if (options_.read_only) {
    return readOnlyError();
  }
  auto entry = [](const Wrapped& w, bool data) {
    json e = json::object();
    e["id"] = w.id;
    if (data) {
      e["account_id"] = w.account_id;
      e["created_at"] = w.created_at;
    }
    e["nonce"] = w.nonce;
    e["wrapped"] = w.wrapped;
    return e;
  };
  json j = json::object();
  j["format"] = kFormatName;
  j["version"] = kFormatVersion;
  j["master_key_id"] = store::masterKeyId(state.master);
  j["database_key"] = entry(state.database, false);
  if (state.pending) {
    j["pending_database_key"] = entry(*state.pending, false);
  }
  if (state.audit_signing) {
    j["audit_signing_key"] = entry(*state.audit_signing, false);
  }
  json data = json::array();
  for (const auto& [id, w] : state.data) {
    data.push_back(entry(w, true));
  }
  j["data_keys"] = std::move(data);
  json destroyed = json::array();
  for (const auto& d : state.destroyed) {
    destroyed.push_back(
        {{"id", d.id}, {"account_id", d.account_id}, {"destroyed_at", d.destroyed_at}});
  }
  j["destroyed"] = std::move(destroyed);
  if (auto failure = replaceFile(path_, j.dump(2) + "\n"); !failure.empty()) {
    return storeError(path_, failure, ErrorCode::Internal);
  }
  return {};
}

KeyStore::Wrapped KeyStore::newKey(const crypto::SecretKey& master, const std::string& purpose,
                                   const std::string& account_id) {
  Wrapped w;
  do {
    w.id = random_.hex(kKeyIdBytes);
  } while (idInUse(w.id));
  w.account_id = account_id;
  w.created_at = nowMillis(options_.clock);
  random_.fill(w.key.mutableBytes());
  crypto::Aes256Gcm gcm;
  seal(gcm, master, purpose, w, random_);
  return w;
}

bool KeyStore::idInUse(const std::string& id) const {
  if (state_.database.id == id || (state_.pending && state_.pending->id == id) ||
      (state_.audit_signing && state_.audit_signing->id == id) || state_.data.count(id) ||
      ledger_.count(id)) {
    return true;
  }
  return std::any_of(state_.destroyed.begin(), state_.destroyed.end(),
                     [&](const Destroyed& d) { return d.id == id; });
}

std::string KeyStore::masterKeyId() const {
  std::lock_guard lock(mu_);
  return store::masterKeyId(state_.master);
}

const crypto::SecretKey& KeyStore::databaseKey() const {
  std::lock_guard lock(mu_);
  return state_.database.key;
}

std::string KeyStore::databaseKeyId() const {
  std::lock_guard lock(mu_);
  return state_.database.id;
}

std::size_t KeyStore::dataKeyCount() const {
  std::lock_guard lock(mu_);
  return state_.data.size();
}

Result<DataKey> KeyStore::keyForWriting(const std::string& account_id) {
  if (account_id.empty()) {
    return makeError(ErrorCode::InvalidArgument, "a data key needs an account id", "account_id");
  }
  std::lock_guard lock(mu_);
  const Wrapped* current = nullptr;
  for (const auto& [id, w] : state_.data) {
    if (w.account_id == account_id && (!current || w.created_at > current->created_at)) {
      current = &w;
    }
  }
  if (current) {
    return DataKey{current->id, current->key};
  }
  State next = state_;
  Wrapped w = newKey(state_.master, std::string(kPurposeData), account_id);
  DataKey result{w.id, w.key};
  std::string id = w.id;
  next.data.emplace(std::move(id), std::move(w));
  CONFAB_TRY(save(next));
  state_ = std::move(next);
  return result;
}

Result<DataKey> KeyStore::keyById(const std::string& key_id) {
  std::lock_guard lock(mu_);
  if (auto it = state_.data.find(key_id); it != state_.data.end()) {
    return DataKey{it->second.id, it->second.key};
  }
  bool destroyed =
      ledger_.count(key_id) > 0 || std::any_of(state_.destroyed.begin(), state_.destroyed.end(),
                                               [&](const Destroyed& d) { return d.id == key_id; });
  return makeError(ErrorCode::NotFound, destroyed ? "data key " + key_id + " was destroyed"
                                                  : "unknown data key " + key_id);
}

// Appends the ids not in `recorded` (the ledger's content) to the ledger at `path`, fsynced.
Status KeyStore::appendToLedger(const fs::path& path, const std::vector<std::string>& ids,
                                std::set<std::string>& recorded) {
  std::string lines;
  for (const auto& id : ids) {
    if (!recorded.count(id)) {
      lines += id + "\n";
    }
  }
  if (path.empty() || lines.empty()) {
    return {};
  }
  auto failed = [&](int err) {
    return makeError(ErrorCode::Internal,
                     "shred ledger " + path.string() + ": cannot append: " + systemError(err));
  };
  std::error_code ec;
  bool existed = fs::exists(path, ec);
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return failed(errno);
  }
  // A crash in an earlier append may have left a line without its newline: never extend it.
  struct stat st {};
  if (::fstat(fd, &st) == 0 && st.st_size > 0) {
    char last = '\n';
    int rfd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (rfd >= 0) {
      if (::pread(rfd, &last, 1, st.st_size - 1) != 1) {
        last = '\n';
      }
      ::close(rfd);
    }
    if (last != '\n') {
      lines.insert(lines.begin(), '\n');
    }
  }
  bool ok = writeAll(fd, lines) && ::fsync(fd) == 0;
  int err = errno;
  ok = ::close(fd) == 0 && ok;
  if (!ok) {
    return failed(err);
  }
  if (!existed && !syncDirectory(path.parent_path())) {
    return failed(errno);
  }
  recorded.insert(ids.begin(), ids.end());
  return {};
}

// Caller holds mu_.
Status KeyStore::shred(const std::set<std::string>& ids, std::int64_t now_ms, bool record_unknown) {
  State next = state_;
  bool changed = false;
  for (const auto& id : ids) {
    auto it = next.data.find(id);
    if (it != next.data.end()) {
      next.destroyed.push_back({id, it->second.account_id, now_ms});
      next.data.erase(it);
      changed = true;
    } else if (record_unknown && std::none_of(next.destroyed.begin(), next.destroyed.end(),
                                              [&](const Destroyed& d) { return d.id == id; })) {
      next.destroyed.push_back({id, std::string(), now_ms});
      changed = true;
    }
  }
  if (!changed) {
    return {};
  }
  CONFAB_TRY(save(next));
  state_ = std::move(next);
  return {};
}

Status KeyStore::destroyAccountKeys(const std::string& account_id,
                                    std::chrono::system_clock::time_point now) {
  if (options_.read_only) {
    return readOnlyError();  // before the ledger is touched
  }
  std::lock_guard lock(mu_);
  std::vector<std::string> ids;
  for (const auto& [id, w] : state_.data) {
    if (w.account_id == account_id) {
      ids.push_back(id);
    }
  }
  if (ids.empty()) {
    return {};
  }
  // Ledger first: if the key store write then fails, the next open destroys the keys anyway.
  CONFAB_TRY(appendToLedger(options_.shred_ledger, ids, ledger_));
  return shred(std::set<std::string>(ids.begin(), ids.end()), core::toUnixMillis(now), false);
}

std::vector<std::string> KeyStore::destroyedIds() const {
  std::lock_guard lock(mu_);
  std::set<std::string> all = ledger_;
  for (const auto& d : state_.destroyed) {
    all.insert(d.id);
  }
  return {all.begin(), all.end()};
}

Status KeyStore::applyShredLedger(const std::set<std::string>& ids) {
  if (options_.read_only) {
    return readOnlyError();
  }
  std::lock_guard lock(mu_);
  CONFAB_TRY(appendToLedger(options_.shred_ledger, std::vector<std::string>(ids.begin(), ids.end()),
                            ledger_));
  return shred(ids, nowMillis(options_.clock), true);
}

Status KeyStore::rewrap(const crypto::SecretKey& new_master, const fs::path& new_shred_ledger) {
  if (options_.read_only) {
    return readOnlyError();
  }
  std::lock_guard lock(mu_);
  std::set<std::string> new_ledger;
  if (!new_shred_ledger.empty() && new_shred_ledger != options_.shred_ledger) {
    CONFAB_TRY(ensureLedger(new_shred_ledger));
    auto existing = readLedger(new_shred_ledger);
    if (!existing.ok()) {
      return existing.error();
    }
    new_ledger = std::move(*existing);
    std::set<std::string> all = ledger_;
    for (const auto& d : state_.destroyed) {
      all.insert(d.id);
    }
    CONFAB_TRY(appendToLedger(new_shred_ledger, std::vector<std::string>(all.begin(), all.end()),
                              new_ledger));
  }
  State next = state_;
  next.master = new_master;
  crypto::Aes256Gcm gcm;
  seal(gcm, new_master, kPurposeDatabase, next.database, random_);
  if (next.pending) {
    seal(gcm, new_master, kPurposeDatabase, *next.pending, random_);
  }
  if (next.audit_signing) {
    seal(gcm, new_master, kPurposeAuditSigning, *next.audit_signing, random_);
  }
  for (auto& [id, w] : next.data) {
    seal(gcm, new_master, kPurposeData, w, random_);
  }
  CONFAB_TRY(save(next));
  state_ = std::move(next);
  if (!new_shred_ledger.empty() && new_shred_ledger != options_.shred_ledger) {
    options_.shred_ledger = new_shred_ledger;
    ledger_ = std::move(new_ledger);
  }
  return {};
}

Result<crypto::SecretKey> KeyStore::stageDatabaseKey() {
  std::lock_guard lock(mu_);
  if (state_.pending) {
    return makeError(ErrorCode::FailedPrecondition,
                     "key store " + path_.string() + ": a new database key (" + state_.pending->id +
                         ") is pending already: an interrupted rekey --database?");
  }
  State next = state_;
  next.pending = newKey(state_.master, std::string(kPurposeDatabase), {});
  crypto::SecretKey key = next.pending->key;
  CONFAB_TRY(save(next));
  state_ = std::move(next);
  return key;
}

Status KeyStore::commitDatabaseKey() {
  std::lock_guard lock(mu_);
  if (!state_.pending) {
    return makeError(ErrorCode::FailedPrecondition,
                     "key store " + path_.string() + ": no database key is pending");
  }
  State next = state_;
  next.database = *next.pending;
  next.pending.reset();
  CONFAB_TRY(save(next));
  state_ = std::move(next);
  return {};
}

Status KeyStore::dropPendingDatabaseKey() {
  std::lock_guard lock(mu_);
  if (!state_.pending) {
    return {};
  }
  State next = state_;
  next.pending.reset();
  CONFAB_TRY(save(next));
  state_ = std::move(next);
  return {};
}

std::optional<crypto::SecretKey> KeyStore::pendingDatabaseKey() const {
  std::lock_guard lock(mu_);
  if (!state_.pending) {
    return std::nullopt;
  }
  return state_.pending->key;
}

std::optional<std::string> KeyStore::pendingDatabaseKeyId() const {
  std::lock_guard lock(mu_);
  if (!state_.pending) {
    return std::nullopt;
  }
  return state_.pending->id;
}

Result<KeyStore::SigningSeed> KeyStore::auditSigningKey() {
  std::lock_guard lock(mu_);
  if (!state_.audit_signing) {
    if (options_.read_only) {
      return readOnlyError();
    }
    State next = state_;
    next.audit_signing = newKey(state_.master, std::string(kPurposeAuditSigning), {});
    CONFAB_TRY(save(next));
    state_ = std::move(next);
  }
  return SigningSeed{state_.audit_signing->id, state_.audit_signing->key};
}

}  // namespace confab::store
