// SPDX-License-Identifier: Apache-2.0
// The audit API (docs/audit.md, docs/openapi.yaml): read, export and verify an account's audit
// log, read the public key of its checkpoints, and read or set its retention. Nothing here
// modifies or deletes an entry.
#include <confab/api/access.h>
#include <confab/api/json_body.h>
#include <confab/api/problem.h>
#include <confab/api/routes.h>
#include <confab/core/crypto.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <date/date.h>
#include <memory>
#include <set>
#include <sstream>

namespace confab::api {
namespace {

using json = nlohmann::json;
using Awaitable = boost::asio::awaitable<net::Response>;

net::Response invalid(const net::Request& req, std::string field, std::string message) {
  return errorResponse(Error{ErrorCode::InvalidArgument, std::move(message), std::move(field)},
                       req);
}

// RFC 3339 ("2026-12-04T07:00:00Z", "...T08:00:00.250+01:00") or Unix milliseconds.
std::optional<std::int64_t> parseTime(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("0123456789") == std::string::npos && s.size() <= 15) {
    std::int64_t v = 0;
    std::from_chars(s.data(), s.data() + s.size(), v);
    return v;
  }
  std::string t = s;
  // An unencoded '+' of an offset arrives as a space (form encoding): take it back.
  std::replace(t.begin(), t.end(), ' ', '+');
  if (!t.empty() && (t.back() == 'Z' || t.back() == 'z')) {
    t.back() = '+';
    t += "00:00";
  }
  if (t.size() < 20 || (t[10] != 'T' && t[10] != 't')) {
    return std::nullopt;
  }
  t[10] = 'T';
  std::istringstream in(t);
  date::sys_time<std::chrono::milliseconds> tp;
  in >> date::parse("%FT%T%Ez", tp);
  if (in.fail() || in.peek() != std::char_traits<char>::eof()) {
    return std::nullopt;
  }
  return tp.time_since_epoch().count();
}

// The filters common to listing and export, from the query string; unknown parameters are
// refused so that a misspelt filter never silently returns everything.
std::variant<audit::Query, net::Response> parseQuery(const net::Request& req,
                                                     const std::string& account_id, bool paged) {
  static const std::set<std::string> kFilters = {"from",        "to",        "actor",   "action",
                                                 "target_type", "target_id", "outcome", "order"};
  audit::Query q;
  q.account_id = account_id;
  std::istringstream params(req.query);
  std::set<std::string> seen;
  for (std::string pair; std::getline(params, pair, '&');) {
    if (pair.empty()) {
      continue;
    }
    auto name = pair.substr(0, pair.find('='));
    if (name.empty()) {
      return invalid(req, "query", "A query parameter has no name.");
    }
    if (!seen.insert(name).second) {
      return invalid(req, name.substr(0, 64),
                     "The query parameter \"" + name.substr(0, 64) + "\" is given twice.");
    }
    if (!kFilters.contains(name) && !(paged && (name == "cursor" || name == "limit"))) {
      return invalid(req, name,
                     "Unknown query parameter \"" + name.substr(0, 64) + "\"; the filters are " +
                         "from, to, actor, action, target_type, target_id, outcome, order" +
                         (paged ? ", cursor and limit." : "."));
    }
  }
  for (const char* name : {"from", "to"}) {
    if (auto v = req.queryParam(name)) {
      auto t = parseTime(*v);
      if (!t) {
        return invalid(
            req, name,
            std::string(name) +
                " must be an RFC 3339 time (2026-12-04T07:00:00Z) or Unix milliseconds.");
      }
      (std::string_view(name) == "from" ? q.from_ms : q.to_ms) = *t;
    }
  }
  if (q.from_ms && q.to_ms && *q.from_ms > *q.to_ms) {
    return invalid(req, "to", "to must not be before from.");
  }
  for (auto [name, field] : {std::pair<const char*, std::string*>{"actor", &q.actor_user_id},
                             {"action", &q.action},
                             {"target_type", &q.target_type},
                             {"target_id", &q.target_id}}) {
    if (auto v = req.queryParam(name)) {
      if (v->empty() || v->size() > 256) {
        return invalid(req, name, std::string(name) + " must be 1 to 256 characters.");
      }
      *field = *v;
    }
  }
  if (auto o = req.queryParam("outcome")) {
    q.outcome = audit::outcomeFromName(*o);
    if (!q.outcome) {
      return invalid(req, "outcome", "outcome must be success, denied or failure.");
    }
  }
  if (auto o = req.queryParam("order")) {
    if (*o != "asc" && *o != "desc") {
      return invalid(req, "order", "order must be asc (oldest first) or desc.");
    }
    q.newest_first = *o == "desc";
  }
  if (paged) {
    if (auto l = req.queryParam("limit")) {
      int v = 0;
      auto [end, ec] = std::from_chars(l->data(), l->data() + l->size(), v);
      if (ec != std::errc() || end != l->data() + l->size() || v < 1 || v > 1000) {
        return invalid(req, "limit", "limit must be an integer from 1 to 1000.");
      }
      q.limit = v;
    }
    if (auto c = req.queryParam("cursor")) {
      std::int64_t v = 0;
      auto [end, ec] = std::from_chars(c->data(), c->data() + c->size(), v);
      if (ec != std::errc() || end != c->data() + c->size() || v < 0) {
        return invalid(req, "cursor", "cursor must be the next_cursor of an earlier page.");
      }
      q.after = v;
    }
  }
  return q;
}

json filterDetails(const audit::Query& q) {
  json j = json::object();
  if (q.from_ms) {
    j["from"] = *q.from_ms;
  }
  if (q.to_ms) {
    j["to"] = *q.to_ms;
  }
  if (!q.actor_user_id.empty()) {
    j["actor"] = q.actor_user_id;
  }
  if (!q.action.empty()) {
    j["action"] = q.action;
  }
  if (!q.target_type.empty()) {
    j["target_type"] = q.target_type;
  }
  if (!q.target_id.empty()) {
    j["target_id"] = q.target_id;
  }
  if (q.outcome) {
    j["outcome"] = std::string(audit::outcomeName(*q.outcome));
  }
  return j;
}

// For routes that take no query parameters: a 400 naming the first one, if any.
std::optional<net::Response> noQuery(const net::Request& req) {
  if (req.query.empty()) {
    return std::nullopt;
  }
  auto name = req.query.substr(0, std::min(req.query.find_first_of("=&"), std::size_t{64}));
  return invalid(req, name.empty() ? "query" : name, "This route takes no query parameters.");
}

// An account id as it may appear in a file name: anything but [A-Za-z0-9._-] becomes '_'.
std::string fileNamePart(const std::string& s) {
  std::string out = s.substr(0, 64);
  for (char& c : out) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
      c = '_';
    }
  }
  return out;
}

audit::Details toDetails(const json& j) {
  audit::Details d;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it->is_number_integer()) {
      d.emplace_back(it.key(), it->get<std::int64_t>());
    } else {
      d.emplace_back(it.key(), it->get<std::string>().substr(0, 256));
    }
  }
  return d;
}

struct Handlers {
  std::shared_ptr<Access> access;
  AuditRoutesOptions options;

  // Authentication and the policy for an action on the account named in the path.
  boost::asio::awaitable<std::variant<Principal, net::Response>> admit(const net::Request& req,
                                                                       iam::Action action,
                                                                       const std::string& account) {
    auto who = co_await access->authenticate(req);
    if (auto* refused = std::get_if<net::Response>(&who)) {
      co_return std::move(*refused);
    }
    Principal principal = std::get<Principal>(std::move(who));
    // Arguments built before the co_await: GCC 12 miscompiles temporaries that span a suspension.
    iam::Resource resource{account};
    std::string type = "account";
    std::string id = account;
    auto refused = co_await access->authorize(req, principal, action, resource, type, id);
    if (refused) {
      co_return std::move(*refused);
    }
    co_return principal;
  }

  Awaitable list(net::Request& req) {
    const std::string account = req.params.at("account_id");
    auto who = co_await admit(req, iam::Action::AuditRead, account);
    if (auto* r = std::get_if<net::Response>(&who)) {
      co_return std::move(*r);
    }
    auto parsed = parseQuery(req, account, true);
    if (auto* r = std::get_if<net::Response>(&parsed)) {
      co_return std::move(*r);
    }
    auto& q = std::get<audit::Query>(parsed);
    const auto& log = access->audit();
    auto page = co_await access->store().read<audit::Page>(
        [&](store::Database& db) { return log.query(db, q); });
    if (!page.ok()) {
      co_return errorResponse(page.error(), req);
    }
    std::string body = "{\"entries\":[";
    for (std::size_t i = 0; i < page->records.size(); ++i) {
      if (i) {
        body += ',';
      }
      body += audit::toJson(page->records[i]);
    }
    body += "],\"next_cursor\":";
    body += page->next ? net::jsonString(std::to_string(*page->next)) : std::string("null");
    body += '}';
    co_return net::Response::json(200, std::move(body));
  }

  Awaitable exportLines(net::Request& req) {
    const std::string account = req.params.at("account_id");
    auto who = co_await admit(req, iam::Action::AuditExport, account);
    if (auto* r = std::get_if<net::Response>(&who)) {
      co_return std::move(*r);
    }
    auto parsed = parseQuery(req, account, false);
    if (auto* r = std::get_if<net::Response>(&parsed)) {
      co_return std::move(*r);
    }
    auto q = std::get<audit::Query>(parsed);
    q.limit = options.export_page;
    const auto& log = access->audit();
    // Every filter is checked (a bad action pattern is 400) before anything is recorded or sent.
    audit::Query probe = q;
    probe.limit = 1;
    auto checked = co_await access->store().read<audit::Page>(
        [&](store::Database& db) { return log.query(db, probe); });
    if (!checked.ok()) {
      co_return errorResponse(checked.error(), req);
    }
    net::Response resp;
    resp.status = 200;
    resp.content_type = "application/jsonl";
    resp.headers.emplace_back("Content-Disposition",
                              "attachment; filename=\"audit-" + fileNamePart(account) + ".jsonl\"");
    if (req.method == "HEAD") {
      co_return resp;  // headers only: nothing is exported, nothing recorded
    }
    // The export itself is an audited action, recorded before the first byte goes out.
    auto& principal = std::get<Principal>(who);
    audit::Entry entry{account,
                       auditActor(principal),
                       auditClient(req),
                       std::string(iam::actionName(iam::Action::AuditExport)),
                       "account",
                       account,
                       audit::Outcome::Success,
                       toDetails(filterDetails(q))};
    auto recorded = co_await access->store().write<audit::Record>(
        [&](store::Database& db) { return log.append(db, entry); });
    if (!recorded.ok()) {
      co_return errorResponse(recorded.error(), req);
    }
    // One page per piece, each its own read: the export never holds the log, and writers go on.
    struct State {
      audit::Query query;
      bool done = false;
    };
    auto state = std::make_shared<State>(State{std::move(q)});
    auto access_ptr = access;
    resp.stream = [state, access_ptr]() -> boost::asio::awaitable<std::optional<std::string>> {
      if (state->done) {
        co_return std::nullopt;
      }
      const auto& log = access_ptr->audit();
      auto page = co_await access_ptr->store().read<audit::Page>(
          [&](store::Database& db) { return log.query(db, state->query); });
      if (!page.ok()) {
        throw std::runtime_error("audit export: " + page.error().message);
      }
      std::string out;
      for (const auto& r : page->records) {
        out += audit::toJson(r);
        out += '\n';
      }
      state->query.after = page->next;
      state->done = !page->next;
      co_return out;
    };
    co_return resp;
  }

  Awaitable verify(net::Request& req) {
    if (auto bad = noQuery(req)) {
      co_return std::move(*bad);
    }
    const std::string account = req.params.at("account_id");
    auto who = co_await admit(req, iam::Action::AuditRead, account);
    if (auto* r = std::get_if<net::Response>(&who)) {
      co_return std::move(*r);
    }
    const auto& log = access->audit();
    auto report = co_await access->store().read<audit::VerifyReport>(
        [&](store::Database& db) { return log.verify(db, account); });
    if (!report.ok()) {
      co_return errorResponse(report.error(), req);
    }
    json j = {{"account_id", account},
              {"ok", !report->broken},
              {"first_seq", report->first_seq},
              {"last_seq", report->last_seq},
              {"entries", report->entries},
              {"checkpoints", report->checkpoints},
              {"key_id", log.keyId()},
              {"broken", report->broken ? json{{"seq", report->broken->seq},
                                               {"reason", report->broken->reason}}
                                        : json(nullptr)}};
    co_return net::Response::json(200, j.dump());
  }

  Awaitable publicKey(net::Request& req) {
    if (auto bad = noQuery(req)) {
      co_return std::move(*bad);
    }
    auto who = co_await access->authenticate(req);
    if (auto* r = std::get_if<net::Response>(&who)) {
      co_return std::move(*r);
    }
    auto& principal = std::get<Principal>(who);
    iam::Resource resource{principal.account_id};
    std::string type = "audit_key";
    std::string id = log_key_id();
    auto refused =
        co_await access->authorize(req, principal, iam::Action::AuditKeyRead, resource, type, id);
    if (refused) {
      co_return std::move(*refused);
    }
    const auto& log = access->audit();
    const auto& raw = log.publicKey();
    json j = {{"key_id", log.keyId()},
              {"algorithm", "Ed25519"},
              {"public_key", core::crypto::toBase64(core::crypto::Bytes(raw.data(), raw.size()))},
              {"public_key_pem", log.publicKeyPem()}};
    co_return net::Response::json(200, j.dump());
  }

  std::string log_key_id() const { return access->audit().keyId(); }

  json settingsJson(int days) const {
    const auto& o = access->audit().options();
    return {{"retention_days", days},
            {"min_retention_days", o.min_retention_days},
            {"default_retention_days", o.default_retention_days}};
  }

  Awaitable getSettings(net::Request& req) {
    if (auto bad = noQuery(req)) {
      co_return std::move(*bad);
    }
    const std::string account = req.params.at("account_id");
    auto who = co_await admit(req, iam::Action::AuditSettingsRead, account);
    if (auto* r = std::get_if<net::Response>(&who)) {
      co_return std::move(*r);
    }
    const auto& log = access->audit();
    auto days = co_await access->store().read<int>(
        [&](store::Database& db) { return log.retentionDays(db, account); });
    if (!days.ok()) {
      co_return errorResponse(days.error(), req);
    }
    co_return net::Response::json(200, settingsJson(*days).dump());
  }

  Awaitable putSettings(net::Request& req) {
    if (auto bad = noQuery(req)) {
      co_return std::move(*bad);
    }
    const std::string account = req.params.at("account_id");
    auto who = co_await admit(req, iam::Action::AuditSettingsUpdate, account);
    if (auto* r = std::get_if<net::Response>(&who)) {
      co_return std::move(*r);
    }
    auto body = parseJsonObject(req.body, options.json_depth);
    if (!body.ok()) {
      co_return errorResponse(body.error(), req);
    }
    for (auto it = body->begin(); it != body->end(); ++it) {
      if (it.key() != "retention_days") {
        co_return invalid(req, it.key().substr(0, 64),
                          "Unknown member \"" + it.key().substr(0, 64) +
                              "\"; audit settings have retention_days only.");
      }
    }
    const auto& o = access->audit().options();
    auto v = body->find("retention_days");
    if (v == body->end() || !v->is_number_integer() || v->get<std::int64_t>() < 0 ||
        v->get<std::int64_t>() > 36500) {
      co_return invalid(req, "retention_days",
                        "retention_days must be an integer of days from " +
                            std::to_string(o.min_retention_days) + " to 36500.");
    }
    int days = static_cast<int>(v->get<std::int64_t>());
    auto& principal = std::get<Principal>(who);
    const auto& log = access->audit();
    auto client = auditClient(req);
    // The change and its audit entry in one transaction.
    auto updated = co_await access->store().write<int>([&](store::Database& db) -> Result<int> {
      auto before = log.retentionDays(db, account);
      if (!before.ok()) {
        return before.error();
      }
      CONFAB_TRY(log.setRetentionDays(db, account, days));
      audit::Entry entry{account,
                         auditActor(principal),
                         client,
                         std::string(iam::actionName(iam::Action::AuditSettingsUpdate)),
                         "account",
                         account,
                         audit::Outcome::Success,
                         {{"retention_days_before", std::int64_t{*before}},
                          {"retention_days", std::int64_t{days}}}};
      auto rec = log.append(db, entry);
      if (!rec.ok()) {
        return rec.error();
      }
      return days;
    });
    if (!updated.ok()) {
      co_return errorResponse(updated.error(), req);
    }
    co_return net::Response::json(200, settingsJson(*updated).dump());
  }
};

}  // namespace

void addAuditRoutes(net::Router& router, std::shared_ptr<Access> access,
                    AuditRoutesOptions options) {
  auto h = std::make_shared<Handlers>(Handlers{std::move(access), options});
  router.add("GET", "/api/v1/accounts/{account_id}/audit",
             [h](net::Request& r) { return h->list(r); });
  router.add("GET", "/api/v1/accounts/{account_id}/audit/export",
             [h](net::Request& r) { return h->exportLines(r); });
  router.add("GET", "/api/v1/accounts/{account_id}/audit/verify",
             [h](net::Request& r) { return h->verify(r); });
  router.add("GET", "/api/v1/accounts/{account_id}/audit/settings",
             [h](net::Request& r) { return h->getSettings(r); });
  router.add("PUT", "/api/v1/accounts/{account_id}/audit/settings",
             [h](net::Request& r) { return h->putSettings(r); });
  router.add("GET", "/api/v1/audit/public-key", [h](net::Request& r) { return h->publicKey(r); });
}

}  // namespace confab::api
