// SPDX-License-Identifier: Apache-2.0
#include <confab/core/log.h>
#include <confab/core/random.h>
#include <confab/store/encrypting_vfs.h>

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <fstream>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace confab::store {

namespace crypto = core::crypto;

namespace {

constexpr std::size_t kP = kPageBytes;
constexpr std::size_t kR = kPageReserveBytes;
constexpr std::size_t kEpochBytes = 12;
constexpr std::size_t kCounterBytes = 4;
constexpr std::size_t kWalHeaderBytes = 32;
constexpr std::size_t kWalFrameHeaderBytes = 24;
constexpr char kInfoLabel[] = "confab page v2";  // 14 bytes, without the terminating zero

// The file kinds bound into every page's nonce and associated data.
enum class Kind : std::uint32_t { Database = 1, Wal = 2, Journal = 3, Temporary = 4, Raw = 0 };

const char* kindName(Kind k) {
  switch (k) {
    case Kind::Database:
      return "database";
    case Kind::Wal:
      return "WAL";
    case Kind::Journal:
      return "journal";
    case Kind::Temporary:
      return "temporary file";
    case Kind::Raw:
      break;
  }
  return "file";
}

std::atomic<int> gNextId{0};

using Epoch = std::array<std::uint8_t, kEpochBytes>;

void putU32(std::uint8_t* p, std::uint32_t v) {
  p[0] = std::uint8_t(v >> 24);
  p[1] = std::uint8_t(v >> 16);
  p[2] = std::uint8_t(v >> 8);
  p[3] = std::uint8_t(v);
}
std::uint32_t getU32(const std::uint8_t* p) {
  return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) |
         p[3];
}
void putU64(std::uint8_t* p, std::uint64_t v) {
  putU32(p, std::uint32_t(v >> 32));
  putU32(p + 4, std::uint32_t(v));
}

bool allZero(const std::uint8_t* p, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    if (p[i]) {
      return false;
    }
  }
  return true;
}

}  // namespace

// Where page writes get their (epoch, counter) pair: one source per database key, shared by every
// file of the VFS, and one per temporary file. An epoch is 12 random bytes naming the subkey
// HKDF-Expand(key, "confab page v2" || epoch); the counter numbers the writes under it, so each
// (subkey, nonce) pair is used once. After 2^32 writes a new epoch begins. Thread-safe.
class NonceSource {
 public:
  struct Next {
    Epoch epoch;
    std::uint32_t counter;
  };
  Next next() {
    std::lock_guard lock(mu_);
    if (used_ == kWritesPerEpoch) {
      core::CsprngRandom::instance().fill(epoch_);
      used_ = 0;
    }
    return {epoch_, std::uint32_t(used_++)};
  }

 private:
  static constexpr std::uint64_t kWritesPerEpoch = std::uint64_t(1) << 32;
  std::mutex mu_;
  Epoch epoch_{};
  std::uint64_t used_ = kWritesPerEpoch;  // the first write starts an epoch
};

// Seals and opens page images: one per open file (not thread-safe, like the file itself). Keeps the
// keyed GCM contexts of the epochs it met, so a page costs one AES-GCM pass and no key schedule
// and no HKDF: pages of one epoch share a subkey.
class PageCipher {
 public:
  // `shared`: the nonce source of the key's other files; null for a key of this file alone.
  PageCipher(crypto::Bytes key, NonceSource* shared)
      : hkdf_(key),
        own_(shared ? nullptr : std::make_unique<NonceSource>()),
        nonces_(shared ? *shared : *own_) {}

  // plain (kP bytes; its last kR bytes are ignored) -> out (kP bytes).
  bool seal(Kind kind, std::uint64_t offset, const std::uint8_t* plain, std::uint8_t* out) {
    auto [epoch, counter] = nonces_.next();
    crypto::Aes256GcmKey* key = keyFor(epoch);
    if (!key) {
      return false;
    }
    std::uint8_t* trailer = out + kP - kR;
    std::memcpy(trailer, epoch.data(), kEpochBytes);
    putU32(trailer + kEpochBytes, counter);
    auto nonce = nonceFor(counter);
    auto aad = aadFor(kind, offset);
    return key->seal(nonce, aad, {plain, kP - kR}, {out, kP - kR},
                     {trailer + kEpochBytes + kCounterBytes, crypto::kTagBytes});
  }

  // image (kP bytes) -> out (kP bytes: plaintext, then kR zero bytes). False when the image does
  // not authenticate; `out` then holds garbage. `out` may be `image` (decrypted in place).
  bool open(Kind kind, std::uint64_t offset, const std::uint8_t* image, std::uint8_t* out) {
    std::array<std::uint8_t, kR> trailer;
    std::memcpy(trailer.data(), image + kP - kR, kR);
    Epoch epoch;
    std::memcpy(epoch.data(), trailer.data(), kEpochBytes);
    crypto::Aes256GcmKey* key = keyFor(epoch);
    if (!key) {
      return false;
    }
    auto nonce = nonceFor(getU32(trailer.data() + kEpochBytes));
    auto aad = aadFor(kind, offset);
    bool ok = key->open(nonce, aad, {image, kP - kR}, {out, kP - kR},
                        {trailer.data() + kEpochBytes + kCounterBytes, crypto::kTagBytes});
    // SQLite sees zeros in the reserved area: new pages start zeroed and SQLite never writes
    // there, so the WAL frame checksums it computes over whole pages stay reproducible when
    // recovery reads the frames back.
    std::memset(out + kP - kR, 0, kR);
    return ok;
  }

 private:
  // At most this many epochs' contexts are kept (a database written by many runs of confabd has
  // pages of many epochs); when full the cache starts over. About 1 KiB each.
  static constexpr std::size_t kCachedEpochs = 64;

  struct EpochHash {
    std::size_t operator()(const Epoch& e) const noexcept {
      std::size_t h;
      std::memcpy(&h, e.data(), sizeof h);  // epochs are random
      return h;
    }
  };

  // nonce = 8 zero bytes || counter (u32 BE).
  static std::array<std::uint8_t, crypto::kNonceBytes> nonceFor(std::uint32_t counter) {
    std::array<std::uint8_t, crypto::kNonceBytes> n{};
    putU32(n.data() + 8, counter);
    return n;
  }

  // The associated data: kind (u32 BE) || offset (u64 BE).
  static std::array<std::uint8_t, 12> aadFor(Kind kind, std::uint64_t offset) {
    std::array<std::uint8_t, 12> a{};
    putU32(a.data(), std::uint32_t(kind));
    putU64(a.data() + 4, offset);
    return a;
  }

  // The keyed context of `epoch`, derived on first use; null on an OpenSSL or memory failure.
  crypto::Aes256GcmKey* keyFor(const Epoch& epoch) noexcept {
    if (last_ && lastEpoch_ == epoch) {
      return last_;
    }
    try {
      auto it = keys_.find(epoch);
      if (it == keys_.end()) {
        std::uint8_t info[sizeof kInfoLabel - 1 + kEpochBytes];
        std::memcpy(info, kInfoLabel, sizeof kInfoLabel - 1);
        std::memcpy(info + sizeof kInfoLabel - 1, epoch.data(), kEpochBytes);
        std::array<std::uint8_t, crypto::kKeyBytes> subkey;
        bool derived = hkdf_.expand({info, sizeof info}, subkey);
        auto key = derived ? crypto::Aes256GcmKey::create(subkey) : nullptr;
        crypto::wipe(subkey.data(), subkey.size());
        if (!key) {
          return nullptr;
        }
        if (keys_.size() >= kCachedEpochs) {
          keys_.clear();
        }
        it = keys_.emplace(epoch, std::move(key)).first;
      }
      last_ = it->second.get();
      lastEpoch_ = epoch;
      return last_;
    } catch (...) {  // bad_alloc: fail this page, never unwind into SQLite
      last_ = nullptr;
      return nullptr;
    }
  }

  crypto::HkdfSha256 hkdf_;
  std::unique_ptr<NonceSource> own_;
  NonceSource& nonces_;
  std::unordered_map<Epoch, std::unique_ptr<crypto::Aes256GcmKey>, EpochHash> keys_;
  crypto::Aes256GcmKey* last_ = nullptr;  // the most recently used entry of keys_
  Epoch lastEpoch_{};
};

struct EncryptingVfs::Impl {
  sqlite3_vfs vfs{};
  sqlite3_vfs* base = nullptr;
  crypto::SecretKey key;
  NonceSource nonces;  // for every file sealed under `key`
  EncryptingVfs* owner = nullptr;
  std::string name;

  void reportCorrupt(Kind kind, const char* path, std::uint64_t offset) {
    owner->corrupt_.fetch_add(1);
    core::logger("store")->error(
        "encrypted {} page at offset {} of {} failed authentication: corrupt or tampered",
        kindName(kind), offset, path ? path : "(temporary)");
  }
};

namespace {

// The sqlite3_file we hand to SQLite; the base VFS's file follows it in the same allocation.
struct CryptFile {
  sqlite3_file base;  // must be first
  EncryptingVfs::Impl* vfs;
  sqlite3_file* real;
  Kind kind;
  const char* path;
  PageCipher* cipher;
  std::uint8_t* buf;      // kP bytes of scratch
  std::uint8_t* buf2;     // kP bytes of scratch
  std::int64_t tempSize;  // logical size of a Temporary file
};

constexpr std::size_t alignUp(std::size_t n) {
  return (n + 15) & ~std::size_t(15);
}

EncryptingVfs::Impl* implOf(sqlite3_vfs* v) {
  return static_cast<EncryptingVfs::Impl*>(v->pAppData);
}
CryptFile* cf(sqlite3_file* f) {
  return reinterpret_cast<CryptFile*>(f);
}

// Temporary files are stored as blocks of kP - kR logical bytes, each sealed into a kP image.
constexpr std::size_t kTempBlock = kP - kR;

// One page image a byte range touches: where the image lives, and which part of it the range
// covers.
struct Region {
  std::uint64_t image;  // offset of the image in the file
  std::size_t from;     // first byte of the image inside the range
  std::size_t len;      // bytes of the image inside the range
  std::size_t at;       // where in the caller's buffer that part begins
};

// Calls fn(Region) for every page image that [offset, offset + amount) touches, and raw(offset,
// length, at) for the bytes in between (WAL headers, frame headers), in file order.
template <typename PageFn, typename RawFn>
int forEachRegion(Kind kind, std::uint64_t offset, std::size_t amount, PageFn fn, RawFn raw) {
  std::uint64_t end = offset + amount;
  std::uint64_t pos = offset;
  while (pos < end) {
    std::uint64_t image = 0;
    bool inPage = false;
    std::uint64_t next = end;  // where the current piece ends
    if (kind == Kind::Database) {
      image = pos / kP * kP;
      inPage = true;
      next = std::min<std::uint64_t>(end, image + kP);
    } else {  // Wal
      if (pos < kWalHeaderBytes) {
        next = std::min<std::uint64_t>(end, kWalHeaderBytes);
      } else {
        std::uint64_t frame = (pos - kWalHeaderBytes) / (kWalFrameHeaderBytes + kP);
        std::uint64_t frameStart = kWalHeaderBytes + frame * (kWalFrameHeaderBytes + kP);
        image = frameStart + kWalFrameHeaderBytes;
        if (pos < image) {
          next = std::min<std::uint64_t>(end, image);
        } else {
          inPage = true;
          next = std::min<std::uint64_t>(end, image + kP);
        }
      }
    }
    std::size_t at = std::size_t(pos - offset);
    int rc = inPage ? fn(Region{image, std::size_t(pos - image), std::size_t(next - pos), at})
                    : raw(pos, std::size_t(next - pos), at);
    if (rc != SQLITE_OK) {
      return rc;
    }
    pos = next;
  }
  return SQLITE_OK;
}

// After a page image of the WAL failed authentication during recovery: true if at least two later
// commit frames of the same WAL generation (their salts match the WAL header's) authenticate.
// With synchronous=FULL every commit is fsynced before the next transaction writes, so at most the
// last transaction can be partly on disk after a crash, its frames in any order (the commit frame
// possibly before the one that tore). A failed frame with two commits after it belonged to a
// transaction that was synced: that is corruption, not a torn write.
bool laterCommitsAuthenticate(CryptFile* f, std::uint64_t image) {
  std::uint8_t header[kWalHeaderBytes];
  sqlite3_int64 size = 0;
  if (f->real->pMethods->xRead(f->real, header, sizeof header, 0) != SQLITE_OK ||
      f->real->pMethods->xFileSize(f->real, &size) != SQLITE_OK) {
    return false;
  }
  std::vector<std::uint8_t> frame(kWalFrameHeaderBytes + kP);
  std::vector<std::uint8_t> plain(kP);
  int commits = 0;
  for (std::uint64_t start = image + kP; start + frame.size() <= std::uint64_t(size);
       start += frame.size()) {
    if (f->real->pMethods->xRead(f->real, frame.data(), int(frame.size()), sqlite3_int64(start)) !=
        SQLITE_OK) {
      return false;
    }
    bool commit = frame[4] | frame[5] | frame[6] | frame[7];
    bool sameGeneration = std::memcmp(frame.data() + 8, header + 16, 8) == 0;
    if (commit && sameGeneration &&
        f->cipher->open(Kind::Wal, start + kWalFrameHeaderBytes,
                        frame.data() + kWalFrameHeaderBytes, plain.data()) &&
        ++commits == 2) {
      return true;
    }
  }
  return false;
}

// Reads one page image into `out` (kP bytes; f->buf when null) and decrypts it there. Returns
// SQLITE_OK, SQLITE_IOERR_SHORT_READ (the image lies wholly past the end of the file: `out` is
// zeroed), or an error.
// `lenient`: a failed image reads as zeros instead of an error (WAL recovery and journal
// playback, where a torn last frame is expected after a crash and SQLite's own checksum then
// rejects it).
// Reading straight into SQLite's buffer and decrypting in place touches one 4 KiB buffer instead
// of two: measurably cheaper per page (docs/benchmarks.md, "Storage").
int readImage(CryptFile* f, std::uint64_t image, bool lenient, std::uint8_t* out = nullptr) {
  if (!out) {
    out = f->buf;
  }
  int rc = f->real->pMethods->xRead(f->real, out, int(kP), sqlite3_int64(image));
  if (rc == SQLITE_IOERR_SHORT_READ) {
    if (allZero(out, kP)) {
      return SQLITE_IOERR_SHORT_READ;  // the base VFS zero-filled it
    }
    if (lenient) {
      std::memset(out, 0, kP);
      return SQLITE_OK;
    }
    f->vfs->reportCorrupt(f->kind, f->path, image);
    return SQLITE_IOERR_DATA;
  }
  if (rc != SQLITE_OK) {
    return rc;
  }
  if (f->kind == Kind::Temporary && allZero(out, kP)) {
    return SQLITE_OK;  // a block SQLite skipped over; the file system left a hole
  }
  if (!f->cipher->open(f->kind, image, out, out)) {
    if (lenient && !(f->kind == Kind::Wal && laterCommitsAuthenticate(f, image))) {
      core::logger("store")->warn(
          "{} page at offset {} of {} does not authenticate; treated as torn by a crash",
          kindName(f->kind), image, f->path ? f->path : "(temporary)");
      std::memset(out, 0, kP);
      return SQLITE_OK;
    }
    f->vfs->reportCorrupt(f->kind, f->path, image);
    return SQLITE_IOERR_DATA;
  }
  return SQLITE_OK;
}

// Seals `plain` (kP bytes; f->buf when null) as the image at `image` and writes it.
int writeImage(CryptFile* f, std::uint64_t image, const std::uint8_t* plain = nullptr) {
  if (!f->cipher->seal(f->kind, image, plain ? plain : f->buf, f->buf2)) {
    return SQLITE_IOERR_WRITE;
  }
  return f->real->pMethods->xWrite(f->real, f->buf2, int(kP), sqlite3_int64(image));
}

// --- page-structured files: database, WAL, journal --------------------------------------------

int pagedRead(CryptFile* f, void* out, int amount, sqlite3_int64 offset) {
  auto* dst = static_cast<std::uint8_t*>(out);
  if (f->kind == Kind::Journal) {
    // Journal records are (page number, page image, checksum); only page images are sealed and
    // SQLite reads and writes them whole, so exactly-one-page transfers are the images.
    if (std::size_t(amount) != kP) {
      return f->real->pMethods->xRead(f->real, out, amount, offset);
    }
    return readImage(f, std::uint64_t(offset), true, dst);
  }
  // A WAL read that spans a frame header and its page is recovery scanning the log.
  bool recovery = f->kind == Kind::Wal && std::size_t(amount) > kP;
  bool shortRead = false;
  int rc = forEachRegion(
      f->kind, std::uint64_t(offset), std::size_t(amount),
      [&](const Region& r) {
        // A whole page (SQLite's usual read) decrypts straight into SQLite's buffer.
        bool whole = r.len == kP;
        int rc = readImage(f, r.image, recovery, whole ? dst + r.at : nullptr);
        if (rc == SQLITE_IOERR_SHORT_READ) {
          shortRead = true;
          rc = SQLITE_OK;
        }
        if (rc == SQLITE_OK && !whole) {
          std::memcpy(dst + r.at, f->buf + r.from, r.len);
        }
        return rc;
      },
      [&](std::uint64_t pos, std::size_t len, std::size_t at) {
        int rc = f->real->pMethods->xRead(f->real, dst + at, int(len), sqlite3_int64(pos));
        if (rc == SQLITE_IOERR_SHORT_READ) {
          shortRead = true;
          rc = SQLITE_OK;
        }
        return rc;
      });
  if (rc == SQLITE_OK && shortRead) {
    return SQLITE_IOERR_SHORT_READ;
  }
  return rc;
}

// Page 1 carries the format's preconditions: 4096-byte pages with 32 reserved bytes each.
bool pageOneAcceptable(const std::uint8_t* page) {
  if (std::memcmp(page, "SQLite format 3", 16) != 0) {
    return true;  // not a header SQLite wrote; nothing to check
  }
  std::uint32_t pageSize = (std::uint32_t(page[16]) << 8) | page[17];
  return pageSize == kP && page[20] == kR;
}

int pagedWrite(CryptFile* f, const void* in, int amount, sqlite3_int64 offset) {
  const auto* src = static_cast<const std::uint8_t*>(in);
  if (f->kind == Kind::Journal) {
    if (std::size_t(amount) != kP) {
      return f->real->pMethods->xWrite(f->real, in, amount, offset);
    }
    return writeImage(f, std::uint64_t(offset), src);
  }
  if (f->kind == Kind::Wal && offset == 0 && amount >= 12) {
    std::uint32_t pageSize = (std::uint32_t(src[8]) << 24) | (std::uint32_t(src[9]) << 16) |
                             (std::uint32_t(src[10]) << 8) | src[11];
    if (pageSize != kP) {
      core::logger("store")->error("refusing a WAL with {}-byte pages: the encrypted store uses {}",
                                   pageSize, kP);
      return SQLITE_IOERR_WRITE;
    }
  }
  return forEachRegion(
      f->kind, std::uint64_t(offset), std::size_t(amount),
      [&](const Region& r) {
        const std::uint8_t* plain = f->buf;
        if (r.len == kP) {
          plain = src + r.at;  // a whole page (SQLite's usual write) is sealed straight from it
        } else {
          // A partial page: read, patch, reseal. SQLite writes whole pages; this is for safety.
          int rc = readImage(f, r.image, false);
          if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ) {
            return rc;
          }
          std::memcpy(f->buf + r.from, src + r.at, r.len);
        }
        if (f->kind == Kind::Database && r.image == 0 && !pageOneAcceptable(plain)) {
          core::logger("store")->error(
              "refusing to write page 1 of {}: the encrypted store needs {}-byte pages with {} "
              "reserved bytes",
              f->path ? f->path : "?", kP, kR);
          return SQLITE_IOERR_WRITE;
        }
        return writeImage(f, r.image, plain);
      },
      [&](std::uint64_t pos, std::size_t len, std::size_t at) {
        return f->real->pMethods->xWrite(f->real, src + at, int(len), sqlite3_int64(pos));
      });
}

// --- temporary files ------------------------------------------------------------------------

int tempRead(CryptFile* f, void* out, int amount, sqlite3_int64 offset) {
  auto* dst = static_cast<std::uint8_t*>(out);
  std::uint64_t pos = std::uint64_t(offset);
  std::uint64_t end = pos + std::size_t(amount);
  while (pos < end) {
    std::uint64_t block = pos / kTempBlock;
    std::size_t from = std::size_t(pos % kTempBlock);
    std::size_t len = std::size_t(std::min<std::uint64_t>(end - pos, kTempBlock - from));
    if (std::int64_t(pos) >= f->tempSize) {
      std::memset(dst + (pos - std::uint64_t(offset)), 0, std::size_t(end - pos));
      return SQLITE_IOERR_SHORT_READ;
    }
    int rc = readImage(f, block * kP, false);
    if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ) {
      return rc;
    }
    std::memcpy(dst + (pos - std::uint64_t(offset)), f->buf + from, len);
    pos += len;
  }
  if (std::int64_t(end) > f->tempSize) {
    std::size_t valid = std::size_t(std::max<std::int64_t>(0, f->tempSize - offset));
    std::memset(dst + valid, 0, std::size_t(amount) - valid);
    return SQLITE_IOERR_SHORT_READ;
  }
  return SQLITE_OK;
}

int tempWrite(CryptFile* f, const void* in, int amount, sqlite3_int64 offset) {
  const auto* src = static_cast<const std::uint8_t*>(in);
  std::uint64_t pos = std::uint64_t(offset);
  std::uint64_t end = pos + std::size_t(amount);
  while (pos < end) {
    std::uint64_t block = pos / kTempBlock;
    std::size_t from = std::size_t(pos % kTempBlock);
    std::size_t len = std::size_t(std::min<std::uint64_t>(end - pos, kTempBlock - from));
    if (len != kTempBlock) {
      if (std::int64_t(block * kTempBlock) < f->tempSize) {
        int rc = readImage(f, block * kP, false);
        if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ) {
          return rc;
        }
      } else {
        std::memset(f->buf, 0, kP);
      }
    }
    std::memcpy(f->buf + from, src + (pos - std::uint64_t(offset)), len);
    int rc = writeImage(f, block * kP);
    if (rc != SQLITE_OK) {
      return rc;
    }
    pos += len;
  }
  f->tempSize = std::max(f->tempSize, std::int64_t(end));
  return SQLITE_OK;
}

// --- sqlite3_io_methods -----------------------------------------------------------------------

int xClose(sqlite3_file* file) {
  CryptFile* f = cf(file);
  int rc = f->real->pMethods ? f->real->pMethods->xClose(f->real) : SQLITE_OK;
  delete f->cipher;
  if (f->buf) {
    crypto::wipe(f->buf, 2 * kP);
  }
  delete[] f->buf;
  f->cipher = nullptr;
  f->buf = f->buf2 = nullptr;
  return rc;
}

int xRead(sqlite3_file* file, void* out, int amount, sqlite3_int64 offset) {
  CryptFile* f = cf(file);
  switch (f->kind) {
    case Kind::Raw:
      return f->real->pMethods->xRead(f->real, out, amount, offset);
    case Kind::Temporary:
      return tempRead(f, out, amount, offset);
    default:
      return pagedRead(f, out, amount, offset);
  }
}

int xWrite(sqlite3_file* file, const void* in, int amount, sqlite3_int64 offset) {
  CryptFile* f = cf(file);
  switch (f->kind) {
    case Kind::Raw:
      return f->real->pMethods->xWrite(f->real, in, amount, offset);
    case Kind::Temporary:
      return tempWrite(f, in, amount, offset);
    default:
      return pagedWrite(f, in, amount, offset);
  }
}

int xTruncate(sqlite3_file* file, sqlite3_int64 size) {
  CryptFile* f = cf(file);
  if (f->kind == Kind::Temporary) {
    std::int64_t blocks = (size + std::int64_t(kTempBlock) - 1) / std::int64_t(kTempBlock);
    f->tempSize = std::min<std::int64_t>(f->tempSize, size);
    return f->real->pMethods->xTruncate(f->real, blocks * std::int64_t(kP));
  }
  return f->real->pMethods->xTruncate(f->real, size);
}

int xSync(sqlite3_file* file, int flags) {
  return cf(file)->real->pMethods->xSync(cf(file)->real, flags);
}

int xFileSize(sqlite3_file* file, sqlite3_int64* size) {
  CryptFile* f = cf(file);
  if (f->kind == Kind::Temporary) {
    *size = f->tempSize;
    return SQLITE_OK;
  }
  return f->real->pMethods->xFileSize(f->real, size);
}

int xLock(sqlite3_file* file, int level) {
  return cf(file)->real->pMethods->xLock(cf(file)->real, level);
}
int xUnlock(sqlite3_file* file, int level) {
  return cf(file)->real->pMethods->xUnlock(cf(file)->real, level);
}
int xCheckReservedLock(sqlite3_file* file, int* out) {
  return cf(file)->real->pMethods->xCheckReservedLock(cf(file)->real, out);
}

int xFileControl(sqlite3_file* file, int op, void* arg) {
  CryptFile* f = cf(file);
  if (op == SQLITE_FCNTL_VFSNAME) {
    int rc = f->real->pMethods->xFileControl(f->real, op, arg);
    if (rc == SQLITE_OK) {
      char** out = static_cast<char**>(arg);
      char* inner = *out;
      *out = sqlite3_mprintf("%s/%z", f->vfs->name.c_str(), inner);
    }
    return rc;
  }
  if (f->kind == Kind::Temporary &&
      (op == SQLITE_FCNTL_SIZE_HINT || op == SQLITE_FCNTL_CHUNK_SIZE)) {
    return SQLITE_OK;  // the physical layout is ours; hints about logical sizes do not apply
  }
  return f->real->pMethods->xFileControl(f->real, op, arg);
}

// 512: journal headers then stay smaller than a page, so a one-page transfer to a journal is
// always a page image.
int xSectorSize(sqlite3_file*) {
  return 512;
}

int xDeviceCharacteristics(sqlite3_file* file) {
  CryptFile* f = cf(file);
  int caps = f->real->pMethods->xDeviceCharacteristics(f->real);
  // Sealed images are rewritten whole, so sub-page atomicity claims of the device do not carry
  // over; powersafe overwrite keeps WAL frames unpadded and unsplit.
  caps &= ~(SQLITE_IOCAP_ATOMIC | SQLITE_IOCAP_ATOMIC512 | SQLITE_IOCAP_ATOMIC1K |
            SQLITE_IOCAP_ATOMIC2K | SQLITE_IOCAP_ATOMIC4K | SQLITE_IOCAP_ATOMIC8K |
            SQLITE_IOCAP_ATOMIC16K | SQLITE_IOCAP_ATOMIC32K | SQLITE_IOCAP_ATOMIC64K |
            SQLITE_IOCAP_BATCH_ATOMIC);
  return caps | SQLITE_IOCAP_POWERSAFE_OVERWRITE;
}

int xShmMap(sqlite3_file* file, int page, int size, int extend, void volatile** out) {
  return cf(file)->real->pMethods->xShmMap(cf(file)->real, page, size, extend, out);
}
int xShmLock(sqlite3_file* file, int offset, int n, int flags) {
  return cf(file)->real->pMethods->xShmLock(cf(file)->real, offset, n, flags);
}
void xShmBarrier(sqlite3_file* file) {
  cf(file)->real->pMethods->xShmBarrier(cf(file)->real);
}
int xShmUnmap(sqlite3_file* file, int deleteFlag) {
  return cf(file)->real->pMethods->xShmUnmap(cf(file)->real, deleteFlag);
}

// Version 2: no xFetch, so SQLite never memory-maps a file and every page passes through xRead.
const sqlite3_io_methods kMethods = {2,
                                     xClose,
                                     xRead,
                                     xWrite,
                                     xTruncate,
                                     xSync,
                                     xFileSize,
                                     xLock,
                                     xUnlock,
                                     xCheckReservedLock,
                                     xFileControl,
                                     xSectorSize,
                                     xDeviceCharacteristics,
                                     xShmMap,
                                     xShmLock,
                                     xShmBarrier,
                                     xShmUnmap,
                                     nullptr,
                                     nullptr};

// --- sqlite3_vfs ------------------------------------------------------------------------------

Kind kindFor(int flags) {
  if (flags & SQLITE_OPEN_MAIN_DB)
    return Kind::Database;
  if (flags & SQLITE_OPEN_WAL)
    return Kind::Wal;
  if (flags & SQLITE_OPEN_MAIN_JOURNAL)
    return Kind::Journal;
  // A super-journal holds only file names, and must stay readable after a crash.
  if (flags & SQLITE_OPEN_SUPER_JOURNAL)
    return Kind::Raw;
  // Temporary databases, sub-journals, sorter spills, transient databases: sealed under a key
  // that dies with the file.
  return Kind::Temporary;
}

int vOpen(sqlite3_vfs* v, const char* name, sqlite3_file* file, int flags, int* outFlags) {
  auto* impl = implOf(v);
  CryptFile* f = cf(file);
  std::memset(f, 0, sizeof(CryptFile));
  f->real =
      reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(file) + alignUp(sizeof(CryptFile)));
  f->vfs = impl;
  f->kind = kindFor(flags);
  f->path = name;
  int rc = impl->base->xOpen(impl->base, name, f->real, flags, outFlags);
  if (rc != SQLITE_OK) {
    return rc;
  }
  if (f->kind == Kind::Database) {
    // Never open a plaintext database through the encrypting VFS.
    char head[16];
    if (f->real->pMethods->xRead(f->real, head, sizeof head, 0) == SQLITE_OK &&
        std::memcmp(head, "SQLite format 3", 16) == 0) {
      core::logger("store")->error("{} is a plaintext SQLite database; refusing to open it",
                                   name ? name : "?");
      f->real->pMethods->xClose(f->real);
      return SQLITE_CANTOPEN;
    }
  }
  try {
    if (f->kind == Kind::Temporary) {
      std::array<std::uint8_t, crypto::kKeyBytes> ephemeral;
      core::CsprngRandom::instance().fill(ephemeral);
      f->cipher = new PageCipher(ephemeral, nullptr);
      crypto::wipe(ephemeral.data(), ephemeral.size());
      sqlite3_int64 phys = 0;
      f->real->pMethods->xFileSize(f->real, &phys);
      f->tempSize = phys / sqlite3_int64(kP) * sqlite3_int64(kTempBlock);
    } else if (f->kind != Kind::Raw) {
      f->cipher = new PageCipher(impl->key.bytes(), &impl->nonces);
    }
    f->buf = new std::uint8_t[2 * kP];
    f->buf2 = f->buf + kP;
  } catch (...) {
    delete f->cipher;
    f->real->pMethods->xClose(f->real);
    return SQLITE_NOMEM;
  }
  f->base.pMethods = &kMethods;
  return SQLITE_OK;
}

int vDelete(sqlite3_vfs* v, const char* name, int syncDir) {
  return implOf(v)->base->xDelete(implOf(v)->base, name, syncDir);
}
int vAccess(sqlite3_vfs* v, const char* name, int flags, int* out) {
  return implOf(v)->base->xAccess(implOf(v)->base, name, flags, out);
}
int vFullPathname(sqlite3_vfs* v, const char* name, int n, char* out) {
  return implOf(v)->base->xFullPathname(implOf(v)->base, name, n, out);
}
void* vDlOpen(sqlite3_vfs* v, const char* name) {
  return implOf(v)->base->xDlOpen(implOf(v)->base, name);
}
void vDlError(sqlite3_vfs* v, int n, char* out) {
  implOf(v)->base->xDlError(implOf(v)->base, n, out);
}
void (*vDlSym(sqlite3_vfs* v, void* h, const char* sym))(void) {
  return implOf(v)->base->xDlSym(implOf(v)->base, h, sym);
}
void vDlClose(sqlite3_vfs* v, void* h) {
  implOf(v)->base->xDlClose(implOf(v)->base, h);
}
int vRandomness(sqlite3_vfs* v, int n, char* out) {
  return implOf(v)->base->xRandomness(implOf(v)->base, n, out);
}
int vSleep(sqlite3_vfs* v, int us) {
  return implOf(v)->base->xSleep(implOf(v)->base, us);
}
int vCurrentTime(sqlite3_vfs* v, double* out) {
  return implOf(v)->base->xCurrentTime(implOf(v)->base, out);
}
int vGetLastError(sqlite3_vfs* v, int n, char* out) {
  return implOf(v)->base->xGetLastError(implOf(v)->base, n, out);
}
int vCurrentTimeInt64(sqlite3_vfs* v, sqlite3_int64* out) {
  auto* base = implOf(v)->base;
  if (base->iVersion >= 2 && base->xCurrentTimeInt64) {
    return base->xCurrentTimeInt64(base, out);
  }
  double d = 0;
  int rc = base->xCurrentTime(base, &d);
  *out = sqlite3_int64(d * 86400000.0);
  return rc;
}

}  // namespace

Result<std::unique_ptr<EncryptingVfs>> EncryptingVfs::create(const crypto::SecretKey& database_key,
                                                             const std::string& base_vfs) {
  sqlite3_initialize();
  sqlite3_vfs* base = sqlite3_vfs_find(base_vfs.empty() ? nullptr : base_vfs.c_str());
  if (!base) {
    return makeError(ErrorCode::Internal, "no SQLite VFS named \"" + base_vfs + "\"");
  }
  std::unique_ptr<EncryptingVfs> self(new EncryptingVfs);
  self->impl_ = std::make_unique<Impl>();
  Impl& impl = *self->impl_;
  impl.base = base;
  impl.key = database_key;
  impl.owner = self.get();
  impl.name = "confab-aes256gcm-" + std::to_string(gNextId.fetch_add(1));
  self->name_ = impl.name;
  sqlite3_vfs& v = impl.vfs;
  v.iVersion = 2;
  v.szOsFile = int(alignUp(sizeof(CryptFile)) + std::size_t(base->szOsFile));
  v.mxPathname = base->mxPathname;
  v.zName = impl.name.c_str();
  v.pAppData = &impl;
  v.xOpen = vOpen;
  v.xDelete = vDelete;
  v.xAccess = vAccess;
  v.xFullPathname = vFullPathname;
  v.xDlOpen = vDlOpen;
  v.xDlError = vDlError;
  v.xDlSym = vDlSym;
  v.xDlClose = vDlClose;
  v.xRandomness = vRandomness;
  v.xSleep = vSleep;
  v.xCurrentTime = vCurrentTime;
  v.xGetLastError = vGetLastError;
  v.xCurrentTimeInt64 = vCurrentTimeInt64;
  if (sqlite3_vfs_register(&v, 0) != SQLITE_OK) {
    return makeError(ErrorCode::Internal, "cannot register the encrypting VFS");
  }
  return self;
}

EncryptingVfs::~EncryptingVfs() {
  if (impl_) {
    sqlite3_vfs_unregister(&impl_->vfs);
  }
}

Status EncryptingVfs::checkDatabaseFile(const std::string& path) const {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return {};  // a new database
  }
  std::vector<std::uint8_t> page(kP);
  in.read(reinterpret_cast<char*>(page.data()), std::streamsize(kP));
  auto got = std::size_t(in.gcount());
  if (got == 0) {
    return {};
  }
  if (got >= 16 && std::memcmp(page.data(), "SQLite format 3", 16) == 0) {
    return makeError(ErrorCode::FailedPrecondition,
                     path + " is a plaintext SQLite database; the store only opens encrypted ones");
  }
  std::vector<std::uint8_t> plain(kP);
  PageCipher cipher(impl_->key.bytes(), &impl_->nonces);
  if (got < kP || !cipher.open(Kind::Database, 0, page.data(), plain.data())) {
    return makeError(ErrorCode::FailedPrecondition,
                     path +
                         ": page 1 failed authentication — the database key in the key store "
                         "does not match this database (wrong key store or master key?), or the "
                         "file is corrupt");
  }
  return {};
}

}  // namespace confab::store
