// SPDX-License-Identifier: Apache-2.0
#include <confab/api/access.h>
#include <confab/api/problem.h>
#include <confab/core/log.h>

#include <algorithm>
#include <cctype>

namespace confab::api {

audit::Actor auditActor(const Principal& p) {
  return audit::Actor{p.account_id, p.user_id, p.real_account_id, p.real_user_id};
}

audit::Client auditClient(const net::Request& r) {
  return audit::Client{r.remote_address, r.remote_port};
}

net::Response noSuchAccount(const net::Request& request) {
  return errorResponse(Error{ErrorCode::NotFound, "No such account.", {}}, request);
}

Access::Access(Authenticator& authenticator, store::Store& store, const audit::AuditLog& audit)
    : authenticator_(authenticator), store_(store), audit_(audit) {}

boost::asio::awaitable<std::variant<Principal, net::Response>> Access::authenticate(
    const net::Request& request) {
  std::size_t given = 0;
  for (const auto& [name, value] : request.headers) {
    given += name == "authorization";
  }
  if (given > 1) {
    // Two credentials: which one counts would be a guess, so neither does.
    co_return errorResponse(
        Error{ErrorCode::InvalidArgument, "The Authorization header is given more than once.",
              "Authorization"},
        request);
  }
  auto header = request.header("authorization");
  constexpr std::string_view kBearer = "bearer ";
  if (!header || header->size() <= kBearer.size() ||
      !std::equal(kBearer.begin(), kBearer.end(), header->begin(), [](char a, char b) {
        return a == std::tolower(static_cast<unsigned char>(b));
      })) {
    co_return errorResponse(
        Error{ErrorCode::Unauthenticated, "This request needs an Authorization: Bearer token.",
              "Authorization"},
        request);
  }
  auto principal = co_await authenticator_.authenticate(header->substr(kBearer.size()));
  if (!principal.ok()) {
    // The authenticator's reason (expired, revoked, unknown) stays in the log.
    core::logger("api")->info("request_id={} route={} token refused: {}", request.request_id,
                              request.route, principal.error().message);
    co_return errorResponse(
        Error{ErrorCode::Unauthenticated, "The access token is not valid.", "Authorization"},
        request);
  }
  co_return std::move(*principal);
}

boost::asio::awaitable<std::optional<net::Response>> Access::authorize(
    const net::Request& request, const Principal& principal, iam::Action action,
    const iam::Resource& resource, std::string target_type, std::string target_id) {
  auto verdict = iam::Policy::check(principal, action, resource);
  if (verdict.allowed()) {
    co_return std::nullopt;
  }
  audit::Entry entry{
      principal.account_id,   auditActor(principal),
      auditClient(request),   std::string(iam::actionName(action)),
      std::move(target_type), std::move(target_id),
      audit::Outcome::Denied, {{"reason", verdict.reason}, {"request_id", request.request_id}}};
  auto recorded = co_await store_.write<audit::Record>(
      [&](store::Database& db) { return audit_.append(db, entry); });
  if (!recorded.ok()) {
    // Refusing is what matters; a refusal that cannot be recorded is still refused, and logged.
    core::logger("api")->error("request_id={} could not record a refused {}: {}",
                               request.request_id, iam::actionName(action),
                               recorded.error().message);
  }
  if (verdict.decision == iam::Decision::NotFound) {
    co_return noSuchAccount(request);
  }
  co_return errorResponse(
      Error{ErrorCode::PermissionDenied, "Your role may not do this: " + verdict.reason + ".", {}},
      request);
}

}  // namespace confab::api
