// SPDX-License-Identifier: Apache-2.0
#pragma once
// Authenticator: turns a bearer token into the identity it stands for. The identity module
// provides the real one (OIDC access tokens, checked against revocation state); until an
// identity provider is configured, the daemon uses NoIdentityProvider, which accepts no token.
// Implementations are thread-safe.

#include <confab/core/result.h>
#include <confab/iam/policy.h>

#include <boost/asio/awaitable.hpp>

#include <string>
#include <string_view>

namespace confab::api {

// Who a request comes from, as the policy sees it (account, user, role, and the real identity
// under assume-role).
using Principal = iam::Actor;

class Authenticator {
 public:
  virtual ~Authenticator() = default;
  // Unauthenticated for a token that is unknown, expired, revoked or malformed.
  virtual boost::asio::awaitable<Result<Principal>> authenticate(std::string_view token) = 0;
};

class NoIdentityProvider final : public Authenticator {
 public:
  boost::asio::awaitable<Result<Principal>> authenticate(std::string_view) override {
    co_return makeError(ErrorCode::Unauthenticated, "no identity provider is configured");
  }
};

}  // namespace confab::api
