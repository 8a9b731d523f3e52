// SPDX-License-Identifier: Apache-2.0
#include <confab/net/router.h>

namespace confab::net {
namespace {

std::vector<std::string_view> segments(std::string_view path) {
  std::vector<std::string_view> out;
  while (!path.empty()) {
    if (path.front() == '/') {
      path.remove_prefix(1);
      continue;
    }
    auto slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) {
      break;
    }
    path.remove_prefix(slash);
  }
  return out;
}

bool matches(const std::string& pattern, const std::string& path,
             std::map<std::string, std::string>& params) {
  // A trailing slash is a different resource: "/healthz/" is not "/healthz".
  if (path.size() > 1 && path.back() == '/') {
    return false;
  }
  auto want = segments(pattern);
  auto have = segments(path);
  if (want.size() != have.size()) {
    return false;
  }
  std::map<std::string, std::string> found;
  for (std::size_t i = 0; i < want.size(); ++i) {
    if (want[i].size() > 2 && want[i].front() == '{' && want[i].back() == '}') {
      found.emplace(std::string(want[i].substr(1, want[i].size() - 2)), std::string(have[i]));
    } else if (want[i] != have[i]) {
      return false;
    }
  }
  params = std::move(found);
  return true;
}

}  // namespace

void Router::add(std::string method, std::string pattern, Handler handler) {
  routes_.push_back(Route{std::move(method), std::move(pattern), std::move(handler), nullptr});
}

void Router::addWebSocket(std::string pattern, std::shared_ptr<WebSocketHandler> handler) {
  routes_.push_back(Route{"WS", std::move(pattern), nullptr, std::move(handler)});
}

Router::Match Router::match(const std::string& method, const std::string& path,
                            std::map<std::string, std::string>& params) const {
  Match m;
  for (const auto& r : routes_) {
    if (r.method == "WS") {
      continue;
    }
    std::map<std::string, std::string> p;
    if (!matches(r.pattern, path, p)) {
      continue;
    }
    m.path_known = true;
    m.allow += (m.allow.empty() ? "" : ", ") + r.method;
    if (r.method == "GET" && m.allow.find("HEAD") == std::string::npos) {
      m.allow += ", HEAD";
    }
    if (!m.route && (r.method == method || (method == "HEAD" && r.method == "GET"))) {
      m.route = &r;
      params = std::move(p);
    }
  }
  return m;
}

const Route* Router::matchWebSocket(const std::string& path) const {
  for (const auto& r : routes_) {
    std::map<std::string, std::string> p;
    if (r.method == "WS" && matches(r.pattern, path, p)) {
      return &r;
    }
  }
  return nullptr;
}

}  // namespace confab::net
