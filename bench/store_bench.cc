// SPDX-License-Identifier: Apache-2.0
// confab_store_bench: the storage part of `make bench` (`bench/run storage` runs it alone). In one
// process it measures, round after round:
//
//   SQLite through confab::store::Database, with the same schema, statements and connection
//   pragmas (WAL, synchronous=FULL, …) and a page cache much smaller than the data, once through
//   SQLite's default VFS ("plain") and once through EncryptingVfs ("encrypted"):
//     insert_txnN  rows appended in transactions of N rows, for each --inserts phase. The first
//                  phase builds the table. Few large commits: the cost is CPU (B-tree work and,
//                  encrypted, sealing every WAL frame and checkpointed page); one row per commit
//                  adds a WAL fsync per row.
//     point_read   SELECTs of random primary keys after a checkpoint and a reopen: nearly every
//                  lookup misses the page cache, so it costs a pread (from the OS page cache: the
//                  file was just written) and, encrypted, one page authentication and decryption.
//     point_read_cold  the same after posix_fadvise(DONTNEED) dropped the file from the OS page
//                  cache, so that misses read the disk.
//   The parts of a page-cache miss, each timed alone: a 4 KiB pread of the database file, and the
//   crypto primitives the encrypting VFS runs per page at its sizes (HKDF-Expand of a subkey,
//   AES-256-GCM over 4,064 bytes with a fresh key, 16 CSPRNG bytes for a write's salt).
//   BlobStore: one large blob written in fixed pieces (then sealed: fsync and rename) and read
//   back in the same pieces, with one in-memory data key.
//
// Plain and encrypted alternate their order from round to round, and every phase starts after a
// sync(2) so that one variant's write-back does not land in the other's timing. The report gives
// medians over the rounds.
//
// Output (stdout): one `BENCH_JSON {...}` line per measurement, one `BENCH_JSON {"summary": ...}`
// line, then a Markdown report between two `<!-- store-bench:markdown -->` lines; --markdown=FILE
// also writes the report to FILE, which bench/run copies into docs/benchmarks.md. Options: --help.

#include <confab/core/crypto.h>
#include <confab/core/random.h>
#include <confab/store/blob_store.h>
#include <confab/store/database.h>
#include <confab/store/encrypting_vfs.h>
#include <confab/store/keys.h>

#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <sys/resource.h>
#include <type_traits>
#include <vector>

namespace confab::bench {
namespace {

namespace fs = std::filesystem;
namespace crypto = core::crypto;
using nlohmann::json;

// ---- options ------------------------------------------------------------------------------------

struct InsertPhase {
  std::int64_t rows = 0;
  std::int64_t per_txn = 0;
};

struct Options {
  std::string dir;      // parent of the scratch directory; empty: $TMPDIR or /tmp
  std::string only;     // "", "sqlite" or "blob"
  std::string variant;  // "", "plain" or "encrypted": run one SQLite variant (for a profiler)
  int rounds = 3;
  std::vector<InsertPhase> inserts = {{400'000, 50'000}, {100'000, 1'000}, {2'000, 1}};
  int row_bytes = 200;
  std::int64_t reads = 300'000;
  std::int64_t cold_reads = 10'000;
  int cache_kib = 2'000;
  std::int64_t page_ops = 20'000;
  std::int64_t blob_mib = 256;
  std::int64_t piece_kib = 64;
  std::vector<double> openssl_mbps;  // `openssl speed -evp aes-256-gcm`, 16 KiB column, per run
  std::string markdown;              // also write the Markdown report to this file
};

const char* const kUsage = R"(usage: confab_store_bench [--option=value ...]
  --dir=PATH          where the scratch directory is made ($TMPDIR, else /tmp); use the file
                      system the data directory would live on: fsync costs depend on it
  --rounds=N          rounds; plain and encrypted alternate their order (3)
  --inserts=R1xT1,…   insert phases: R rows in transactions of T rows; the first phase builds
                      the table (400000x50000,100000x1000,2000x1)
  --row-bytes=N       bytes of text per row (200)
  --reads=N           point reads by random primary key (300000)
  --cold-reads=N      then point reads with the file evicted from the OS page cache (10000)
  --cache-kib=N       SQLite page cache: PRAGMA cache_size=-N (2000)
  --page-ops=N        repetitions of each per-page timing (20000)
  --blob-mib=N        blob size in MiB (256)
  --piece-kib=N       blob write and read piece in KiB (64)
  --only=sqlite|blob  run one half
  --variant=plain|encrypted  run one SQLite variant only (for a profiler; no comparison)
  --openssl-mbps=A,B,…  `openssl speed -evp aes-256-gcm` 16384-byte results in MB/s, one per
                      run: the blob figures are then also given as a fraction of their median
  --markdown=FILE     also write the Markdown report to FILE
)";

[[noreturn]] void usage(const std::string& problem) {
  std::cerr << "confab_store_bench: " << problem << "\n" << kUsage;
  std::exit(2);
}

std::int64_t toInt(const std::string& name, const std::string& value, std::int64_t min) {
  char* end = nullptr;
  long long v = std::strtoll(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0' || v < min) {
    usage("--" + name + " takes integers >= " + std::to_string(min));
  }
  return v;
}

std::vector<std::string> split(const std::string& list, char separator) {
  std::vector<std::string> out;
  std::stringstream in(list);
  for (std::string item; std::getline(in, item, separator);) {
    out.push_back(item);
  }
  return out;
}

Options parseOptions(int argc, char** argv) {
  Options o;
  auto integer = [](const char* name, auto& field, std::int64_t min) {
    return [name, &field, min](const std::string& v) {
      field = static_cast<std::remove_reference_t<decltype(field)>>(toInt(name, v, min));
    };
  };
  auto oneOf = [](const char* name, std::string& field, std::string a, std::string b) {
    return [=, &field](const std::string& v) {
      if (v != a && v != b) {
        usage(std::string("--") + name + " must be " + a + " or " + b);
      }
      field = v;
    };
  };
  std::map<std::string, std::function<void(const std::string&)>> setters = {
      {"dir", [&](const std::string& v) { o.dir = v; }},
      {"markdown", [&](const std::string& v) { o.markdown = v; }},
      {"rounds", integer("rounds", o.rounds, 1)},
      {"row-bytes", integer("row-bytes", o.row_bytes, 1)},
      {"reads", integer("reads", o.reads, 1)},
      {"cold-reads", integer("cold-reads", o.cold_reads, 0)},
      {"cache-kib", integer("cache-kib", o.cache_kib, 1)},
      {"page-ops", integer("page-ops", o.page_ops, 1)},
      {"blob-mib", integer("blob-mib", o.blob_mib, 1)},
      {"piece-kib", integer("piece-kib", o.piece_kib, 1)},
      {"only", oneOf("only", o.only, "sqlite", "blob")},
      {"variant", oneOf("variant", o.variant, "plain", "encrypted")},
      {"inserts",
       [&](const std::string& v) {
         o.inserts.clear();
         for (const auto& phase : split(v, ',')) {
           auto x = phase.find('x');
           if (x == std::string::npos) {
             usage("--inserts takes ROWSxTXN,…");
           }
           o.inserts.push_back(
               {toInt("inserts", phase.substr(0, x), 1), toInt("inserts", phase.substr(x + 1), 1)});
         }
         if (o.inserts.empty()) {
           usage("--inserts takes ROWSxTXN,…");
         }
       }},
      {"openssl-mbps",
       [&](const std::string& v) {
         for (const auto& item : split(v, ',')) {
           char* end = nullptr;
           double mbps = std::strtod(item.c_str(), &end);
           if (item.empty() || *end != '\0' || !(mbps > 0)) {
             usage("--openssl-mbps takes positive numbers separated by commas");
           }
           o.openssl_mbps.push_back(mbps);
         }
       }},
  };
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      std::exit(0);
    }
    auto eq = arg.find('=');
    if (!arg.starts_with("--") || eq == std::string_view::npos) {
      usage("unexpected argument " + std::string(arg));
    }
    auto setter = setters.find(std::string(arg.substr(2, eq - 2)));
    if (setter == setters.end()) {
      usage("unknown option " + std::string(arg.substr(0, eq)));
    }
    setter->second(std::string(arg.substr(eq + 1)));
  }
  return o;
}

// ---- plumbing -----------------------------------------------------------------------------------

// Thrown on any failure: main() reports it after the scratch directory has been removed.
struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] void fail(const std::string& what, const std::string& why) {
  throw Failure(what + ": " + why);
}

void check(const Status& status, const std::string& what) {
  if (!status.ok()) {
    fail(what, status.error().message);
  }
}

template <typename T>
T take(Result<T> result, const std::string& what) {
  if (!result.ok()) {
    fail(what, result.error().message);
  }
  return std::move(result).value();
}

// Wall-clock and CPU (user + system) time of this process since construction.
class Stopwatch {
 public:
  Stopwatch() : wall_(std::chrono::steady_clock::now()), cpu_(cpuSeconds()) {}
  double wall() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_).count();
  }
  double cpu() const { return cpuSeconds() - cpu_; }

 private:
  static double cpuSeconds() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    auto s = [](const timeval& t) { return double(t.tv_sec) + double(t.tv_usec) / 1e6; };
    return s(u.ru_utime) + s(u.ru_stime);
  }
  std::chrono::steady_clock::time_point wall_;
  double cpu_;
};

double median(std::vector<double> v) {
  if (v.empty()) {
    return 0;
  }
  std::sort(v.begin(), v.end());
  auto n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

crypto::SecretKey randomKey() {
  std::array<std::uint8_t, crypto::kKeyBytes> raw;
  core::CsprngRandom::instance().fill(raw);
  return crypto::SecretKey(raw);
}

// ---- samples ------------------------------------------------------------------------------------

// One measured phase: `ops` operations (rows, reads, bytes) in `wall` seconds, using `cpu`
// seconds of this process's CPU. `per_op` is a count per operation where one applies (page-cache
// misses per point read).
struct Sample {
  Sample(int round, std::string subject, std::string op, std::int64_t ops, double wall, double cpu,
         std::optional<double> per_op = std::nullopt)
      : round(round),
        subject(std::move(subject)),
        op(std::move(op)),
        ops(ops),
        wall(wall),
        cpu(cpu),
        per_op(per_op) {}
  int round;
  std::string subject;  // plain | encrypted | page | blob
  std::string op;
  std::int64_t ops;
  double wall;
  double cpu;
  std::optional<double> per_op;
  double opsPerSecond() const { return double(ops) / wall; }
  double cpuMicrosPerOp() const { return cpu / double(ops) * 1e6; }
  double wallMicrosPerOp() const { return wall / double(ops) * 1e6; }
};

class Samples {
 public:
  void add(Sample s) {
    json line = {{"bench", "store"},     {"round", s.round},
                 {"subject", s.subject}, {"op", s.op},
                 {"ops", s.ops},         {"seconds", s.wall},
                 {"cpu_seconds", s.cpu}, {"ops_per_s", s.opsPerSecond()}};
    if (s.per_op) {
      line["per_op"] = *s.per_op;
    }
    std::cout << "BENCH_JSON " << line.dump() << std::endl;
    all_.push_back(std::move(s));
  }
  std::vector<Sample> of(const std::string& subject, const std::string& op) const {
    std::vector<Sample> out;
    for (const auto& s : all_) {
      if (s.subject == subject && s.op == op) {
        out.push_back(s);
      }
    }
    return out;
  }
  // The median over rounds of f(sample).
  template <typename F>
  double median(const std::string& subject, const std::string& op, F f) const {
    std::vector<double> v;
    for (const auto& s : of(subject, op)) {
      v.push_back(f(s));
    }
    return bench::median(v);
  }

 private:
  std::vector<Sample> all_;
};

// ---- SQLite -------------------------------------------------------------------------------------

constexpr std::string_view kSchema =
    "CREATE TABLE item(id INTEGER PRIMARY KEY, owner INTEGER NOT NULL, body TEXT NOT NULL)";
constexpr std::string_view kInsert = "INSERT INTO item(id, owner, body) VALUES(?1, ?2, ?3)";
constexpr std::string_view kSelect = "SELECT owner, body FROM item WHERE id = ?1";

std::string insertOp(const InsertPhase& phase) {
  return "insert_txn" + std::to_string(phase.per_txn);
}

struct SqliteVariant {
  std::string name;
  store::OpenOptions open;
  std::int64_t pages = 0;  // after the inserts, for the report
  std::int64_t page_bytes = 0;
};

class SqliteBench {
 public:
  SqliteBench(const Options& o, Samples& samples) : o_(o), samples_(samples) {
    // Row bodies are slices of one pseudo-random text.
    std::mt19937_64 seq(7);
    text_.resize(64 * 1024 + std::size_t(o.row_bytes));
    for (auto& c : text_) {
      c = char('a' + seq() % 26);
    }
  }

  void run(int round, SqliteVariant& v) {
    removeDatabase(v.open.path);
    auto db = openDatabase(v);
    check(db->exec(kSchema), "create table");
    std::int64_t next_id = 1;
    for (const auto& phase : o_.inserts) {
      sync();
      Stopwatch watch;
      insert(*db, next_id, phase);
      samples_.add({round, v.name, insertOp(phase), phase.rows, watch.wall(), watch.cpu()});
    }

    // Reads come from the database file, not the WAL, through a fresh connection and cache.
    check(db->exec("PRAGMA wal_checkpoint(TRUNCATE)"), "checkpoint");
    v.pages = take(db->queryInt("PRAGMA page_count"), "page_count");
    v.page_bytes = take(db->queryInt("PRAGMA page_size"), "page_size");
    db.reset();
    db = openDatabase(v);
    sync();
    Stopwatch watch;
    auto misses = readRandom(*db, next_id - 1, o_.reads, 11);
    samples_.add({round, v.name, "point_read", o_.reads, watch.wall(), watch.cpu(),
                  double(misses) / double(o_.reads)});
    db.reset();
    timePread(round, v);

    // The same reads with the file evicted from the OS page cache, so that misses go to the disk.
    if (o_.cold_reads > 0) {
      evict(v.open.path);
      db = openDatabase(v);
      Stopwatch cold;
      misses = readRandom(*db, next_id - 1, o_.cold_reads, 17);
      samples_.add({round, v.name, "point_read_cold", o_.cold_reads, cold.wall(), cold.cpu(),
                    double(misses) / double(o_.cold_reads)});
      db.reset();
    }
    removeDatabase(v.open.path);
  }

 private:
  std::unique_ptr<store::Database> openDatabase(const SqliteVariant& v) {
    auto db = take(store::Database::open(v.open), "open " + v.name + " database");
    check(db->exec("PRAGMA cache_size=-" + std::to_string(o_.cache_kib)), "cache_size");
    return db;
  }

  void insert(store::Database& db, std::int64_t& next_id, const InsertPhase& phase) {
    auto stmt = take(db.prepare(kInsert), "prepare insert");
    auto row_bytes = std::size_t(o_.row_bytes);
    for (std::int64_t done = 0; done < phase.rows;) {
      check(db.exec("BEGIN"), "begin");
      for (std::int64_t n = 0; n < phase.per_txn && done < phase.rows; ++n, ++done, ++next_id) {
        auto at = std::size_t(next_id * 7919) % (text_.size() - row_bytes);
        stmt.bind(1, next_id).bind(2, next_id % 1000).bind(3, text_.substr(at, row_bytes));
        check(stmt.run(), "insert");
        stmt.reset();
      }
      check(db.exec("COMMIT"), "commit");
    }
  }

  // Reads `count` random rows (the same for both variants, given the seed). Returns the
  // page-cache misses: the pages read from the file.
  std::int64_t readRandom(store::Database& db, std::int64_t max_id, std::int64_t count,
                          std::uint64_t seed) {
    auto stmt = take(db.prepare(kSelect), "prepare select");
    int misses = 0, unused = 0;
    sqlite3_db_status(db.handle(), SQLITE_DBSTATUS_CACHE_MISS, &misses, &unused, 1);
    std::mt19937_64 keys(seed);  // the same keys for both variants
    std::int64_t found = 0;
    for (std::int64_t i = 0; i < count; ++i) {
      auto id = std::int64_t(keys() % std::uint64_t(max_id)) + 1;
      stmt.bind(1, id);
      if (take(stmt.step(), "select") && stmt.int64(0) == id % 1000 &&
          stmt.text(1).size() == std::size_t(o_.row_bytes)) {
        ++found;
      }
      stmt.reset();
    }
    if (found != count) {
      fail("point reads", std::to_string(count - found) + " rows missing or wrong");
    }
    sqlite3_db_status(db.handle(), SQLITE_DBSTATUS_CACHE_MISS, &misses, &unused, 0);
    return misses;
  }

  // A 4 KiB pread of a random page of the file, as a page-cache miss does (the file was just
  // written, so it comes from the OS page cache).
  void timePread(int round, const SqliteVariant& v) {
    int fd = ::open(v.open.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || v.pages <= 0) {
      fail("open " + v.open.path, "cannot read it back");
    }
    std::vector<char> page(std::size_t(v.page_bytes));
    std::mt19937_64 pages(13);
    Stopwatch watch;
    for (std::int64_t i = 0; i < o_.page_ops; ++i) {
      auto at = off_t(pages() % std::uint64_t(v.pages)) * v.page_bytes;
      if (::pread(fd, page.data(), page.size(), at) != ssize_t(page.size())) {
        fail("pread " + v.open.path, "short read");
      }
    }
    samples_.add({round, v.name, "pread_page", o_.page_ops, watch.wall(), watch.cpu()});
    ::close(fd);
  }

  // Drops the file's pages from the OS page cache (this file only; it was synced by the
  // checkpoint, and is synced again here since only clean pages can be dropped).
  static void evict(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || ::fdatasync(fd) != 0 || ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) != 0) {
      fail("evict " + path + " from the page cache", std::strerror(errno));
    }
    ::close(fd);
  }

  static void removeDatabase(const std::string& path) {
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
      std::error_code ec;
      fs::remove(path + suffix, ec);
    }
  }

  const Options& o_;
  Samples& samples_;
  std::string text_;
};

// The primitives the encrypting VFS runs per page (docs/storage-format.md, "Database pages"), at
// its sizes: AES-256-GCM over the page's 4,064 bytes under the epoch's keyed context (every page
// read and write), and what a page of an epoch not met before costs once: HKDF-Expand(database
// key, label || 12-byte epoch) and the key schedule of the new subkey (GCM with a fresh key).
void timePageCrypto(int round, const Options& o, Samples& samples) {
  constexpr std::size_t kInfoBytes = 14 + 12;  // "confab page v2" || epoch
  constexpr std::size_t kSealed = std::size_t(store::kPageBytes - store::kPageReserveBytes);
  auto database_key = randomKey();
  crypto::HkdfSha256 hkdf(database_key.bytes());
  crypto::Aes256Gcm gcm;
  std::array<std::uint8_t, kInfoBytes> info{};
  std::array<std::uint8_t, crypto::kKeyBytes> subkey{};
  std::array<std::uint8_t, crypto::kNonceBytes> nonce{};
  std::array<std::uint8_t, 12> aad{};
  std::array<std::uint8_t, crypto::kTagBytes> tag{};
  std::vector<std::uint8_t> page(kSealed, 0x5a), out(kSealed);
  core::CsprngRandom::instance().fill(info);
  if (!hkdf.expand(info, subkey)) {
    fail("hkdf_expand", "an OpenSSL call failed");
  }
  auto keyed = crypto::Aes256GcmKey::create(subkey);
  if (!keyed) {
    fail("gcm_keyed", "an OpenSSL call failed");
  }

  auto measure = [&](const std::string& op, const std::function<bool()>& once) {
    Stopwatch watch;
    for (std::int64_t i = 0; i < o.page_ops; ++i) {
      if (!once()) {
        fail(op, "an OpenSSL call failed");
      }
    }
    samples.add({round, "page", op, o.page_ops, watch.wall(), watch.cpu()});
  };
  measure("hkdf_expand", [&] { return hkdf.expand(info, subkey); });
  measure("gcm_seal_keyed", [&] { return keyed->seal(nonce, aad, page, out, tag); });
  measure("gcm_open_keyed", [&] { return keyed->open(nonce, aad, out, page, tag); });
  measure("gcm_open_fresh_key", [&] { return gcm.open(subkey, nonce, aad, out, page, tag); });
}

// ---- blob store ---------------------------------------------------------------------------------

// One account, one key; nothing persisted.
class OneDataKey final : public store::DataKeys {
 public:
  OneDataKey() : key_{core::CsprngRandom::instance().hex(16), randomKey()} {}
  Result<store::DataKey> keyForWriting(const std::string&) override { return key_; }
  Result<store::DataKey> keyById(const std::string& key_id) override {
    if (key_id != key_.id) {
      return makeError(ErrorCode::NotFound, "unknown data key " + key_id);
    }
    return key_;
  }

 private:
  store::DataKey key_;
};

void runBlob(int round, const Options& o, const fs::path& dir, Samples& samples) {
  OneDataKey keys;
  store::BlobStore blobs(dir, keys, core::CsprngRandom::instance());
  std::vector<std::uint8_t> piece(std::size_t(o.piece_kib) * 1024);
  core::CsprngRandom::instance().fill(piece);
  const std::int64_t total = o.blob_mib * 1024 * 1024;

  sync();
  Stopwatch write;
  auto writer = take(blobs.create("bench", std::nullopt, total), "blob create");
  for (std::int64_t done = 0; done < total; done += std::int64_t(piece.size())) {
    auto n = std::size_t(std::min<std::int64_t>(std::int64_t(piece.size()), total - done));
    check(writer->write({piece.data(), n}), "blob write");
  }
  double write_wall = write.wall(), write_cpu = write.cpu();
  auto info = take(writer->seal(), "blob seal");
  samples.add({round, "blob", "write", total, write_wall, write_cpu});
  samples.add({round, "blob", "write_sealed", total, write.wall(), write.cpu()});

  sync();
  Stopwatch read;
  auto reader = take(blobs.open(info), "blob open");
  std::int64_t got = 0;
  while (auto n = take(reader->read(piece), "blob read")) {
    got += std::int64_t(n);
  }
  samples.add({round, "blob", "read", got, read.wall(), read.cpu()});
  if (got != total) {
    fail("blob read", "got " + std::to_string(got) + " of " + std::to_string(total) + " bytes");
  }
  reader.reset();
  check(blobs.removeFile(info.id), "blob remove");
}

// ---- report -------------------------------------------------------------------------------------

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// 1234567.8 -> "1,234,568"
std::string grouped(double v) {
  std::string digits = fixed(v, 0);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    std::size_t left = digits.size() - i;
    out += digits[i];
    if (left > 1 && left % 3 == 1 && digits[i] != '-') {
      out += ',';
    }
  }
  return out;
}

std::string joined(const std::vector<double>& values, int decimals) {
  std::string out;
  for (auto v : values) {
    out += (out.empty() ? "" : ", ") + fixed(v, decimals);
  }
  return out;
}

void reportSqlite(const Options& o, const Samples& samples,
                  const std::vector<SqliteVariant>& variants, json& summary, std::ostream& md) {
  struct Row {
    std::string op, label;
  };
  std::vector<Row> rows;
  for (const auto& phase : o.inserts) {
    rows.push_back({insertOp(phase), "insert, " + grouped(double(phase.per_txn)) +
                                         (phase.per_txn == 1 ? " row" : " rows") +
                                         " per transaction"});
  }
  rows.push_back({"point_read", "point read by random primary key (file in the OS page cache)"});
  if (o.cold_reads > 0) {
    rows.push_back({"point_read_cold", "point read, file evicted from the OS page cache first"});
  }

  md << "| operation | plain ops/s | encrypted ops/s | **cost ratio**: time per op, encrypted / "
        "plain (ratio of the medians) | the same per round (median) | CPU µs per op, plain / "
        "encrypted | CPU ratio | CPU % of wall time, plain / encrypted |\n"
        "|---|---|---|---|---|---|---|---|\n";
  for (const auto& row : rows) {
    auto plain = samples.of("plain", row.op);
    auto enc = samples.of("encrypted", row.op);
    std::vector<double> ratios;
    for (std::size_t i = 0; i < plain.size() && i < enc.size(); ++i) {
      ratios.push_back(enc[i].wallMicrosPerOp() / plain[i].wallMicrosPerOp());
    }
    auto med = [&](const std::string& subject, auto f) {
      return samples.median(subject, row.op, f);
    };
    double p = med("plain", std::mem_fn(&Sample::opsPerSecond));
    double e = med("encrypted", std::mem_fn(&Sample::opsPerSecond));
    double pc = med("plain", std::mem_fn(&Sample::cpuMicrosPerOp));
    double ec = med("encrypted", std::mem_fn(&Sample::cpuMicrosPerOp));
    auto busy = [](const Sample& s) { return 100 * s.cpu / s.wall; };
    double pb = med("plain", busy), eb = med("encrypted", busy);
    summary[row.op] = {{"plain_ops_per_s", p},
                       {"encrypted_ops_per_s", e},
                       {"cost_ratio", p / e},
                       {"cost_ratio_per_round", ratios},
                       {"cost_ratio_per_round_median", median(ratios)},
                       {"plain_cpu_us_per_op", pc},
                       {"encrypted_cpu_us_per_op", ec},
                       {"cpu_ratio", ec / pc},
                       {"plain_cpu_pct_of_wall", pb},
                       {"encrypted_cpu_pct_of_wall", eb}};
    md << "| " << row.label << " | " << grouped(p) << " | " << grouped(e) << " | **"
       << fixed(p / e, 2) << "×** | " << joined(ratios, 2) << " (" << fixed(median(ratios), 2)
       << ") | " << fixed(pc, 1) << " / " << fixed(ec, 1) << " | " << fixed(ec / pc, 2) << "× | "
       << fixed(pb, 0) << " / " << fixed(eb, 0) << " |\n";
  }

  // Where an encrypted point read's extra time goes: its page-cache misses times the per-page
  // crypto, against the measured difference.
  auto perOp = [](const Sample& s) { return s.per_op.value_or(0); };
  double plain_misses = samples.median("plain", "point_read", perOp);
  double enc_misses = samples.median("encrypted", "point_read", perOp);
  double hkdf = samples.median("page", "hkdf_expand", std::mem_fn(&Sample::cpuMicrosPerOp));
  double open = samples.median("page", "gcm_open_keyed", std::mem_fn(&Sample::cpuMicrosPerOp));
  double seal = samples.median("page", "gcm_seal_keyed", std::mem_fn(&Sample::cpuMicrosPerOp));
  double fresh = samples.median("page", "gcm_open_fresh_key", std::mem_fn(&Sample::cpuMicrosPerOp));
  double pread = samples.median("plain", "pread_page", std::mem_fn(&Sample::cpuMicrosPerOp));
  auto cpu = [&](const std::string& subject) {
    return samples.median(subject, "point_read", std::mem_fn(&Sample::cpuMicrosPerOp));
  };
  double extra = cpu("encrypted") - cpu("plain");
  double predicted = enc_misses * open + (enc_misses - plain_misses) * pread;
  summary["page_costs_cpu_us"] = {{"pread_4k", pread},
                                  {"gcm_open_4064_keyed", open},
                                  {"gcm_seal_4064_keyed", seal},
                                  {"new_epoch_hkdf_expand", hkdf},
                                  {"new_epoch_gcm_open_4064_fresh_key", fresh}};
  summary["point_read_cache_misses_per_op"] = {{"plain", plain_misses}, {"encrypted", enc_misses}};
  summary["point_read_extra_cpu_us"] = {{"measured", extra}, {"from_page_costs", predicted}};
  md << "\nWhere an encrypted point read's extra time goes (CPU µs, medians):\n\n"
     << "- page-cache misses per point read: " << fixed(plain_misses, 2) << " plain, "
     << fixed(enc_misses, 2) << " encrypted; each is one 4 KiB pread (" << fixed(pread, 2)
     << " µs from the OS page cache, paid by both)\n"
     << "- per page read, encrypted only: AES-256-GCM open of 4,064 bytes under the epoch's keyed "
        "context "
     << fixed(open, 2) << " µs (per page written: GCM seal " << fixed(seal, 2)
     << " µs); once per epoch a file meets: HKDF-Expand " << fixed(hkdf, 2)
     << " µs + the key schedule (GCM open with a fresh key: " << fixed(fresh, 2) << " µs)\n"
     << "- extra CPU per encrypted point read: measured " << fixed(extra, 2)
     << " µs; misses × GCM open + extra misses × pread = " << fixed(predicted, 2) << " µs\n\n";

  for (const auto& v : variants) {
    md << "- " << v.name << " database: " << grouped(double(v.pages)) << " pages of "
       << v.page_bytes << " bytes = " << fixed(double(v.pages * v.page_bytes) / 1e6, 1) << " MB\n";
  }
  md << "- schema `" << kSchema << "`, " << o.row_bytes << "-byte bodies; inserts `" << kInsert
     << "` appended in the phases above, in that order; then " << grouped(double(o.reads))
     << " point reads `" << kSelect << "` of uniformly random ids, after `PRAGMA "
     << "wal_checkpoint(TRUNCATE)` and a reopen; then " << grouped(double(o.cold_reads))
     << " more after `posix_fadvise(DONTNEED)` of the database file and a reopen\n"
     << "- both opened by `Database::open` (WAL, synchronous=FULL, foreign_keys=ON, "
        "secure_delete=FAST), then `PRAGMA cache_size=-"
     << o.cache_kib << "` (" << grouped(o.cache_kib) << " KiB page cache); encrypted through "
     << "`EncryptingVfs` with reserve_bytes = " << store::kPageReserveBytes << "; SQLite "
     << sqlite3_libversion() << "\n"
     << "- the files had just been written, so the first reads come from the OS page cache, not "
        "the disk\n";
}

void reportBlob(const Options& o, const Samples& samples, json& summary, std::ostream& md) {
  double ref = median(o.openssl_mbps);
  md << "| blob store, " << o.blob_mib << " MiB in " << o.piece_kib
     << " KiB pieces | MB/s (median) | per round | CPU s per GB | vs `openssl speed -evp "
        "aes-256-gcm` |\n|---|---|---|---|---|\n";
  struct Row {
    std::string op, label;
  };
  std::vector<Row> rows = {
      {"write", "write: encrypt + pwrite (to the OS page cache), before seal"},
      {"write_sealed", "write including seal (fsync, rename, fsync of the directory)"},
      {"read", "read: pread + authenticate + decrypt"},
  };
  for (const auto& row : rows) {
    std::vector<double> per_round;
    for (const auto& s : samples.of("blob", row.op)) {
      per_round.push_back(s.opsPerSecond() / 1e6);
    }
    double m = median(per_round);
    double cpu = samples.median("blob", row.op,
                                [](const Sample& s) { return s.cpu / (double(s.ops) / 1e9); });
    auto& out = summary["blob_" + row.op];
    out = {{"mb_per_s", m}, {"per_round", per_round}, {"cpu_s_per_gb", cpu}};
    if (ref > 0) {
      out["vs_openssl"] = m / ref;
    }
    md << "| " << row.label << " | " << grouped(m) << " | " << joined(per_round, 0) << " | "
       << fixed(cpu, 2) << " | " << (ref > 0 ? fixed(m / ref, 2) + "×" : "n/a") << " |\n";
  }
  if (ref > 0) {
    summary["openssl_aes_256_gcm_16k_mb_per_s"] = ref;
    md << "| `openssl speed -evp aes-256-gcm`, 16,384-byte blocks, encryption on one core | "
       << grouped(ref) << " | " << joined(o.openssl_mbps, 0) << " | " << fixed(1e3 / ref, 2)
       << " | 1.00× |\n";
  }
  md << "\nMB = 10^6 bytes. Files written and read back at once: reads come from the OS page "
        "cache.\n";
}

int run(int argc, char** argv) {
  Options o = parseOptions(argc, argv);
  const char* tmpdir = std::getenv("TMPDIR");
  fs::path parent = !o.dir.empty() ? fs::path(o.dir) : fs::path(tmpdir ? tmpdir : "/tmp");
  std::string pattern = (parent / "confab-store-bench.XXXXXX").string();
  if (!mkdtemp(pattern.data())) {
    fail("mkdtemp " + pattern, std::strerror(errno));
  }
  struct Scratch {  // removed on every way out of run()
    fs::path path;
    ~Scratch() {
      std::error_code ec;
      fs::remove_all(path, ec);
    }
  } scratch{pattern};

  bool sqlite = o.only != "blob";
  bool blob = o.only != "sqlite";
  auto vfs = take(store::EncryptingVfs::create(randomKey()), "EncryptingVfs::create");
  std::vector<SqliteVariant> variants;
  if (o.variant != "encrypted") {
    SqliteVariant plain{"plain", {}};
    plain.open.path = (scratch.path / "plain.db").string();
    variants.push_back(plain);
  }
  if (o.variant != "plain") {
    SqliteVariant encrypted{"encrypted", {}};
    encrypted.open.path = (scratch.path / "encrypted.db").string();
    encrypted.open.vfs = vfs->name();
    encrypted.open.reserve_bytes = store::kPageReserveBytes;
    variants.push_back(encrypted);
  }

  Samples samples;
  SqliteBench bench(o, samples);
  for (int round = 1; round <= o.rounds; ++round) {
    if (sqlite) {
      // Odd rounds plain first, even rounds encrypted first.
      for (std::size_t i = 0; i < variants.size(); ++i) {
        bench.run(round, variants[round % 2 ? i : variants.size() - 1 - i]);
      }
      timePageCrypto(round, o, samples);
    }
    if (blob) {
      runBlob(round, o, scratch.path / "blobs", samples);
    }
  }
  if (vfs->corruptPages() != 0) {
    fail("encrypted database",
         std::to_string(vfs->corruptPages()) + " pages failed to authenticate");
  }

  json summary = json::object();
  std::ostringstream md;
  if (sqlite && variants.size() == 2) {
    reportSqlite(o, samples, variants, summary, md);
  }
  if (blob) {
    md << (sqlite ? "\n" : "");
    reportBlob(o, samples, summary, md);
  }
  std::cout << "BENCH_JSON " << json{{"summary", summary}}.dump() << "\n\n"
            << "<!-- store-bench:markdown -->\n"
            << md.str() << "<!-- store-bench:markdown -->\n";
  if (!o.markdown.empty()) {
    std::ofstream file(o.markdown);
    if (!(file << md.str()) || !file.flush()) {
      fail("write " + o.markdown, std::strerror(errno));
    }
  }
  return 0;
}

}  // namespace
}  // namespace confab::bench

int main(int argc, char** argv) {
  try {
    return confab::bench::run(argc, argv);
  } catch (const confab::bench::Failure& e) {
    std::cerr << "confab_store_bench: " << e.what() << "\n";
    return 1;
  }
}
