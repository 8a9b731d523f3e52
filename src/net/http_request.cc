// SPDX-License-Identifier: Apache-2.0
#include "net/http_request.h"

#include <boost/url/parse.hpp>

#include <cctype>

namespace confab::net {

std::string toLower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

Request toRequest(const BeastRequest& req, std::string remote_address, std::uint16_t remote_port,
                  std::string request_id) {
  Request r;
  r.method = std::string(req.method_string());
  r.target = std::string(req.target());
  auto q = r.target.find('?');
  r.query = q == std::string::npos ? std::string() : r.target.substr(q + 1);
  for (const auto& field : req) {
    r.headers.emplace_back(toLower(field.name_string()), std::string(field.value()));
  }
  r.body = req.body();
  r.remote_address = std::move(remote_address);
  r.remote_port = remote_port;
  r.request_id = std::move(request_id);
  return r;
}

bool decodePath(Request& r) {
  auto parsed = boost::urls::parse_origin_form(r.target);
  if (!parsed) {
    return false;
  }
  r.path = parsed->path();
  // A decoded NUL or a path without a leading slash is never a valid resource name.
  return !r.path.empty() && r.path.front() == '/' && r.path.find('\0') == std::string::npos;
}

}  // namespace confab::net
