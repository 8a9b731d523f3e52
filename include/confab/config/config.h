// SPDX-License-Identifier: Apache-2.0
#pragma once
// Config: every setting of confabd, typed and validated, with defaults that run out of the box.
// Sources, later ones winning: defaults < TOML file (--config) < CONFAB_* environment < flags.
// Every key `section.name` has the variable CONFAB_SECTION_NAME (lists: comma-separated); a
// top-level key `name` has CONFAB_NAME.
// A Config is a plain value: copy it freely; it is not modified after loading.

#include <confab/core/result.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace confab::config {

struct Listen {
  std::string address;
  int port = 0;  // 0: pick a free port (the bound ports are written to --ready-file)
};

struct Config {
  // Top-level keys (no section): in TOML they come before the first [section].
  // The master key file (docs/operations.md, "Keys"); empty: the embedded default,
  // ${XDG_CONFIG_HOME:-$HOME/.config}/confab/master-<hash of data_dir>.key, created on first start.
  std::string master_key_file;
  struct Server {
    std::string data_dir = "./var";
    std::string public_url;  // empty: https://<bound HTTPS address>:<port>
    Listen https{"127.0.0.1", 8443};
    Listen http{"127.0.0.1", 8080};
    Listen metrics{"127.0.0.1", 9464};
    int threads = 2;
    int shutdown_grace_ms = 10000;
  } server;
  struct Tls {
    std::string cert_file;  // empty: <data_dir>/tls/cert.pem, self-signed on first start
    std::string key_file;   // empty: <data_dir>/tls/key.pem
  } tls;
  struct Limits {
    int header_bytes = 16 * 1024;
    std::int64_t body_bytes = 1024 * 1024;
    int request_timeout_ms = 30000;
    int idle_timeout_ms = 60000;
    int connections = 10000;
    int json_depth = 32;
    int requests_per_second = 100;  // per client address, sustained
    int request_burst = 200;        // per client address, bucket size
  } limits;
  struct WebSocket {
    std::vector<std::string> allowed_origins;  // empty: only public_url's origin
    int max_message_bytes = 64 * 1024;
    int auth_timeout_ms = 5000;
    int ping_interval_ms = 30000;
    int messages_per_second = 20;
    int message_burst = 50;
    int send_queue_messages = 1024;
  } websocket;
  struct Events {
    int retention_seconds = 24 * 3600;
    int retention_count = 10000;  // per user
  } events;
  struct Store {
    int read_connections = 4;
    int busy_timeout_ms = 5000;
    // SQLite's page cache per connection (the writer and each reader). Pages it holds are read
    // without decryption; misses cost an AES-GCM open each (docs/benchmarks.md, "Storage").
    int page_cache_kib = 2048;
  } store;
  struct Audit {
    // A chain's head is signed at least every this many entries, and every interval (if it
    // grew); the checkpoint also goes to the log (docs/audit.md).
    int checkpoint_entries = 1000;
    int checkpoint_interval_seconds = 60;
    int retention_days = 730;      // per account unless its Customer Admin sets another
    int min_retention_days = 180;  // the least an account may set
  } audit;
  struct Retention {
    int interval_seconds = 60;  // between the end of one run and the start of the next
    int batch_size = 1000;      // items per transaction
  } retention;
  // SPEC.md §7: one node serves one storage region; accounts are placed by country.
  struct Region {
    std::string serves = "eu";
    // "CC=region" by ISO 3166-1 alpha-2 country: the EU/EEA to eu, US and CA to us, AU to au.
    std::vector<std::string> countries = {
        "AT=eu", "BE=eu", "BG=eu", "HR=eu", "CY=eu", "CZ=eu", "DK=eu", "EE=eu", "FI=eu",
        "FR=eu", "DE=eu", "GR=eu", "HU=eu", "IE=eu", "IT=eu", "LV=eu", "LT=eu", "LU=eu",
        "MT=eu", "NL=eu", "PL=eu", "PT=eu", "RO=eu", "SK=eu", "SI=eu", "ES=eu", "SE=eu",
        "IS=eu", "LI=eu", "NO=eu", "US=us", "CA=us", "AU=au"};
  } region;
  // Argon2id for stored passwords (iam::PasswordHasher); changing them re-hashes at sign-in.
  struct Passwords {
    int argon2_memory_kib = 65536;
    int argon2_iterations = 3;
    int argon2_parallelism = 1;
  } passwords;
  struct Log {
    std::string format = "text";  // text | json
    std::string level = "info";
  } log;
};

struct LoadOptions {
  std::optional<std::string> file;  // TOML file, if any
  std::map<std::string, std::string>
      environment;                               // CONFAB_* variables (see environmentFromProcess)
  std::map<std::string, std::string> overrides;  // key -> value, from command-line flags
};

// Builds and validates a Config. Errors are InvalidArgument with `field` set to the key and a
// message of the form "<key>: <reason>", suitable as the one line printed before exit code 2.
Result<Config> load(const LoadOptions& options);

// The storage region of accounts in `country` (ISO 3166-1 alpha-2, any case) by
// region.countries; empty when the country is not mapped.
std::string regionForCountry(const Config& config, std::string_view country);

// The CONFAB_* variables of this process.
std::map<std::string, std::string> environmentFromProcess();

// Every key with its current value, as TOML (for docs and --check-config --verbose style output).
std::string describe(const Config& config);

}  // namespace confab::config
