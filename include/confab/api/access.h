// SPDX-License-Identifier: Apache-2.0
#pragma once
// Access: what every REST handler does before it touches data — authenticate the Bearer token,
// then ask iam::Policy. A refusal is recorded in the audit trail of the actor's own account
// (outcome "denied", SPEC.md §7: refused attempts included) and answered 404 for anything outside
// the actor's account (the body of a missing object) or 403 inside it.
// Thread-safe; every reference must outlive it.

#include <confab/api/authenticator.h>
#include <confab/audit/audit_log.h>
#include <confab/iam/policy.h>
#include <confab/net/http.h>
#include <confab/store/store.h>

#include <boost/asio/awaitable.hpp>

#include <optional>
#include <string>
#include <variant>

namespace confab::api {

// The audit trail's view of who made a request and from where.
audit::Actor auditActor(const Principal& principal);
audit::Client auditClient(const net::Request& request);

// The 404 of a missing account: the same for one that does not exist and one of another tenant.
net::Response noSuchAccount(const net::Request& request);

class Access {
 public:
  Access(Authenticator& authenticator, store::Store& store, const audit::AuditLog& audit);

  // The Principal of the request's "Authorization: Bearer ..." header, or the 401 to send.
  boost::asio::awaitable<std::variant<Principal, net::Response>> authenticate(
      const net::Request& request);

  // Policy::check; nullopt when allowed, else the answer to send (the refusal is audited first).
  // `target_type`/`target_id` name what was asked for, for the audit entry.
  boost::asio::awaitable<std::optional<net::Response>> authorize(
      const net::Request& request, const Principal& principal, iam::Action action,
      const iam::Resource& resource, std::string target_type, std::string target_id);

  store::Store& store() const { return store_; }
  const audit::AuditLog& audit() const { return audit_; }

 private:
  Authenticator& authenticator_;
  store::Store& store_;
  const audit::AuditLog& audit_;
};

}  // namespace confab::api
