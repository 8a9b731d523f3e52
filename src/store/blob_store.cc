// SPDX-License-Identifier: Apache-2.0
#include <confab/store/blob_store.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <sys/stat.h>
#include <system_error>
#include <utility>
#include <vector>

namespace confab::store {
namespace {

namespace fs = std::filesystem;
namespace crypto = core::crypto;

// File format v1 (docs/storage-format.md, "Blob files"):
//   header: magic "CFBLOB\0" | version 1 | chunk size u32 BE | data key id (16) | salt (32) |
//           blob id (16)                                                   = 76 bytes
//   chunk i at kHeaderBytes + i * (12 + chunk size + 16): nonce | ciphertext | tag
constexpr std::array<std::uint8_t, 7> kMagic = {'C', 'F', 'B', 'L', 'O', 'B', 0};
constexpr std::uint8_t kVersion = 1;
constexpr std::size_t kOffVersion = 7;
constexpr std::size_t kOffChunkBytes = 8;
constexpr std::size_t kOffKeyId = 12;
constexpr std::size_t kOffSalt = 28;
constexpr std::size_t kOffBlobId = 60;
constexpr std::size_t kIdBytes = 16;
constexpr std::size_t kSaltBytes = 32;
constexpr std::size_t kHeaderBytes = kOffBlobId + kIdBytes;
constexpr std::size_t kChunkOverhead = crypto::kNonceBytes + crypto::kTagBytes;
constexpr std::size_t kAadBytes = kHeaderBytes + 8 + 1;
constexpr std::string_view kKeyInfo = "confab blob v1";

using Header = std::array<std::uint8_t, kHeaderBytes>;

void putU32(std::uint8_t* p, std::uint32_t v) {
  for (int i = 3; i >= 0; --i) {
    p[i] = static_cast<std::uint8_t>(v);
    v >>= 8;
  }
}

void putU64(std::uint8_t* p, std::uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    p[i] = static_cast<std::uint8_t>(v);
    v >>= 8;
  }
}

std::uint32_t getU32(const std::uint8_t* p) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) {
    v = (v << 8) | p[i];
  }
  return v;
}

std::uint64_t getU64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) {
    v = (v << 8) | p[i];
  }
  return v;
}

bool isBlobId(std::string_view id) {
  return id.size() == 2 * kIdBytes && std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

std::string errnoText(int err) {
  return std::error_code(err, std::system_category()).message();
}

Error ioError(const std::string& what, const fs::path& path, int err) {
  return makeError(ErrorCode::Internal, what + " " + path.string() + ": " + errnoText(err));
}

Error blobError(ErrorCode code, const std::string& id, const std::string& what) {
  return makeError(code, "blob " + id + ": " + what);
}

Error authError(const std::string& id, std::uint64_t chunk) {
  return blobError(
      ErrorCode::Internal, id,
      "chunk " + std::to_string(chunk) + " failed authentication (corrupt or tampered)");
}

// An owned file descriptor.
class File {
 public:
  File() = default;
  explicit File(int fd) : fd_(fd) {}
  File(File&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  File& operator=(File&& other) noexcept {
    if (this != &other) {
      close();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  ~File() { close(); }
  int fd() const { return fd_; }
  // 0 or the errno of a failed close.
  int close() {
    int err = 0;
    if (fd_ >= 0 && ::close(fd_) != 0) {
      err = errno;
    }
    fd_ = -1;
    return err;
  }

 private:
  int fd_ = -1;
};

// 0 or errno.
int writeAt(int fd, const std::uint8_t* p, std::size_t n, std::uint64_t offset) {
  while (n > 0) {
    ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(offset));
    if (w < 0) {
      if (errno == EINTR) {
        continue;
      }
      return errno;
    }
    p += w;
    n -= static_cast<std::size_t>(w);
    offset += static_cast<std::uint64_t>(w);
  }
  return 0;
}

// Bytes read (short only at the end of the file), or -errno.
ssize_t readAt(int fd, std::uint8_t* p, std::size_t n, std::uint64_t offset) {
  std::size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd, p + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) {
        continue;
      }
      return -errno;
    }
    if (r == 0) {
      break;
    }
    done += static_cast<std::size_t>(r);
  }
  return static_cast<ssize_t>(done);
}

// 0 or errno. A rename or a new file is durable only once its directory is synced.
int syncDirectory(const fs::path& dir) {
  File d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (d.fd() < 0) {
    return errno;
  }
  if (::fsync(d.fd()) != 0) {
    return errno;
  }
  return d.close();
}

// Blob key = HKDF-Expand(PRK = data key, info = "confab blob v1" || salt || blob id, 32).
bool deriveBlobKey(const crypto::SecretKey& data_key, const Header& header,
                   crypto::SecretKey& out) {
  std::array<std::uint8_t, kKeyInfo.size() + kSaltBytes + kIdBytes> info{};
  std::memcpy(info.data(), kKeyInfo.data(), kKeyInfo.size());
  std::memcpy(info.data() + kKeyInfo.size(), header.data() + kOffSalt, kSaltBytes);
  std::memcpy(info.data() + kKeyInfo.size() + kSaltBytes, header.data() + kOffBlobId, kIdBytes);
  crypto::HkdfSha256 hkdf(data_key.bytes());
  return hkdf.expand(info, out.mutableBytes());
}

// Associated data of one chunk: the whole header, the chunk's index and whether it is the last.
// Binding the header authenticates it with every chunk; the index and the flag make reordering,
// truncation and appending fail to authenticate.
class ChunkAad {
 public:
  explicit ChunkAad(const Header& header) {
    std::memcpy(bytes_.data(), header.data(), kHeaderBytes);
  }
  crypto::Bytes at(std::uint64_t index, bool last) {
    putU64(bytes_.data() + kHeaderBytes, index);
    bytes_[kHeaderBytes + 8] = last ? 1 : 0;
    return bytes_;
  }

 private:
  std::array<std::uint8_t, kAadBytes> bytes_{};
};

// Nonce: chunk index u64 BE || generation u32 BE. The blob key is unique per file (random salt,
// random id) and a chunk's generation grows with each sealing of that chunk, so no (key, nonce)
// pair is ever used twice (NIST SP 800-38D §8.2.1).
void putNonce(std::uint8_t* p, std::uint64_t index, std::uint32_t generation) {
  putU64(p, index);
  putU32(p + 8, generation);
}

class FileBlobWriter final : public BlobWriter {
 public:
  FileBlobWriter(BlobInfo info, fs::path dir, File file, const Header& header,
                 const crypto::SecretKey& key, std::uint32_t chunk_bytes, std::uint64_t max_bytes)
      : info_(std::move(info)),
        dir_(std::move(dir)),
        partial_(dir_ / "tmp" / (info_.id + ".partial")),
        file_(std::move(file)),
        aad_(header),
        key_(key),
        chunk_bytes_(chunk_bytes),
        record_bytes_(chunk_bytes + kChunkOverhead),
        max_bytes_(max_bytes),
        record_(record_bytes_) {}

  ~FileBlobWriter() override {
    if (state_ == State::Open) {
      abort();
    }
    crypto::wipe(record_.data(), record_.size());
    crypto::wipe(scratch_.data(), scratch_.size());
  }

  const std::string& id() const override { return info_.id; }
  std::uint64_t size() const override { return written_; }

  Status write(crypto::Bytes data) override {
    CONFAB_TRY(checkOpen());
    if (data.size() > max_bytes_ - written_) {
      abort();
      return makeError(ErrorCode::ResourceExhausted,
                       "the file exceeds the limit of " + std::to_string(max_bytes_) + " bytes",
                       "size");
    }
    while (!data.empty()) {
      // A full buffer is sealed only once more data arrives: the chunk that turns out to be the
      // last must be sealed with the last flag, at seal().
      if (buffered_ == chunk_bytes_) {
        if (auto s = sealBuffer(false); !s.ok()) {
          return fail(s.error());
        }
      }
      std::size_t n = std::min<std::size_t>(chunk_bytes_ - buffered_, data.size());
      std::memcpy(plain() + buffered_, data.data(), n);
      buffered_ += n;
      written_ += n;
      data = data.subspan(n);
    }
    return {};
  }

  Status rewrite(std::uint64_t offset, crypto::Bytes data) override {
    CONFAB_TRY(checkOpen());
    if (offset > written_ || data.size() > written_ - offset) {
      return makeError(
          ErrorCode::InvalidArgument,
          "a rewrite must stay within the " + std::to_string(written_) + " bytes written",
          "offset");
    }
    while (!data.empty()) {
      std::uint64_t chunk = offset / chunk_bytes_;
      std::size_t within = static_cast<std::size_t>(offset % chunk_bytes_);
      std::size_t n = std::min<std::size_t>(chunk_bytes_ - within, data.size());
      if (chunk == sealed_chunks_) {
        // Still plaintext in memory, never sealed: patching it needs no new generation.
        std::memcpy(plain() + within, data.data(), n);
      } else if (auto s = patchSealedChunk(chunk, within, data.first(n)); !s.ok()) {
        return fail(s.error());
      }
      offset += n;
      data = data.subspan(n);
    }
    return {};
  }

  Result<BlobInfo> seal() override {
    CONFAB_TRY(checkOpen());
    if (auto s = sealBuffer(true); !s.ok()) {
      return fail(s.error());
    }
    if (::fsync(file_.fd()) != 0) {
      return fail(ioError("fsync", partial_, errno));
    }
    struct stat st {};
    if (::fstat(file_.fd(), &st) != 0) {
      return fail(ioError("stat", partial_, errno));
    }
    if (int err = file_.close(); err != 0) {
      return fail(ioError("close", partial_, err));
    }
    const fs::path shard = dir_ / info_.id.substr(0, 2);
    const fs::path target = shard / (info_.id + ".blob");
    std::error_code ec;
    bool created = fs::create_directory(shard, ec);
    if (ec) {
      return fail(
          makeError(ErrorCode::Internal, "cannot create " + shard.string() + ": " + ec.message()));
    }
    if (created) {
      if (int err = syncDirectory(dir_); err != 0) {
        return fail(ioError("fsync", dir_, err));
      }
    }
    if (::rename(partial_.c_str(), target.c_str()) != 0) {
      return fail(ioError("rename to", target, errno));
    }
    state_ = State::Sealed;
    if (int err = syncDirectory(shard); err != 0) {
      // The caller will not record it, so it must not stay behind either.
      ::unlink(target.c_str());
      state_ = State::Closed;
      return ioError("fsync", shard, err);
    }
    info_.plain_bytes = static_cast<std::int64_t>(written_);
    info_.stored_bytes = static_cast<std::int64_t>(st.st_size);
    return info_;
  }

 private:
  enum class State { Open, Sealed, Closed };

  std::uint8_t* plain() { return record_.data() + crypto::kNonceBytes; }

  Status checkOpen() const {
    if (state_ != State::Open) {
      return blobError(ErrorCode::FailedPrecondition, info_.id, "the writer is closed");
    }
    return {};
  }

  Error fail(Error error) {
    abort();
    return error;
  }

  void abort() {
    file_.close();
    ::unlink(partial_.c_str());
    crypto::wipe(record_.data(), record_.size());
    state_ = State::Closed;
  }

  std::uint64_t offsetOf(std::uint64_t chunk) const {
    return kHeaderBytes + chunk * static_cast<std::uint64_t>(record_bytes_);
  }

  // Seals the buffered plaintext in place as chunk `sealed_chunks_`, generation 0, and writes it.
  Status sealBuffer(bool last) {
    const std::uint64_t index = sealed_chunks_;
    std::uint8_t* nonce = record_.data();
    putNonce(nonce, index, 0);
    crypto::MutableBytes text(plain(), buffered_);
    crypto::MutableBytes tag(plain() + buffered_, crypto::kTagBytes);
    if (!gcm_.seal(key_.bytes(), {nonce, crypto::kNonceBytes}, aad_.at(index, last), text, text,
                   tag)) {
      return makeError(ErrorCode::Internal, "AES-GCM seal failed");
    }
    const std::size_t n = crypto::kNonceBytes + buffered_ + crypto::kTagBytes;
    if (int err = writeAt(file_.fd(), record_.data(), n, offsetOf(index)); err != 0) {
      return ioError("write", partial_, err);
    }
    ++sealed_chunks_;
    buffered_ = 0;
    return {};
  }

  // Opens a chunk already on disk (never the last: that one is sealed only by seal()), patches
  // it and seals it again under the next generation.
  Status patchSealedChunk(std::uint64_t index, std::size_t within, crypto::Bytes patch) {
    scratch_.resize(record_bytes_);
    ssize_t got = readAt(file_.fd(), scratch_.data(), record_bytes_, offsetOf(index));
    if (got < 0) {
      return ioError("read", partial_, static_cast<int>(-got));
    }
    if (static_cast<std::size_t>(got) != record_bytes_ || getU64(scratch_.data()) != index) {
      return authError(info_.id, index);
    }
    const std::uint32_t generation = getU32(scratch_.data() + 8);
    if (generation == UINT32_MAX) {
      return blobError(ErrorCode::ResourceExhausted, info_.id,
                       "chunk " + std::to_string(index) + " was rewritten too often");
    }
    crypto::Bytes nonce(scratch_.data(), crypto::kNonceBytes);
    crypto::MutableBytes text(scratch_.data() + crypto::kNonceBytes, chunk_bytes_);
    crypto::MutableBytes tag(scratch_.data() + crypto::kNonceBytes + chunk_bytes_,
                             crypto::kTagBytes);
    const auto aad = aad_.at(index, false);
    if (!gcm_.open(key_.bytes(), nonce, aad, text, text, tag)) {
      crypto::wipe(scratch_.data(), scratch_.size());
      return authError(info_.id, index);
    }
    std::memcpy(text.data() + within, patch.data(), patch.size());
    putU32(scratch_.data() + 8, generation + 1);
    bool sealed = gcm_.seal(key_.bytes(), nonce, aad, text, text, tag);
    if (!sealed) {
      crypto::wipe(scratch_.data(), scratch_.size());
      return makeError(ErrorCode::Internal, "AES-GCM seal failed");
    }
    if (int err = writeAt(file_.fd(), scratch_.data(), record_bytes_, offsetOf(index)); err != 0) {
      return ioError("write", partial_, err);
    }
    return {};
  }

  BlobInfo info_;
  fs::path dir_;
  fs::path partial_;
  File file_;
  ChunkAad aad_;
  crypto::SecretKey key_;
  crypto::Aes256Gcm gcm_;
  const std::uint32_t chunk_bytes_;
  const std::size_t record_bytes_;
  const std::uint64_t max_bytes_;
  // nonce | plaintext of the buffered chunk (sealed in place) | room for the tag
  std::vector<std::uint8_t> record_;
  std::vector<std::uint8_t> scratch_;  // one chunk record while rewriting
  std::size_t buffered_ = 0;
  std::uint64_t sealed_chunks_ = 0;
  std::uint64_t written_ = 0;
  State state_ = State::Open;
};

class FileBlobReader final : public BlobReader {
 public:
  FileBlobReader(BlobInfo info, File file, const Header& header, const crypto::SecretKey& key,
                 std::uint32_t chunk_bytes, std::uint64_t chunks, std::size_t last_bytes)
      : info_(std::move(info)),
        file_(std::move(file)),
        aad_(header),
        key_(key),
        chunk_bytes_(chunk_bytes),
        record_bytes_(chunk_bytes + kChunkOverhead),
        chunks_(chunks),
        last_bytes_(last_bytes),
        size_((chunks - 1) * chunk_bytes + last_bytes),
        record_(record_bytes_) {}

  ~FileBlobReader() override { crypto::wipe(record_.data(), record_.size()); }

  const BlobInfo& info() const override { return info_; }
  std::uint64_t size() const override { return size_; }

  Result<std::size_t> read(crypto::MutableBytes out) override {
    std::size_t total = 0;
    while (total < out.size() && position_ < size_) {
      const std::uint64_t chunk = position_ / chunk_bytes_;
      if (!loaded_ || *loaded_ != chunk) {
        if (auto s = load(chunk); !s.ok()) {
          if (total > 0) {
            break;  // deliver what was authenticated; the error comes again on the next read
          }
          return s.error();
        }
      }
      const std::size_t within = static_cast<std::size_t>(position_ % chunk_bytes_);
      const std::size_t n = std::min(loaded_bytes_ - within, out.size() - total);
      std::memcpy(out.data() + total, record_.data() + crypto::kNonceBytes + within, n);
      total += n;
      position_ += n;
    }
    return total;
  }

  Status seek(std::uint64_t offset) override {
    if (offset > size_) {
      return makeError(ErrorCode::InvalidArgument,
                       "offset " + std::to_string(offset) + " is past the end of blob " + info_.id +
                           " (" + std::to_string(size_) + " bytes)",
                       "offset");
    }
    position_ = offset;
    return {};
  }

  // Reads and authenticates chunk `index` into record_. Called by open() for the last chunk.
  Status load(std::uint64_t index) {
    loaded_.reset();
    const bool last = index + 1 == chunks_;
    const std::size_t bytes = last ? last_bytes_ : chunk_bytes_;
    if (auto s = readRecord(index, bytes); !s.ok()) {
      return s;
    }
    if (getU64(record_.data()) != index) {
      return outOfPlace(index);
    }
    if (tryOpen(index, bytes, last)) {
      loaded_ = index;
      loaded_bytes_ = bytes;
      return {};
    }
    // Tell truncation and reordering apart from damage: does the chunk authenticate with the
    // other last flag? (The failed attempt overwrote the buffer, so read it again.)
    Status again = readRecord(index, bytes);
    bool other = again.ok() && tryOpen(index, bytes, !last);
    crypto::wipe(record_.data(), record_.size());
    if (other && last) {
      return blobError(ErrorCode::Internal, info_.id,
                       "truncated (chunk " + std::to_string(index) + " is not the last)");
    }
    if (other) {
      return outOfPlace(index);
    }
    return authError(info_.id, index);
  }

 private:
  Error outOfPlace(std::uint64_t index) const {
    return blobError(ErrorCode::Internal, info_.id,
                     "chunk " + std::to_string(index) + " is out of place");
  }

  Status readRecord(std::uint64_t index, std::size_t bytes) {
    const std::size_t n = bytes + kChunkOverhead;
    ssize_t got = readAt(file_.fd(), record_.data(), n,
                         kHeaderBytes + index * static_cast<std::uint64_t>(record_bytes_));
    if (got < 0) {
      return makeError(ErrorCode::Internal,
                       "blob " + info_.id + ": read failed: " + errnoText(static_cast<int>(-got)));
    }
    if (static_cast<std::size_t>(got) != n) {
      // The file shrank after open() measured it.
      return blobError(ErrorCode::Internal, info_.id,
                       "truncated (chunk " + std::to_string(index) + " is incomplete)");
    }
    return {};
  }

  bool tryOpen(std::uint64_t index, std::size_t bytes, bool last) {
    crypto::Bytes nonce(record_.data(), crypto::kNonceBytes);
    crypto::MutableBytes text(record_.data() + crypto::kNonceBytes, bytes);
    crypto::Bytes tag(record_.data() + crypto::kNonceBytes + bytes, crypto::kTagBytes);
    return gcm_.open(key_.bytes(), nonce, aad_.at(index, last), text, text, tag);
  }

  BlobInfo info_;
  File file_;
  ChunkAad aad_;
  crypto::SecretKey key_;
  crypto::Aes256Gcm gcm_;
  const std::uint32_t chunk_bytes_;
  const std::size_t record_bytes_;
  const std::uint64_t chunks_;
  const std::size_t last_bytes_;
  const std::uint64_t size_;
  // nonce | plaintext of the loaded chunk (opened in place) | tag
  std::vector<std::uint8_t> record_;
  std::optional<std::uint64_t> loaded_;
  std::size_t loaded_bytes_ = 0;
  std::uint64_t position_ = 0;
};

constexpr std::string_view kInsertBlob =
    "INSERT INTO blobs (id, account_id, user_id, key_id, plain_bytes, stored_bytes, created_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
constexpr std::string_view kFindBlob =
    "SELECT id, account_id, user_id, key_id, plain_bytes, stored_bytes FROM blobs "
    "WHERE account_id = ?1 AND id = ?2";
constexpr std::string_view kAccountBytes =
    "SELECT COALESCE(SUM(stored_bytes), 0) FROM blobs WHERE account_id = ?1";
constexpr std::string_view kUserBytes =
    "SELECT COALESCE(SUM(stored_bytes), 0) FROM blobs WHERE account_id = ?1 AND user_id = ?2";
constexpr std::string_view kForgetBlob = "DELETE FROM blobs WHERE account_id = ?1 AND id = ?2";
// The sweep looks files up by id alone: it runs for every account at once.
constexpr std::string_view kBlobExists = "SELECT 1 FROM blobs WHERE id = ?1";

Error notFound(const std::string& blob_id) {
  return makeError(ErrorCode::NotFound, "blob " + blob_id + " not found", "id");
}

}  // namespace

BlobStore::BlobStore(std::filesystem::path dir, DataKeys& keys, core::Random& random,
                     std::uint32_t chunk_bytes)
    : dir_(std::move(dir)),
      keys_(keys),
      random_(random),
      chunk_bytes_(std::clamp<std::uint32_t>(chunk_bytes, 1, kMaxBlobChunkBytes)) {}

std::filesystem::path BlobStore::pathOf(const std::string& id) const {
  return dir_ / id.substr(0, 2) / (id + ".blob");
}

Result<std::unique_ptr<BlobWriter>> BlobStore::create(const std::string& account_id,
                                                      std::optional<std::string> user_id,
                                                      std::int64_t max_bytes) {
  if (account_id.empty()) {
    return makeError(ErrorCode::InvalidArgument, "a blob needs an account", "account_id");
  }
  if (max_bytes < 0) {
    return makeError(ErrorCode::InvalidArgument, "max_bytes must not be negative", "max_bytes");
  }
  auto key = keys_.keyForWriting(account_id);
  if (!key.ok()) {
    return key.error();
  }
  auto key_id = crypto::fromHex(key->id);
  if (!key_id || key_id->size() != kIdBytes) {
    return makeError(ErrorCode::Internal, "data key id " + key->id + " is not 32 hex digits");
  }
  BlobInfo info;
  info.id = random_.hex(kIdBytes);
  info.account_id = account_id;
  info.user_id = std::move(user_id);
  info.key_id = key->id;

  Header header{};
  std::memcpy(header.data(), kMagic.data(), kMagic.size());
  header[kOffVersion] = kVersion;
  putU32(header.data() + kOffChunkBytes, chunk_bytes_);
  std::memcpy(header.data() + kOffKeyId, key_id->data(), kIdBytes);
  random_.fill(std::span<std::uint8_t>(header.data() + kOffSalt, kSaltBytes));
  auto raw_id = crypto::fromHex(info.id);
  std::memcpy(header.data() + kOffBlobId, raw_id->data(), kIdBytes);

  crypto::SecretKey blob_key;
  if (!deriveBlobKey(key->key, header, blob_key)) {
    return makeError(ErrorCode::Internal, "HKDF failed");
  }
  const fs::path tmp = dir_ / "tmp";
  std::error_code ec;
  fs::create_directories(tmp, ec);
  if (ec) {
    return makeError(ErrorCode::Internal, "cannot create " + tmp.string() + ": " + ec.message());
  }
  const fs::path partial = tmp / (info.id + ".partial");
  File file(::open(partial.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (file.fd() < 0) {
    return ioError("cannot create", partial, errno);
  }
  if (int err = writeAt(file.fd(), header.data(), header.size(), 0); err != 0) {
    file.close();
    ::unlink(partial.c_str());
    return ioError("write", partial, err);
  }
  return std::unique_ptr<BlobWriter>(
      std::make_unique<FileBlobWriter>(std::move(info), dir_, std::move(file), header, blob_key,
                                       chunk_bytes_, static_cast<std::uint64_t>(max_bytes)));
}

Result<std::unique_ptr<BlobReader>> BlobStore::open(const BlobInfo& info) {
  const std::string& id = info.id;
  if (!isBlobId(id)) {
    return makeError(ErrorCode::InvalidArgument, "not a blob id", "id");
  }
  const fs::path path = pathOf(id);
  File file(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (file.fd() < 0) {
    if (errno == ENOENT) {
      return blobError(ErrorCode::Internal, id, "file is missing");
    }
    return ioError("cannot open", path, errno);
  }
  struct stat st {};
  if (::fstat(file.fd(), &st) != 0) {
    return ioError("stat", path, errno);
  }
  const auto file_bytes = static_cast<std::uint64_t>(st.st_size);
  Header header{};
  ssize_t got = readAt(file.fd(), header.data(), header.size(), 0);
  if (got < 0) {
    return ioError("read", path, static_cast<int>(-got));
  }
  if (static_cast<std::size_t>(got) < kMagic.size() + 1 ||
      std::memcmp(header.data(), kMagic.data(), kMagic.size()) != 0) {
    return blobError(ErrorCode::Internal, id, "not a Confab blob (bad magic)");
  }
  if (header[kOffVersion] != kVersion) {
    return blobError(ErrorCode::FailedPrecondition, id,
                     "unsupported blob format version " + std::to_string(header[kOffVersion]));
  }
  if (static_cast<std::size_t>(got) < kHeaderBytes) {
    return blobError(ErrorCode::Internal, id, "truncated header");
  }
  const std::uint32_t chunk_bytes = getU32(header.data() + kOffChunkBytes);
  if (chunk_bytes == 0 || chunk_bytes > kMaxBlobChunkBytes) {
    return blobError(ErrorCode::Internal, id,
                     "corrupt header (chunk size " + std::to_string(chunk_bytes) + ")");
  }
  // The id is part of the key derivation, so a file cannot be passed off under another id; this
  // check only turns a swapped file into a clear message instead of an authentication failure.
  const std::string file_id = crypto::toHex({header.data() + kOffBlobId, kIdBytes});
  if (file_id != id) {
    return blobError(ErrorCode::Internal, id, "the file holds blob " + file_id);
  }
  const std::string key_id = crypto::toHex({header.data() + kOffKeyId, kIdBytes});
  if (key_id != info.key_id) {
    return blobError(ErrorCode::Internal, id,
                     "the file is sealed with data key " + key_id + ", not " + info.key_id);
  }
  auto data_key = keys_.keyById(key_id);
  if (!data_key.ok()) {
    return blobError(data_key.error().code, id, data_key.error().message);
  }
  crypto::SecretKey blob_key;
  if (!deriveBlobKey(data_key->key, header, blob_key)) {
    return makeError(ErrorCode::Internal, "HKDF failed");
  }

  // Every chunk but the last is full, so the file size alone gives the geometry; the last
  // chunk's tag then authenticates it.
  const std::uint64_t record = chunk_bytes + kChunkOverhead;
  const std::uint64_t body = file_bytes - kHeaderBytes;
  std::uint64_t chunks = body / record;
  const std::uint64_t rest = body % record;
  std::size_t last_bytes = chunk_bytes;
  if (rest == 0 && chunks == 0) {
    return blobError(ErrorCode::Internal, id, "truncated (chunk 0 is incomplete)");
  }
  if (rest != 0) {
    if (rest < kChunkOverhead) {
      return blobError(ErrorCode::Internal, id,
                       "truncated (chunk " + std::to_string(chunks) + " is incomplete)");
    }
    last_bytes = static_cast<std::size_t>(rest - kChunkOverhead);
    ++chunks;
  }
  auto reader = std::make_unique<FileBlobReader>(info, std::move(file), header, blob_key,
                                                 chunk_bytes, chunks, last_bytes);
  CONFAB_TRY(reader->load(chunks - 1));
  return std::unique_ptr<BlobReader>(std::move(reader));
}

Result<std::unique_ptr<BlobReader>> BlobStore::open(Database& db, const std::string& account_id,
                                                    const std::string& blob_id) {
  auto info = findBlob(db, account_id, blob_id);
  if (!info.ok()) {
    return info.error();
  }
  if (!info->has_value()) {
    return notFound(blob_id);
  }
  return open(**info);
}

Status BlobStore::removeFile(const std::string& id) {
  if (!isBlobId(id)) {
    return makeError(ErrorCode::InvalidArgument, "not a blob id", "id");
  }
  const fs::path path = pathOf(id);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return ioError("cannot remove", path, errno);
  }
  return {};
}

Result<SweepReport> BlobStore::sweep(Database& db) {
  SweepReport report;
  std::error_code ec;
  auto removeCounted = [&](const fs::path& path, std::int64_t& count,
                           std::int64_t& bytes) -> Status {
    std::error_code size_ec;
    const auto size = fs::file_size(path, size_ec);
    if (::unlink(path.c_str()) != 0) {
      return ioError("cannot remove", path, errno);
    }
    ++count;
    bytes += size_ec ? 0 : static_cast<std::int64_t>(size);
    return {};
  };
  auto iterationError = [](const fs::path& path, const std::error_code& e) {
    return makeError(ErrorCode::Internal, "cannot list " + path.string() + ": " + e.message());
  };

  const fs::path tmp = dir_ / "tmp";
  if (fs::is_directory(tmp, ec)) {
    for (fs::directory_iterator it(tmp, ec), end; !ec && it != end; it.increment(ec)) {
      const fs::path& p = it->path();
      if (p.extension() == ".partial" && it->is_regular_file(ec)) {
        CONFAB_TRY(removeCounted(p, report.partials_removed, report.partial_bytes));
      }
    }
    if (ec) {
      return iterationError(tmp, ec);
    }
  }
  if (!fs::is_directory(dir_, ec)) {
    return report;
  }
  auto exists = db.prepare(kBlobExists);
  if (!exists.ok()) {
    return exists.error();
  }
  for (fs::directory_iterator shard(dir_, ec), end; !ec && shard != end; shard.increment(ec)) {
    const std::string shard_name = shard->path().filename().string();
    if (shard_name.size() != 2 || !shard->is_directory(ec)) {
      continue;
    }
    std::error_code inner;
    for (fs::directory_iterator it(shard->path(), inner), stop; !inner && it != stop;
         it.increment(inner)) {
      const fs::path& p = it->path();
      const std::string stem = p.stem().string();
      if (p.extension() != ".blob" || !isBlobId(stem) || stem.compare(0, 2, shard_name) != 0) {
        continue;
      }
      exists->reset();
      exists->bind(1, stem);
      auto row = exists->step();
      if (!row.ok()) {
        return row.error();
      }
      if (!*row) {
        CONFAB_TRY(removeCounted(p, report.orphans_removed, report.orphan_bytes));
      }
    }
    if (inner) {
      return iterationError(shard->path(), inner);
    }
  }
  if (ec) {
    return iterationError(dir_, ec);
  }
  return report;
}

Status recordBlob(Database& db, const BlobInfo& info, std::int64_t now_ms) {
  auto st = db.prepare(kInsertBlob);
  if (!st.ok()) {
    return st.error();
  }
  st->bind(1, info.id).bind(2, info.account_id);
  if (info.user_id) {
    st->bind(3, *info.user_id);
  } else {
    st->bindNull(3);
  }
  st->bind(4, info.key_id).bind(5, info.plain_bytes).bind(6, info.stored_bytes).bind(7, now_ms);
  return st->run();
}

Result<std::optional<BlobInfo>> findBlob(Database& db, const std::string& account_id,
                                         const std::string& blob_id) {
  auto st = db.prepare(kFindBlob);
  if (!st.ok()) {
    return st.error();
  }
  st->bind(1, account_id).bind(2, blob_id);
  auto row = st->step();
  if (!row.ok()) {
    return row.error();
  }
  if (!*row) {
    return std::optional<BlobInfo>();
  }
  BlobInfo info;
  info.id = st->text(0);
  info.account_id = st->text(1);
  if (!st->isNull(2)) {
    info.user_id = st->text(2);
  }
  info.key_id = st->text(3);
  info.plain_bytes = st->int64(4);
  info.stored_bytes = st->int64(5);
  return std::optional<BlobInfo>(std::move(info));
}

Result<std::int64_t> storedBytes(Database& db, const std::string& account_id,
                                 const std::optional<std::string>& user_id) {
  auto st = db.prepare(user_id ? kUserBytes : kAccountBytes);
  if (!st.ok()) {
    return st.error();
  }
  st->bind(1, account_id);
  if (user_id) {
    st->bind(2, *user_id);
  }
  auto row = st->step();
  if (!row.ok()) {
    return row.error();
  }
  return *row ? st->int64(0) : std::int64_t{0};
}

Status forgetBlob(Database& db, const std::string& account_id, const std::string& blob_id) {
  auto st = db.prepare(kForgetBlob);
  if (!st.ok()) {
    return st.error();
  }
  st->bind(1, account_id).bind(2, blob_id);
  CONFAB_TRY(st->run());
  if (db.changes() == 0) {
    return notFound(blob_id);
  }
  return {};
}

}  // namespace confab::store
