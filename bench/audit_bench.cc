// SPDX-License-Identifier: Apache-2.0
// confab_audit_bench: the audit part of `make bench` (`bench/run audit` runs it alone). It
// measures what recording a change in the audit log costs the write that makes the change, in one
// process and one run, through the daemon's real write path: confab::store::Store (its writer
// thread, WAL, synchronous=FULL) over the encrypting VFS, with the daemon's schema.
//
//   plain    the change alone: one INSERT of a row (account, id, a 200-byte value) per change;
//   audited  the same change and, in the same transaction, AuditLog::append of its entry (actor,
//            client, action, target, three details), with a signed checkpoint every 1000 entries
//            as the daemon's default does.
//
// Two transaction shapes: one change per transaction (each commit waits for a WAL fsync, as an
// API request does), and 100 changes per transaction (the fsync is shared, so what remains is
// CPU: B-tree work, sealing pages, and for the audit SHA-256 of the chain and the extra rows).
// Plain and audited alternate their order from round to round, each in a fresh database. The
// report gives medians over the rounds and the audited throughput as a fraction of the plain.
//
// Output (stdout): one `BENCH_JSON {...}` line per measurement, then a Markdown report; with
// --markdown=FILE the report also goes to FILE (bench/run copies it into docs/benchmarks.md).
// Options: --rounds=N (5), --single=N (1000 one-change transactions per sample), --batched=N
// (100 transactions of 100 changes per sample), --dir=DIR (scratch directory; default under
// $TMPDIR), --markdown=FILE.

#include <confab/audit/audit_log.h>
#include <confab/core/clock.h>
#include <confab/core/crypto.h>
#include <confab/core/random.h>
#include <confab/store/encrypting_vfs.h>
#include <confab/store/store.h>

#include <nlohmann/json.hpp>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace confab::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct Options {
  int rounds = 5;
  int single = 1000;
  int batched = 100;
  std::string dir;
  std::string markdown;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](std::string_view name) -> std::optional<std::string> {
      std::string prefix = "--" + std::string(name) + "=";
      if (a.rfind(prefix, 0) == 0) {
        return a.substr(prefix.size());
      }
      return std::nullopt;
    };
    if (auto v = value("rounds")) {
      o.rounds = std::max(1, std::atoi(v->c_str()));
    } else if (auto v = value("single")) {
      o.single = std::max(1, std::atoi(v->c_str()));
    } else if (auto v = value("batched")) {
      o.batched = std::max(1, std::atoi(v->c_str()));
    } else if (auto v = value("dir")) {
      o.dir = *v;
    } else if (auto v = value("markdown")) {
      o.markdown = *v;
    } else {
      std::cerr << "usage: confab_audit_bench [--rounds=N] [--single=N] [--batched=N] [--dir=DIR] "
                   "[--markdown=FILE]\n";
      std::exit(a == "--help" ? 0 : 2);
    }
  }
  return o;
}

template <typename T>
T take(Result<T> r, const char* what) {
  if (!r.ok()) {
    std::cerr << "confab_audit_bench: " << what << ": " << r.error().message << "\n";
    std::exit(1);
  }
  return std::move(r.value());
}

template <typename T>
void check(const Result<T>& s, const char* what) {
  if (!s.ok()) {
    std::cerr << "confab_audit_bench: " << what << ": " << s.error().message << "\n";
    std::exit(1);
  }
}

constexpr std::string_view kTable =
    "CREATE TABLE bench_changes (account_id TEXT NOT NULL, id INTEGER NOT NULL, value TEXT NOT "
    "NULL, PRIMARY KEY (account_id, id)) WITHOUT ROWID";
constexpr std::string_view kInsert =
    "INSERT INTO bench_changes (account_id, id, value) VALUES (?1, ?2, ?3)";

// One variant in a fresh encrypted store.
class Bench {
 public:
  Bench(const fs::path& dir, bool audited) : audited_(audited) {
    fs::remove_all(dir);
    fs::create_directories(dir);
    core::crypto::SecretKey key;
    core::CsprngRandom::instance().fill(key.mutableBytes());
    vfs_ = take(store::EncryptingVfs::create(key), "EncryptingVfs::create");
    store::StoreOptions so;
    so.database.path = (dir / "confab.db").string();
    so.database.vfs = vfs_->name();
    so.database.reserve_bytes = store::kPageReserveBytes;
    so.read_connections = 1;
    store_ = take(store::Store::open(so), "Store::open");
    check(store_->writeNow<int>([](store::Database& db) -> Result<int> {
      CONFAB_TRY(db.exec(kTable));
      return 0;
    }),
          "create table");
    std::array<std::uint8_t, 32> seed{};
    core::CsprngRandom::instance().fill(seed);
    std::shared_ptr<const core::crypto::Ed25519Key> signing =
        core::crypto::Ed25519Key::fromSeed(seed);
    audit_ = std::make_unique<audit::AuditLog>(signing, core::SystemClock::instance());
  }

  // `transactions` write transactions of `changes` changes each; returns changes per second.
  double run(int transactions, int changes) {
    const std::string value(200, 'v');
    auto start = Clock::now();
    for (int t = 0; t < transactions; ++t) {
      check(store_->writeNow<int>([&](store::Database& db) -> Result<int> {
        auto insert = db.prepare(kInsert);
        if (!insert.ok()) {
          return insert.error();
        }
        for (int c = 0; c < changes; ++c) {
          const std::int64_t id = ++next_id_;
          insert->reset();
          CONFAB_TRY(insert->bind(1, "acme").bind(2, id).bind(3, value).run());
          if (audited_) {
            audit::Entry e;
            e.account_id = "acme";
            e.actor = {"acme", "u" + std::to_string(id % 50), "", ""};
            e.client = {"192.0.2.10", 40000 + static_cast<int>(id % 1000)};
            e.action = "message.created";
            e.target_type = "message";
            e.target_id = std::to_string(id);
            e.details = {{"conversation_id", std::string("c42")},
                         {"bytes", std::int64_t{200}},
                         {"has_attachment", false}};
            auto rec = audit_->append(db, e);
            if (!rec.ok()) {
              return rec.error();
            }
          }
        }
        return 0;
      }),
            "write");
    }
    double secs = std::chrono::duration<double>(Clock::now() - start).count();
    return transactions * static_cast<double>(changes) / secs;
  }

 private:
  bool audited_;
  std::unique_ptr<store::EncryptingVfs> vfs_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<audit::AuditLog> audit_;
  std::int64_t next_id_ = 0;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  auto n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::string fixed(double v, int digits) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

int run(int argc, char** argv) {
  Options o = parse(argc, argv);
  fs::path dir = o.dir.empty() ? fs::temp_directory_path() /
                                     ("confab-audit-bench-" + std::to_string(::getpid()))
                               : fs::path(o.dir);
  struct Shape {
    std::string name;
    int transactions;
    int changes;
  };
  const std::vector<Shape> shapes = {{"1 change per transaction", o.single, 1},
                                     {"100 changes per transaction", o.batched, 100}};
  // results[shape][variant] = changes/s per round
  std::map<std::string, std::map<std::string, std::vector<double>>> results;
  for (int round = 0; round < o.rounds; ++round) {
    for (int k = 0; k < 2; ++k) {
      bool audited = (round + k) % 2 == 1;
      const std::string variant = audited ? "audited" : "plain";
      Bench b(dir / variant, audited);
      b.run(20, 1);  // warm-up: the first pages, the statement cache
      for (const auto& s : shapes) {
        double rate = b.run(s.transactions, s.changes);
        results[s.name][variant].push_back(rate);
        nlohmann::json j = {{"round", round},
                            {"variant", variant},
                            {"shape", s.name},
                            {"changes_per_second", rate}};
        std::cout << "BENCH_JSON " << j.dump() << "\n" << std::flush;
      }
    }
  }
  fs::remove_all(dir);

  std::ostringstream md;
  md << "| transactions | plain changes/s | audited changes/s | audited / plain (medians) | "
        "per round |\n|---|---|---|---|---|\n";
  for (const auto& s : shapes) {
    auto& r = results[s.name];
    std::vector<double> ratios;
    for (std::size_t i = 0; i < r["plain"].size(); ++i) {
      ratios.push_back(r["audited"][i] / r["plain"][i]);
    }
    double p = median(r["plain"]);
    double a = median(r["audited"]);
    md << "| " << s.name << " | " << fixed(p, 0) << " | " << fixed(a, 0) << " | **"
       << fixed(a / p, 2) << "×** | ";
    std::sort(ratios.begin(), ratios.end());
    for (std::size_t i = 0; i < ratios.size(); ++i) {
      md << (i ? ", " : "") << fixed(ratios[i], 2);
    }
    md << " |\n";
    nlohmann::json j = {{"summary", s.name}, {"plain", p}, {"audited", a}, {"ratio", a / p}};
    std::cout << "BENCH_JSON " << j.dump() << "\n";
  }
  std::cout << md.str();
  if (!o.markdown.empty()) {
    std::ofstream(o.markdown) << md.str();
  }
  return 0;
}

}  // namespace
}  // namespace confab::bench

int main(int argc, char** argv) {
  return confab::bench::run(argc, argv);
}
