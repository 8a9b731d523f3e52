// SPDX-License-Identifier: Apache-2.0
// Every route the daemon registers must be described in docs/openapi.yaml.
#include <confab/app/routes.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>

namespace confab::app {
namespace {

// path -> methods, read from the `paths:` section by indentation (two spaces per level).
std::map<std::string, std::set<std::string>> documentedRoutes() {
  std::ifstream in(std::string(CONFAB_SOURCE_DIR) + "/docs/openapi.yaml");
  EXPECT_TRUE(in.good()) << "docs/openapi.yaml is missing";
  std::map<std::string, std::set<std::string>> out;
  std::string line;
  std::string current;
  bool in_paths = false;
  static const std::regex kPath(R"(^  (/[^:]*):\s*$)");
  static const std::regex kMethod(R"(^    (get|put|post|delete|patch|head|options):)");
  while (std::getline(in, line)) {
    if (line.rfind("paths:", 0) == 0) {
      in_paths = true;
      continue;
    }
    if (in_paths && !line.empty() && !std::isspace(static_cast<unsigned char>(line[0])) &&
        line[0] != '#') {
      in_paths = false;
    }
    std::smatch m;
    if (in_paths && std::regex_match(line, m, kPath)) {
      current = m[1];
      out[current];
    } else if (in_paths && !current.empty() && std::regex_search(line, m, kMethod)) {
      out[current].insert(m[1]);
    }
  }
  return out;
}

TEST(OpenApi, EveryRegisteredRouteIsDocumented) {
  auto dir = std::filesystem::temp_directory_path() / "confab-openapi-test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  config::Config config;
  store::StoreOptions so;
  so.database.path = (dir / "confab.db").string();
  so.read_connections = 1;
  auto store = store::Store::open(so);
  ASSERT_TRUE(store.ok()) << store.error().message;
  events::EventHub hub;
  events::EventBus bus(**store, hub, core::SystemClock::instance(), core::CsprngRandom::instance());
  api::NoIdentityProvider auth;
  core::Metrics metrics;
  std::atomic<bool> stopping{false};
  net::Router api_routes;
  net::Router metrics_routes;
  std::array<std::uint8_t, 32> seed{};
  std::shared_ptr<const core::crypto::Ed25519Key> key = core::crypto::Ed25519Key::fromSeed(seed);
  audit::AuditLog audit(key, core::SystemClock::instance());
  registerRoutes(RouteDependencies{config, **store, bus, auth, metrics, stopping, audit},
                 api_routes, metrics_routes);

  auto documented = documentedRoutes();
  std::size_t checked = 0;
  for (const auto* router : {&api_routes, &metrics_routes}) {
    for (const auto& r : router->routes()) {
      std::string method = r.method == "WS" ? "get" : r.method;
      std::transform(method.begin(), method.end(), method.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      ASSERT_TRUE(documented.count(r.pattern)) << r.pattern << " is not in docs/openapi.yaml";
      EXPECT_TRUE(documented[r.pattern].count(method))
          << method << " " << r.pattern << " is not in docs/openapi.yaml";
      ++checked;
    }
  }
  EXPECT_GE(checked, 4u);
  std::filesystem::remove_all(dir);
}

TEST(OpenApi, ParserSeesTheDocumentedPaths) {
  auto documented = documentedRoutes();
  ASSERT_TRUE(documented.count("/healthz"));
  EXPECT_TRUE(documented["/healthz"].count("get"));
  EXPECT_FALSE(documented.count("/nonexistent"));
}

}  // namespace
}  // namespace confab::app
