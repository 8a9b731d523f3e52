// SPDX-License-Identifier: Apache-2.0
#include <confab/app/cli.h>
#include <confab/config/config.h>

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <vector>

namespace confab::config {
namespace {

std::string writeFile(const std::string& text) {
  char name[] = "/tmp/confab-config-XXXXXX";
  int fd = mkstemp(name);
  close(fd);
  std::ofstream(name) << text;
  return name;
}

TEST(Config, DefaultsRunOutOfTheBox) {
  auto c = load({});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->server.data_dir, "./var");
  EXPECT_EQ(c->server.https.address, "127.0.0.1");
  EXPECT_EQ(c->server.https.port, 8443);
  EXPECT_EQ(c->server.http.port, 8080);
  EXPECT_EQ(c->server.metrics.address, "127.0.0.1");
}

TEST(Config, FileThenEnvironmentThenFlags) {
  auto file =
      writeFile("[server]\nhttps_port = 9443\nhttp_port = 9080\n[limits]\nbody_bytes = 4096\n");
  LoadOptions o;
  o.file = file;
  o.environment["CONFAB_SERVER_HTTP_PORT"] = "7080";
  o.overrides["server.data_dir"] = "/srv/confab";
  auto c = load(o);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->server.https.port, 9443);
  EXPECT_EQ(c->server.http.port, 7080);
  EXPECT_EQ(c->limits.body_bytes, 4096);
  EXPECT_EQ(c->server.data_dir, "/srv/confab");
  std::remove(file.c_str());
}

TEST(Config, OutOfRangeNamesKeyAndReason) {
  LoadOptions o;
  o.environment["CONFAB_SERVER_HTTPS_PORT"] = "70000";
  auto c = load(o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().field, "server.https_port");
  EXPECT_NE(c.error().message.find("between 0 and 65535"), std::string::npos);
}

TEST(Config, UnknownKeysAndVariablesAreRefused) {
  auto file = writeFile("[server]\nhttps_prot = 1\n");
  LoadOptions o;
  o.file = file;
  auto c = load(o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().field, "server.https_prot");
  std::remove(file.c_str());

  LoadOptions e;
  e.environment["CONFAB_SERVER_HTTPS_PROT"] = "1";
  auto ce = load(e);
  ASSERT_FALSE(ce.ok());
  EXPECT_EQ(ce.error().field, "CONFAB_SERVER_HTTPS_PROT");
}

TEST(Config, WrongTypesAndValuesAreRefused) {
  struct Case {
    std::string toml;
    std::string field;
  } cases[] = {
      {"[server]\nhttps_port = \"443\"\n", "server.https_port"},
      {"[server]\nhttps_address = \"example.com\"\n", "server.https_address"},
      {"[server]\npublic_url = \"http://example.com\"\n", "server.public_url"},
      {"[server]\npublic_url = \"https://example.com/path\"\n", "server.public_url"},
      {"[log]\nformat = \"xml\"\n", "log.format"},
      {"[websocket]\nallowed_origins = \"https://a.example\"\n", "websocket.allowed_origins"},
      {"[websocket]\nallowed_origins = [\"a.example\"]\n", "websocket.allowed_origins"},
      {"[tls]\ncert_file = \"/x.pem\"\n", "tls.cert_file"},
      {"[limits]\nbody_bytes = 0\n", "limits.body_bytes"},
      {"[audit]\nmin_retention_days = 800\n", "audit.min_retention_days"},
      {"[retention]\nbatch_size = 0\n", "retention.batch_size"},
      {"[region]\nserves = \"EU West\"\n", "region.serves"},
      {"[region]\ncountries = [\"Canada=us\"]\n", "region.countries"},
      {"[region]\ncountries = [\"CA=us\", \"ca=eu\"]\n", "region.countries"},
      {"[region]\ncountries = [\"CA=\"]\n", "region.countries"},
  };
  for (const auto& k : cases) {
    auto file = writeFile(k.toml);
    LoadOptions o;
    o.file = file;
    auto c = load(o);
    EXPECT_FALSE(c.ok()) << k.toml;
    if (!c.ok()) {
      EXPECT_EQ(c.error().field, k.field) << k.toml << " -> " << c.error().message;
    }
    std::remove(file.c_str());
  }
}

TEST(Config, SyntaxErrorNamesLine) {
  auto file = writeFile("[server]\nhttps_port = = 1\n");
  LoadOptions o;
  o.file = file;
  auto c = load(o);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find(file + ":2:"), std::string::npos) << c.error().message;
  std::remove(file.c_str());
}

TEST(Config, ListFromEnvironmentIsCommaSeparated) {
  LoadOptions o;
  o.environment["CONFAB_WEBSOCKET_ALLOWED_ORIGINS"] = "https://a.example, https://b.example:8443";
  auto c = load(o);
  ASSERT_TRUE(c.ok()) << c.error().message;
  ASSERT_EQ(c->websocket.allowed_origins.size(), 2u);
  EXPECT_EQ(c->websocket.allowed_origins[1], "https://b.example:8443");
}

TEST(Config, DescribeRoundTripsThroughToml) {
  auto c = load({});
  ASSERT_TRUE(c.ok());
  auto file = writeFile(describe(*c));
  LoadOptions o;
  o.file = file;
  auto again = load(o);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(describe(*again), describe(*c));
  std::remove(file.c_str());
}

}  // namespace
}  // namespace confab::config

namespace confab::config {
namespace {

TEST(Config, CountriesMapToRegionsByDefaultAndByConfiguration) {
  auto defaults = load({});
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->region.serves, "eu");
  EXPECT_EQ(regionForCountry(*defaults, "DE"), "eu");
  EXPECT_EQ(regionForCountry(*defaults, "no"), "eu");  // Norway: EEA
  EXPECT_EQ(regionForCountry(*defaults, "CA"), "us");
  EXPECT_EQ(regionForCountry(*defaults, "US"), "us");
  EXPECT_EQ(regionForCountry(*defaults, "AU"), "au");
  EXPECT_EQ(regionForCountry(*defaults, "JP"), "");
  EXPECT_EQ(regionForCountry(*defaults, "DEU"), "");
  LoadOptions o;
  o.environment["CONFAB_REGION_COUNTRIES"] = "CA=ca, US=us";
  o.environment["CONFAB_REGION_SERVES"] = "ca";
  auto c = load(o);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(regionForCountry(*c, "CA"), "ca");
  EXPECT_EQ(regionForCountry(*c, "DE"), "");
}

// The documented example must name every key with its default, so that it stays the reference.
TEST(Config, ExampleFileListsEveryKeyWithItsDefault) {
  LoadOptions o;
  o.file = std::string(CONFAB_SOURCE_DIR) + "/config/confabd.example.toml";
  auto example = load(o);
  ASSERT_TRUE(example.ok()) << example.error().message;
  auto defaults = load({});
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(describe(*example), describe(*defaults));
  std::ifstream in(*o.file);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string section;
  for (const auto& line : [&] {
         std::vector<std::string> lines;
         std::istringstream s(describe(*defaults));
         for (std::string l; std::getline(s, l);)
           lines.push_back(l);
         return lines;
       }()) {
    if (line.empty() || line[0] == '[') {
      continue;
    }
    auto key = line.substr(0, line.find(' '));
    EXPECT_NE(text.find("\n" + key + " "), std::string::npos) << key << " missing from the example";
  }
}

}  // namespace
}  // namespace confab::config

namespace confab::config {
namespace {

TEST(Config, ListenersMayNotShareAnAddressAndPort) {
  LoadOptions o;
  o.environment["CONFAB_SERVER_METRICS_PORT"] = "8443";
  auto c = load(o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().field, "server.metrics_port");
  o.environment["CONFAB_SERVER_METRICS_ADDRESS"] = "::1";
  EXPECT_TRUE(load(o).ok());
}

TEST(Config, OriginPortsAreValidated) {
  for (const char* bad :
       {"https://host:", "https://host:99999", "https://host:abc", "https://:443"}) {
    LoadOptions o;
    o.environment["CONFAB_SERVER_PUBLIC_URL"] = bad;
    EXPECT_FALSE(load(o).ok()) << bad;
  }
  for (const char* good :
       {"https://host:8443", "https://[::1]:8443", "https://[::1]", "https://h"}) {
    LoadOptions o;
    o.environment["CONFAB_SERVER_PUBLIC_URL"] = good;
    auto c = load(o);
    EXPECT_TRUE(c.ok()) << good << ": " << (c.ok() ? "" : c.error().message);
  }
}

}  // namespace
}  // namespace confab::config

namespace confab::config {
namespace {

// master_key_file is a top-level key: before any [section] in TOML, CONFAB_MASTER_KEY_FILE in the
// environment, --master-key-file on the command line.
TEST(Config, MasterKeyFileIsATopLevelKey) {
  EXPECT_EQ(load({})->master_key_file, "");
  auto file = writeFile("master_key_file = \"/etc/confab/master.key\"\n[server]\nhttps_port = 1\n");
  LoadOptions o;
  o.file = file;
  auto c = load(o);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->master_key_file, "/etc/confab/master.key");
  EXPECT_EQ(c->server.https.port, 1);

  o.environment["CONFAB_MASTER_KEY_FILE"] = "/run/secrets/master.key";
  c = load(o);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->master_key_file, "/run/secrets/master.key");

  o.overrides["master_key_file"] = "/flag.key";
  c = load(o);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->master_key_file, "/flag.key");
  std::remove(file.c_str());

  // It round-trips through describe(), ahead of the first section.
  auto text = describe(*c);
  EXPECT_EQ(text.rfind("master_key_file = \"/flag.key\"\n\n[server]\n", 0), 0u) << text;
}

TEST(Config, MasterKeyFileInTheWrongPlaceIsRefused) {
  struct Case {
    std::string toml;
    std::string field;
  } cases[] = {
      // After [server] it belongs to that section (TOML), where there is no such key.
      {"[server]\nmaster_key_file = \"/k\"\n", "server.master_key_file"},
      {"master_key_file = 1\n", "master_key_file"},
      {"master_key_fiel = \"/k\"\n", "master_key_fiel"},
  };
  for (const auto& k : cases) {
    auto file = writeFile(k.toml);
    LoadOptions o;
    o.file = file;
    auto c = load(o);
    EXPECT_FALSE(c.ok()) << k.toml;
    if (!c.ok()) {
      EXPECT_EQ(c.error().field, k.field) << k.toml << " -> " << c.error().message;
    }
    std::remove(file.c_str());
  }
}

// The real command line: --master-key-file beats CONFAB_MASTER_KEY_FILE beats the file.
TEST(Config, MasterKeyFileFlagOnTheCommandLine) {
  auto file = writeFile("master_key_file = \"/from/file.key\"\n");
  auto run = [&](std::vector<std::string> args) {
    std::vector<char*> argv;
    for (auto& a : args) {
      argv.push_back(a.data());
    }
    ::testing::internal::CaptureStdout();
    int rc = app::runCommandLine(static_cast<int>(argv.size()), argv.data());
    auto out = ::testing::internal::GetCapturedStdout();
    EXPECT_EQ(rc, 0) << out;
    return out;
  };
  EXPECT_NE(run({"confabd", "--config", file, "--check-config"})
                .find("\nmaster_key_file = \"/from/file.key\"\n"),
            std::string::npos);
  ::setenv("CONFAB_MASTER_KEY_FILE", "/from/env.key", 1);
  EXPECT_NE(run({"confabd", "--config", file, "--check-config"})
                .find("\nmaster_key_file = \"/from/env.key\"\n"),
            std::string::npos);
  EXPECT_NE(
      run({"confabd", "--config", file, "--master-key-file", "/from/flag.key", "--check-config"})
          .find("\nmaster_key_file = \"/from/flag.key\"\n"),
      std::string::npos);
  ::unsetenv("CONFAB_MASTER_KEY_FILE");
  std::remove(file.c_str());
}

}  // namespace
}  // namespace confab::config
