// SPDX-License-Identifier: Apache-2.0
#include <confab/api/problem.h>
#include <confab/core/log.h>

namespace confab::api {

int httpStatus(ErrorCode code) {
  switch (code) {
    case ErrorCode::InvalidArgument:
      return 400;
    case ErrorCode::Unauthenticated:
      return 401;
    case ErrorCode::PermissionDenied:
      return 403;
    case ErrorCode::NotFound:
      return 404;
    case ErrorCode::AlreadyExists:
      return 409;
    case ErrorCode::FailedPrecondition:
      return 409;
    case ErrorCode::ResourceExhausted:
      return 429;
    case ErrorCode::Unavailable:
      return 503;
    case ErrorCode::Internal:
      return 500;
  }
  return 500;
}

net::Response errorResponse(const Error& error, const net::Request& request) {
  int status = httpStatus(error.code);
  std::string detail = error.message;
  if (status >= 500) {
    // The message of an internal error may name files or SQL: log it, tell the client less.
    core::logger("api")->error("request_id={} route={} {}: {}", request.request_id, request.route,
                               toString(error.code), error.message);
    detail = status == 503 ? "The service is temporarily unavailable; retry later."
                           : "The server failed to handle this request.";
  }
  std::vector<std::pair<std::string, std::string>> members;
  members.emplace_back("code", net::jsonString(toString(error.code)));
  if (!error.field.empty() && status < 500) {
    members.emplace_back("field", net::jsonString(error.field));
  }
  net::Headers headers;
  if (status == 401) {
    headers.emplace_back("WWW-Authenticate", "Bearer");
  }
  return net::problem(status, "", detail, request.request_id, headers, members);
}

}  // namespace confab::api
