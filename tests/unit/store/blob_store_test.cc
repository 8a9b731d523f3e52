// SPDX-License-Identifier: Apache-2.0
#include <confab/store/blob_store.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "test_support.h"

// The suite is named BlobStore (filter 'BlobStore.*'), so it lives outside confab::store.
namespace confab::blob_test {
namespace {

namespace fs = std::filesystem;
namespace crypto = core::crypto;
using store::BlobInfo;
using store::BlobReader;
using store::BlobWriter;

constexpr std::uint32_t kChunk = 1024;
constexpr std::size_t kHeader = 76;  // docs/storage-format.md, "Blob files"
constexpr std::size_t kOverhead = 12 + 16;
constexpr std::string_view kMarker = "CONFAB-PLAINTEXT-MARKER";

// Deterministic randomness (SplitMix64); a script of bytes, if set, is served first.
class TestRandom final : public core::Random {
 public:
  explicit TestRandom(std::uint64_t seed = 42) : state_(seed) {}
  void fill(std::span<std::uint8_t> out) override {
    for (auto& b : out) {
      if (!script_.empty()) {
        b = script_.front();
        script_.pop_front();
        continue;
      }
      std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      b = static_cast<std::uint8_t>(z ^ (z >> 31));
    }
  }
  void script(const std::vector<std::uint8_t>& bytes) {
    script_.insert(script_.end(), bytes.begin(), bytes.end());
  }

 private:
  std::uint64_t state_;
  std::deque<std::uint8_t> script_;
};

// DataKeys with one key per account, and crypto-shredding.
class FakeDataKeys final : public store::DataKeys {
 public:
  Result<store::DataKey> keyForWriting(const std::string& account_id) override {
    auto current = current_.find(account_id);
    if (current == current_.end()) {
      std::vector<std::uint8_t> raw(crypto::kKeyBytes);
      random_.fill(raw);
      std::string id = random_.hex(16);
      keys_.emplace(id, crypto::SecretKey(raw));
      current = current_.emplace(account_id, id).first;
    }
    return store::DataKey{current->second, keys_.at(current->second)};
  }
  Result<store::DataKey> keyById(const std::string& key_id) override {
    if (destroyed_.count(key_id) != 0) {
      return makeError(ErrorCode::NotFound, "data key " + key_id + " was destroyed");
    }
    auto it = keys_.find(key_id);
    if (it == keys_.end()) {
      return makeError(ErrorCode::NotFound, "unknown data key " + key_id);
    }
    return store::DataKey{key_id, it->second};
  }
  void add(const std::string& account_id, const std::string& id, const crypto::SecretKey& key) {
    keys_.emplace(id, key);
    current_[account_id] = id;
  }
  void destroy(const std::string& account_id) {
    const std::string id = current_.at(account_id);
    keys_.erase(id);
    current_.erase(account_id);
    destroyed_.insert(id);
  }

 private:
  TestRandom random_{7};
  std::map<std::string, crypto::SecretKey> keys_;
  std::map<std::string, std::string> current_;
  std::set<std::string> destroyed_;
};

// `n` bytes of a pattern with the plaintext marker every 100 bytes.
std::string plaintext(std::size_t n) {
  std::string s;
  s.reserve(n + 100);
  while (s.size() < n) {
    s += kMarker;
    for (int i = 0; i < 77; ++i) {
      s.push_back(static_cast<char>('a' + (s.size() * 7) % 26));
    }
  }
  s.resize(n);
  return s;
}

std::string fileBytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void writeFileBytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::vector<fs::path> filesUnder(const fs::path& dir) {
  std::vector<fs::path> files;
  if (fs::exists(dir)) {
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
      if (e.is_regular_file()) {
        files.push_back(e.path());
      }
    }
  }
  return files;
}

class BlobStore : public ::testing::Test {
 protected:
  fs::path blobDir() const { return dir_.path() / "blobs"; }

  std::unique_ptr<BlobWriter> create(const std::string& account = "acme",
                                     std::optional<std::string> user = "alice",
                                     std::int64_t max_bytes = 1 << 30) {
    auto w = blobs_.create(account, std::move(user), max_bytes);
    EXPECT_TRUE(w.ok()) << (w.ok() ? "" : w.error().message);
    return w.ok() ? std::move(*w) : nullptr;
  }

  BlobInfo put(const std::string& data, const std::string& account = "acme",
               std::optional<std::string> user = "alice") {
    auto w = create(account, std::move(user));
    EXPECT_TRUE(w->write(crypto::asBytes(data)).ok());
    auto info = w->seal();
    EXPECT_TRUE(info.ok()) << (info.ok() ? "" : info.error().message);
    return info.ok() ? *info : BlobInfo{};
  }

  std::unique_ptr<BlobReader> open(const BlobInfo& info) {
    auto r = blobs_.open(info);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? std::move(*r) : nullptr;
  }

  // Reads to the end through an odd-sized buffer, so that reads straddle chunk boundaries.
  static Result<std::string> readAll(BlobReader& r) {
    std::string out;
    std::vector<std::uint8_t> buf(777);
    for (;;) {
      auto n = r.read(buf);
      if (!n.ok()) {
        return n.error();
      }
      if (*n == 0) {
        return out;
      }
      out.append(reinterpret_cast<const char*>(buf.data()), *n);
    }
  }

  // An error, from open() or from reading everything.
  Error openAndReadError(const BlobInfo& info) {
    auto r = blobs_.open(info);
    if (!r.ok()) {
      return r.error();
    }
    auto all = readAll(**r);
    EXPECT_FALSE(all.ok()) << "the damaged blob read back without an error";
    return all.ok() ? Error{} : all.error();
  }

  void expectNoMarkerOnDisk() {
    for (const auto& f : filesUnder(blobDir())) {
      EXPECT_EQ(fileBytes(f).find(kMarker), std::string::npos) << f;
    }
  }

  static std::uint32_t generationOf(const std::string& raw, std::size_t chunk) {
    const std::size_t nonce = kHeader + chunk * (kChunk + kOverhead);
    std::uint32_t g = 0;
    for (std::size_t i = 8; i < 12; ++i) {
      g = (g << 8) | static_cast<std::uint8_t>(raw.at(nonce + i));
    }
    return g;
  }

  testing::TestDir dir_{"confab-blob"};
  FakeDataKeys keys_;
  TestRandom random_;
  store::BlobStore blobs_{dir_.path() / "blobs", keys_, random_, kChunk};
};

TEST_F(BlobStore, RoundTripsEverySizeAroundTheChunkSize) {
  for (std::size_t n :
       {std::size_t{0}, std::size_t{1}, std::size_t{kChunk - 1}, std::size_t{kChunk},
        std::size_t{kChunk + 1}, std::size_t{kChunk * 7 / 2}}) {
    SCOPED_TRACE(n);
    const std::string data = plaintext(n);
    // Written in uneven pieces.
    auto w = create();
    ASSERT_TRUE(w);
    for (std::size_t at = 0; at < n; at += 300) {
      ASSERT_TRUE(
          w->write(crypto::asBytes(data).subspan(at, std::min<std::size_t>(300, n - at))).ok());
    }
    EXPECT_EQ(w->size(), n);
    auto info = w->seal();
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_EQ(info->account_id, "acme");
    EXPECT_EQ(info->user_id, "alice");
    EXPECT_EQ(info->plain_bytes, static_cast<std::int64_t>(n));
    const std::size_t chunks = n == 0 ? 1 : (n + kChunk - 1) / kChunk;
    EXPECT_EQ(info->stored_bytes, static_cast<std::int64_t>(kHeader + chunks * kOverhead + n));
    EXPECT_EQ(info->stored_bytes,
              static_cast<std::int64_t>(fs::file_size(blobs_.pathOf(info->id))));
    EXPECT_EQ(blobs_.pathOf(info->id), blobDir() / info->id.substr(0, 2) / (info->id + ".blob"));

    auto r = open(*info);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->size(), n);
    auto back = readAll(*r);
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(*back, data);
    // Seek into the middle and read again.
    ASSERT_TRUE(r->seek(n / 2).ok());
    auto tail = readAll(*r);
    ASSERT_TRUE(tail.ok());
    EXPECT_EQ(*tail, data.substr(n / 2));
    EXPECT_EQ(r->seek(n + 1).error().field, "offset");
  }
  EXPECT_TRUE(filesUnder(blobDir() / "tmp").empty());
  expectNoMarkerOnDisk();
}

TEST_F(BlobStore, RoundTripsWithTheDefaultChunkSize) {
  store::BlobStore blobs(blobDir(), keys_, random_);
  const std::string data = plaintext(store::kDefaultBlobChunkBytes * 7 / 2);
  auto w = blobs.create("acme", std::nullopt, 1 << 30);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->write(crypto::asBytes(data)).ok());
  auto info = (*w)->seal();
  ASSERT_TRUE(info.ok());
  EXPECT_FALSE(info->user_id);
  EXPECT_EQ(info->stored_bytes, static_cast<std::int64_t>(kHeader + 4 * kOverhead + data.size()));
  auto r = blobs.open(*info);
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto back = readAll(**r);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, data);
  expectNoMarkerOnDisk();
}

TEST_F(BlobStore, RewriteBeforeSealReplacesBytesAcrossChunksWithoutPlaintextOnDisk) {
  std::string data = plaintext(kChunk * 7 / 2);
  auto w = create();
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->write(crypto::asBytes(data)).ok());
  const fs::path partial = blobDir() / "tmp" / (w->id() + ".partial");
  ASSERT_TRUE(fs::exists(partial));

  // Chunks 0-2 are sealed on disk, chunk 3 is still buffered.
  const std::string across = "REWRITTEN-ACROSS-0-1";  // chunk 0 into chunk 1
  const std::string into_buffer = "REWRITE-2-3";      // chunk 2 (disk) into chunk 3 (buffer)
  const std::string again = "AGAIN-0";                // chunk 0 a second time
  ASSERT_TRUE(w->rewrite(kChunk - 10, crypto::asBytes(across)).ok());
  ASSERT_TRUE(w->rewrite(3 * kChunk - 5, crypto::asBytes(into_buffer)).ok());
  ASSERT_TRUE(w->rewrite(3, crypto::asBytes(again)).ok());
  data.replace(kChunk - 10, across.size(), across);
  data.replace(3 * kChunk - 5, into_buffer.size(), into_buffer);
  data.replace(3, again.size(), again);

  // Only within what was written; the writer stays usable after that refusal.
  auto beyond = w->rewrite(data.size() - 2, crypto::asBytes(std::string_view("xyz")));
  EXPECT_EQ(beyond.error().code, ErrorCode::InvalidArgument);
  EXPECT_EQ(beyond.error().field, "offset");

  for (const std::string& s : {across, into_buffer, again}) {
    EXPECT_EQ(fileBytes(partial).find(s), std::string::npos) << s;
  }
  expectNoMarkerOnDisk();

  auto info = w->seal();
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_FALSE(fs::exists(partial));
  const std::string raw = fileBytes(blobs_.pathOf(info->id));
  for (const std::string& s : {across, into_buffer, again}) {
    EXPECT_EQ(raw.find(s), std::string::npos) << s;
  }
  EXPECT_EQ(generationOf(raw, 0), 2u);
  EXPECT_EQ(generationOf(raw, 1), 1u);
  EXPECT_EQ(generationOf(raw, 2), 1u);
  EXPECT_EQ(generationOf(raw, 3), 0u);  // patched in memory before it was ever sealed

  auto r = open(*info);
  ASSERT_TRUE(r);
  auto back = readAll(*r);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, data);
  expectNoMarkerOnDisk();
}

TEST_F(BlobStore, ExceedingMaxBytesIsResourceExhaustedAndLeavesNoFile) {
  auto w = create("acme", "alice", kChunk * 5 / 2);
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->write(crypto::asBytes(plaintext(2 * kChunk))).ok());
  ASSERT_EQ(filesUnder(blobDir()).size(), 1u);
  auto over = w->write(crypto::asBytes(plaintext(kChunk)));
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().code, ErrorCode::ResourceExhausted);
  EXPECT_EQ(over.error().field, "size");
  EXPECT_TRUE(filesUnder(blobDir()).empty());
  // The writer is closed now.
  EXPECT_EQ(w->write(crypto::asBytes(std::string_view("x"))).error().code,
            ErrorCode::FailedPrecondition);
  EXPECT_EQ(w->seal().error().code, ErrorCode::FailedPrecondition);
  w.reset();
  EXPECT_TRUE(filesUnder(blobDir()).empty());

  // Exactly the limit is fine.
  auto exact = create("acme", "alice", kChunk);
  ASSERT_TRUE(exact->write(crypto::asBytes(plaintext(kChunk))).ok());
  EXPECT_TRUE(exact->seal().ok());
}

TEST_F(BlobStore, AnUnsealedWriterLeavesNothingBehind) {
  {
    auto w = create();
    ASSERT_TRUE(w->write(crypto::asBytes(plaintext(3 * kChunk))).ok());
    EXPECT_EQ(filesUnder(blobDir()).size(), 1u);
  }
  EXPECT_TRUE(filesUnder(blobDir()).empty());
}

TEST_F(BlobStore, AFlippedByteFailsAuthentication) {
  const BlobInfo info = put(plaintext(kChunk * 7 / 2));
  const fs::path path = blobs_.pathOf(info.id);
  const std::string original = fileBytes(path);

  std::string raw = original;
  raw[kHeader + (kChunk + kOverhead) + 12 + 100] ^= 0x01;  // chunk 1's ciphertext
  writeFileBytes(path, raw);
  Error e = openAndReadError(info);
  EXPECT_EQ(e.code, ErrorCode::Internal);
  EXPECT_EQ(e.message, "blob " + info.id + ": chunk 1 failed authentication (corrupt or tampered)");

  raw = original;
  raw[30] ^= 0x80;  // the header's salt: every chunk, so the final one open() checks, fails
  writeFileBytes(path, raw);
  e = openAndReadError(info);
  EXPECT_EQ(e.code, ErrorCode::Internal);
  EXPECT_EQ(e.message, "blob " + info.id + ": chunk 3 failed authentication (corrupt or tampered)");

  raw = original;
  raw[0] = 'X';
  writeFileBytes(path, raw);
  e = openAndReadError(info);
  EXPECT_EQ(e.code, ErrorCode::Internal);
  EXPECT_EQ(e.message, "blob " + info.id + ": not a Confab blob (bad magic)");

  raw = original;
  raw[7] = 2;
  writeFileBytes(path, raw);
  e = openAndReadError(info);
  EXPECT_EQ(e.code, ErrorCode::FailedPrecondition);
  EXPECT_EQ(e.message, "blob " + info.id + ": unsupported blob format version 2");
}

TEST_F(BlobStore, ATruncatedFileIsReportedAtOpen) {
  const BlobInfo info = put(plaintext(kChunk * 7 / 2));
  const fs::path path = blobs_.pathOf(info.id);
  fs::resize_file(path, kHeader + 3 * (kChunk + kOverhead));  // drop the last chunk
  auto r = blobs_.open(info);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::Internal);
  EXPECT_EQ(r.error().message, "blob " + info.id + ": truncated (chunk 2 is not the last)");
}

TEST_F(BlobStore, SwappedChunksAreOutOfPlace) {
  const std::string data = plaintext(kChunk * 7 / 2);
  const BlobInfo info = put(data);
  const fs::path path = blobs_.pathOf(info.id);
  std::string raw = fileBytes(path);
  const std::size_t record = kChunk + kOverhead;
  std::string first = raw.substr(kHeader, record);
  raw.replace(kHeader, record, raw.substr(kHeader + record, record));
  raw.replace(kHeader + record, record, first);
  writeFileBytes(path, raw);

  auto r = open(info);  // the last chunk is intact
  ASSERT_TRUE(r);
  auto all = readAll(*r);
  ASSERT_FALSE(all.ok());
  EXPECT_EQ(all.error().code, ErrorCode::Internal);
  EXPECT_EQ(all.error().message, "blob " + info.id + ": chunk 0 is out of place");
  ASSERT_TRUE(r->seek(kChunk + 5).ok());
  std::vector<std::uint8_t> buf(10);
  EXPECT_EQ(r->read(buf).error().message, "blob " + info.id + ": chunk 1 is out of place");
  // Untouched chunks still read.
  ASSERT_TRUE(r->seek(2 * kChunk).ok());
  auto rest = readAll(*r);
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(*rest, data.substr(2 * kChunk));
}

TEST_F(BlobStore, ADestroyedKeyMakesTheBlobUnreadable) {
  const BlobInfo info = put(plaintext(kChunk * 2));
  keys_.destroy("acme");
  auto r = blobs_.open(info);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::NotFound);
  EXPECT_EQ(r.error().message, "blob " + info.id + ": data key " + info.key_id + " was destroyed");
  EXPECT_EQ(fileBytes(blobs_.pathOf(info.id)).find(kMarker), std::string::npos);
  // The account's next blob gets a new key and reads fine.
  const BlobInfo next = put("after");
  EXPECT_NE(next.key_id, info.key_id);
  auto back = readAll(*open(next));
  EXPECT_EQ(*back, "after");
}

TEST_F(BlobStore, AFileCannotBePassedOffAsAnotherBlob) {
  const BlobInfo a = put("first");
  const BlobInfo b = put("second");
  fs::copy_file(blobs_.pathOf(a.id), blobs_.pathOf(b.id), fs::copy_options::overwrite_existing);
  auto r = blobs_.open(b);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "blob " + b.id + ": the file holds blob " + a.id);
}

TEST_F(BlobStore, RowsCountStoredBytesPerUserAndAccount) {
  auto db_store = testing::openTestStore(dir_.path());
  ASSERT_TRUE(db_store);
  const BlobInfo a1 = put(plaintext(100), "acme", "alice");
  const BlobInfo a2 = put(plaintext(kChunk * 2), "acme", "alice");
  const BlobInfo b1 = put(plaintext(10), "acme", "bob");
  const BlobInfo shared = put(plaintext(20), "acme", std::nullopt);
  const BlobInfo other = put(plaintext(kChunk), "globex", "alice");
  auto r = db_store->writeNow<int>([&](store::Database& db) -> Result<int> {
    for (const auto* info : {&a1, &a2, &b1, &shared, &other}) {
      CONFAB_TRY(store::recordBlob(db, *info, 1'700'000'000'000));
    }
    return 0;
  });
  ASSERT_TRUE(r.ok()) << r.error().message;

  auto check = db_store->writeNow<int>([&](store::Database& db) -> Result<int> {
    EXPECT_EQ(*store::storedBytes(db, "acme", std::string("alice")),
              a1.stored_bytes + a2.stored_bytes);
    EXPECT_EQ(*store::storedBytes(db, "acme", std::string("bob")), b1.stored_bytes);
    EXPECT_EQ(*store::storedBytes(db, "acme"),
              a1.stored_bytes + a2.stored_bytes + b1.stored_bytes + shared.stored_bytes);
    EXPECT_EQ(*store::storedBytes(db, "globex", std::string("alice")), other.stored_bytes);
    EXPECT_EQ(*store::storedBytes(db, "initech"), 0);

    auto found = store::findBlob(db, "acme", a2.id);
    EXPECT_TRUE(found.ok() && found->has_value());
    EXPECT_EQ((*found)->key_id, a2.key_id);
    EXPECT_EQ((*found)->plain_bytes, a2.plain_bytes);
    EXPECT_EQ((*found)->user_id, "alice");
    EXPECT_FALSE((*store::findBlob(db, "acme", shared.id))->user_id);
    // Tenant boundary: another account's blob does not exist for this one.
    EXPECT_FALSE(store::findBlob(db, "globex", a2.id)->has_value());
    auto foreign = blobs_.open(db, "globex", a2.id);
    EXPECT_EQ(foreign.error().code, ErrorCode::NotFound);
    EXPECT_EQ(foreign.error().message, "blob " + a2.id + " not found");
    auto mine = blobs_.open(db, "acme", a2.id);
    EXPECT_TRUE(mine.ok());
    EXPECT_EQ(store::forgetBlob(db, "globex", a2.id).error().code, ErrorCode::NotFound);

    EXPECT_TRUE(store::forgetBlob(db, "acme", a2.id).ok());
    EXPECT_EQ(*store::storedBytes(db, "acme", std::string("alice")), a1.stored_bytes);
    return 0;
  });
  ASSERT_TRUE(check.ok()) << check.error().message;
  EXPECT_TRUE(blobs_.removeFile(a2.id).ok());
  EXPECT_FALSE(fs::exists(blobs_.pathOf(a2.id)));
  EXPECT_TRUE(blobs_.removeFile(a2.id).ok());  // already gone
  EXPECT_EQ(blobs_.removeFile("../../etc/passwd").error().code, ErrorCode::InvalidArgument);
}

TEST_F(BlobStore, SweepRemovesPartialsAndSealedFilesWithoutARow) {
  auto db_store = testing::openTestStore(dir_.path());
  ASSERT_TRUE(db_store);
  const BlobInfo kept = put(plaintext(kChunk * 2));
  const BlobInfo orphan = put(plaintext(kChunk));  // sealed, then a crash before the commit
  ASSERT_TRUE(db_store
                  ->writeNow<int>([&](store::Database& db) -> Result<int> {
                    CONFAB_TRY(store::recordBlob(db, kept, 1));
                    return 0;
                  })
                  .ok());
  // A crash in the middle of an upload leaves its partial file.
  writeFileBytes(blobDir() / "tmp" / "0123456789abcdef0123456789abcdef.partial",
                 std::string(500, 'p'));
  writeFileBytes(blobDir() / "README", "not ours");

  auto report =
      db_store->writeNow<store::SweepReport>([&](store::Database& db) { return blobs_.sweep(db); });
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(report->partials_removed, 1);
  EXPECT_EQ(report->partial_bytes, 500);
  EXPECT_EQ(report->orphans_removed, 1);
  EXPECT_EQ(report->orphan_bytes, orphan.stored_bytes);
  EXPECT_FALSE(fs::exists(blobs_.pathOf(orphan.id)));
  EXPECT_TRUE(fs::exists(blobDir() / "README"));
  EXPECT_TRUE(filesUnder(blobDir() / "tmp").empty());
  auto back = readAll(*open(kept));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, plaintext(kChunk * 2));

  auto again =
      db_store->writeNow<store::SweepReport>([&](store::Database& db) { return blobs_.sweep(db); });
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->partials_removed + again->orphans_removed, 0);
}

// The example in docs/storage-format.md, "Blob files", byte for byte: an independent decryptor
// is written from that page, so the page and the code must agree.
TEST_F(BlobStore, WritesTheDocumentedExampleByteForByte) {
  std::vector<std::uint8_t> data_key(32);
  for (std::size_t i = 0; i < 32; ++i) {
    data_key[i] = static_cast<std::uint8_t>(i);
  }
  keys_.add("example", "00112233445566778899aabbccddeeff", crypto::SecretKey(data_key));
  TestRandom random;
  const auto id = crypto::fromHex("0123456789abcdef0123456789abcdef");
  std::vector<std::uint8_t> script(id->begin(), id->end());  // create() draws the blob id first
  for (int i = 0x20; i < 0x40; ++i) {
    script.push_back(static_cast<std::uint8_t>(i));  // then the salt
  }
  random.script(script);
  store::BlobStore blobs(blobDir(), keys_, random, 16);
  auto w = blobs.create("example", std::nullopt, 100);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->write(crypto::asBytes(std::string_view("Hello, Confab blob store!"))).ok());
  auto info = (*w)->seal();
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->id, "0123456789abcdef0123456789abcdef");
  const std::string raw = fileBytes(blobs.pathOf(info->id));
  EXPECT_EQ(crypto::toHex(crypto::asBytes(raw)),
            "4346424c4f4200010000001000112233445566778899aabbccddeeff20212223"
            "2425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f01234567"
            "89abcdef0123456789abcdef00000000000000000000000001cf6ea388f8a6c2"
            "4544358886d6e9988ae13d8e13b4d5e46e3065eb0b61a9d60000000000000001"
            "000000007e21d54b1b064cbb750e8b3a8a27f3a6cdf7a7bfb179de6566");
}

}  // namespace
}  // namespace confab::blob_test
