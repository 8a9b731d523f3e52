// SPDX-License-Identifier: Apache-2.0
#pragma once
// From Beast's parsed request to Confab's Request: header names folded to lower case, the
// origin-form target split into a percent-decoded path and the raw query. Shared by the HTTP
// session and the request-path fuzz target, so the fuzzer exercises the code that serves.

#include <confab/net/http.h>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace confab::net {

using BeastRequest = boost::beast::http::request<boost::beast::http::string_body>;

Request toRequest(const BeastRequest& req, std::string remote_address, std::uint16_t remote_port,
                  std::string request_id);

// Sets r.path from r.target; false if the target is not a valid origin-form path.
bool decodePath(Request& r);

std::string toLower(std::string_view s);

}  // namespace confab::net
