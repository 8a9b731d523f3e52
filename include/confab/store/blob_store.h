// SPDX-License-Identifier: Apache-2.0
#pragma once
// BlobStore: encrypted files for attachments and recordings, streamed in and out one chunk at a
// time so that no upload or download ever holds a whole file in memory. Each file is sealed with
// a key derived from its account's data key (keys.h), chunk by chunk with AES-256-GCM; the exact
// format is in docs/storage-format.md, "Blob files". Destroying an account's data key makes its
// files unreadable (crypto-shredding) without touching them.
//
// The calls are synchronous and do file I/O and fsync: run them off the I/O threads. BlobStore
// is thread-safe; a BlobWriter or BlobReader is used by one thread at a time. DataKeys and Random
// must outlive the BlobStore, which must outlive its writers and readers.
//
// Metadata lives in the `blobs` table (migration 0002). The order that keeps files and rows
// consistent across crashes:
//   upload:  create() → write()… → seal() → recordBlob() inside the transaction that also stores
//            whatever refers to the blob → commit.
//   delete:  forgetBlob() → commit → removeFile().
// A crash leaves at worst a partial file or a sealed file without a row; sweep() at start-up
// removes both. A row never points at a file that was not sealed and fsynced first.
//
// Error codes: a corrupt, tampered, truncated or reordered file is Internal (logged, not shown);
// a shredded data key is NotFound ("blob <id>: data key <kid> was destroyed"); a file written by
// a newer format version is FailedPrecondition; a limit is ResourceExhausted.

#include <confab/core/crypto.h>
#include <confab/core/random.h>
#include <confab/core/result.h>
#include <confab/store/database.h>
#include <confab/store/keys.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

namespace confab::store {

inline constexpr std::uint32_t kDefaultBlobChunkBytes = 64 * 1024;
inline constexpr std::uint32_t kMaxBlobChunkBytes = 16 * 1024 * 1024;

struct BlobInfo {
  std::string id;  // 32 lower-case hex digits; also the file name
  std::string account_id;
  std::optional<std::string> user_id;  // the uploader; nullopt for account-owned blobs
  std::string key_id;                  // the data key the file is sealed with
  std::int64_t plain_bytes = 0;
  std::int64_t stored_bytes = 0;  // the file's size on disk (header and tags included)
};

// Writes one blob to <dir>/tmp/<id>.partial and moves it into place when sealed. Holds at most
// one chunk of plaintext (plus one scratch chunk while rewriting). Destroying an unsealed writer
// aborts: the partial file is removed. After an error other than InvalidArgument the writer is
// closed (partial file removed) and every later call fails with FailedPrecondition.
class BlobWriter {
 public:
  virtual ~BlobWriter() = default;
  virtual const std::string& id() const = 0;
  // Plaintext bytes written so far.
  virtual std::uint64_t size() const = 0;
  // Appends `data`. ResourceExhausted (field "size") when the blob would exceed max_bytes; the
  // writer is then closed. Internal on an I/O failure.
  virtual Status write(core::crypto::Bytes data) = 0;
  // Overwrites [offset, offset + data.size()) of what was already written, e.g. a WebM header or
  // cues at the end of a recording. Chunks already on disk are decrypted, patched and sealed
  // again under the next generation of their nonce; the buffered chunk is patched in memory.
  // InvalidArgument (field "offset") if the range reaches past size(); Internal if a chunk on
  // disk does not authenticate or on an I/O failure.
  virtual Status rewrite(std::uint64_t offset, core::crypto::Bytes data) = 0;
  // Seals the final chunk, fsyncs the file, renames it to <dir>/<id[0..2]>/<id>.blob and fsyncs
  // the directory. The caller then records the returned BlobInfo (recordBlob). Internal on an I/O
  // failure (nothing is left behind).
  virtual Result<BlobInfo> seal() = 0;
};

// Reads one sealed blob, decrypting one chunk at a time. open() has already authenticated the
// final chunk, so size() is trustworthy and truncation is reported before any byte is read.
class BlobReader {
 public:
  virtual ~BlobReader() = default;
  virtual const BlobInfo& info() const = 0;
  // Plaintext size.
  virtual std::uint64_t size() const = 0;
  // Reads up to out.size() bytes at the current position; 0 at the end. A chunk that does not
  // authenticate, or sits at the wrong position, is an Internal error with one of the messages
  // listed at BlobStore::open; bytes decrypted before it are returned first.
  virtual Result<std::size_t> read(core::crypto::MutableBytes out) = 0;
  // Moves the position; InvalidArgument (field "offset") past size().
  virtual Status seek(std::uint64_t offset) = 0;
};

struct SweepReport {
  std::int64_t partials_removed = 0;  // tmp/*.partial: uploads that never sealed
  std::int64_t partial_bytes = 0;
  std::int64_t orphans_removed = 0;  // sealed files without a row: crash between seal and commit
  std::int64_t orphan_bytes = 0;
};

class BlobStore {
 public:
  // `dir` is created when the first blob is written. `chunk_bytes` (1..kMaxBlobChunkBytes) is
  // used for new files; readers take each file's own chunk size from its header.
  BlobStore(std::filesystem::path dir, DataKeys& keys, core::Random& random,
            std::uint32_t chunk_bytes = kDefaultBlobChunkBytes);

  // Starts a blob of at most `max_bytes` plaintext bytes, sealed with the account's current data
  // key. InvalidArgument for an empty account_id (field "account_id") or a negative max_bytes;
  // the key store's error if it has no key; Internal on an I/O failure.
  Result<std::unique_ptr<BlobWriter>> create(const std::string& account_id,
                                             std::optional<std::string> user_id,
                                             std::int64_t max_bytes);

  // Opens a recorded blob. The file must carry info.id and info.key_id in its header.
  // Messages (all prefixed "blob <id>: "):
  //   "not a Confab blob (bad magic)"                      Internal
  //   "unsupported blob format version N"                  FailedPrecondition
  //   "data key <kid> was destroyed"                       NotFound (the key store's code)
  //   "chunk <n> failed authentication (corrupt or tampered)"  Internal (also a tampered header)
  //   "truncated (chunk <n> is not the last)"              Internal
  //   "chunk <n> is out of place"                          Internal (reordered or appended)
  //   "file is missing", "truncated header", "corrupt header (chunk size N)",
  //   "truncated (chunk <n> is incomplete)", "the file holds blob <other>",
  //   "the file is sealed with data key <kid>, not <kid>"  Internal
  Result<std::unique_ptr<BlobReader>> open(const BlobInfo& info);
  // findBlob() then open(): NotFound "blob <id> not found" (field "id") when the account has no
  // such blob — the same answer for another account's blob.
  Result<std::unique_ptr<BlobReader>> open(Database& db, const std::string& account_id,
                                           const std::string& blob_id);

  // Deletes a sealed file; succeeds if it is already gone. InvalidArgument (field "id") unless
  // `id` is 32 lower-case hex digits.
  Status removeFile(const std::string& id);

  // Start-up only, before any writer exists: removes tmp/*.partial and every sealed file whose id
  // has no row in `blobs`. Leaves files it does not recognise alone. Internal on an I/O failure.
  Result<SweepReport> sweep(Database& db);

  std::filesystem::path pathOf(const std::string& id) const;
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
  DataKeys& keys_;
  core::Random& random_;
  std::uint32_t chunk_bytes_;
};

// Blob rows. Each runs on the caller's Database, inside the caller's transaction, so that a blob
// commits together with what refers to it. Every query names the account (tenant boundary).
// Internal on a database failure.
Status recordBlob(Database& db, const BlobInfo& info, std::int64_t now_ms);
Result<std::optional<BlobInfo>> findBlob(Database& db, const std::string& account_id,
                                         const std::string& blob_id);
// Sum of stored_bytes (what is on disk) of the account, or of one of its users.
Result<std::int64_t> storedBytes(Database& db, const std::string& account_id,
                                 const std::optional<std::string>& user_id = std::nullopt);
// Deletes the row; NotFound "blob <id> not found" when the account has no such blob.
Status forgetBlob(Database& db, const std::string& account_id, const std::string& blob_id);

}  // namespace confab::store
