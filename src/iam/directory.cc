// SPDX-License-Identifier: Apache-2.0
#include <confab/core/crypto.h>
#include <confab/iam/directory.h>

#include <algorithm>
#include <array>
#include <cctype>

namespace confab::iam {
namespace {

constexpr std::string_view kInsertAccount = R"sql(
INSERT INTO accounts (id, kind, partner_id, name, country, region, status, created_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'active', ?7))sql";

constexpr std::string_view kSelectAccount =
    "SELECT id, kind, partner_id, name, country, region, status, created_at FROM accounts "
    "WHERE id = ?1";

constexpr std::string_view kInsertUser = R"sql(
INSERT INTO users (account_id, id, username, email, display_name, role, password_hash,
  must_change_password, status, created_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'active', ?9))sql";

constexpr std::string_view kUsernameTaken =
    "SELECT count(*) FROM users WHERE account_id = ?1 AND username = ?2";

constexpr std::string_view kSelectUser =
    "SELECT account_id, id, username, email, display_name, role, password_hash, "
    "must_change_password, status, created_at FROM users WHERE account_id = ?1 AND id = ?2";

Error invalid(std::string field, std::string message) {
  return Error{ErrorCode::InvalidArgument, std::move(message), std::move(field)};
}

bool printable(std::string_view s) {
  return std::none_of(s.begin(), s.end(),
                      [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

AccountStatus accountStatusOf(const std::string& s) {
  return s == "suspended"     ? AccountStatus::Suspended
         : s == "terminating" ? AccountStatus::Terminating
                              : AccountStatus::Active;
}

UserStatus userStatusOf(const std::string& s) {
  return s == "disabled"  ? UserStatus::Disabled
         : s == "deleted" ? UserStatus::Deleted
                          : UserStatus::Active;
}

}  // namespace

std::string_view accountKindName(AccountKind kind) {
  return kind == AccountKind::Partner ? "partner" : "customer";
}

std::string_view accountStatusName(AccountStatus status) {
  switch (status) {
    case AccountStatus::Active:
      return "active";
    case AccountStatus::Suspended:
      return "suspended";
    case AccountStatus::Terminating:
      return "terminating";
  }
  return "active";
}

std::string_view userStatusName(UserStatus status) {
  switch (status) {
    case UserStatus::Active:
      return "active";
    case UserStatus::Disabled:
      return "disabled";
    case UserStatus::Deleted:
      return "deleted";
  }
  return "active";
}

Directory::Directory(const config::Config& config, const audit::AuditLog& audit, core::Clock& clock,
                     core::Random& random)
    : config_(config), audit_(audit), clock_(clock), random_(random) {}

// "a_" or "u_" and 26 lower-case base32 digits of 128 random bits: never reused, never guessed.
std::string Directory::newId(std::string_view prefix) const {
  std::array<std::uint8_t, 16> raw{};
  random_.fill(raw);
  static constexpr char kDigits[] = "abcdefghijklmnopqrstuvwxyz234567";
  std::string out(prefix);
  std::uint32_t acc = 0;
  int bits = 0;
  for (auto b : raw) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += kDigits[(acc >> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) {
    out += kDigits[(acc << (5 - bits)) & 31];
  }
  return out;
}

Result<Account> Directory::createAccount(store::Database& db, const NewAccount& in,
                                         const ChangeContext& who) const {
  if (in.name.empty() || in.name.size() > 200 || !printable(in.name)) {
    return invalid("name", "name must be 1 to 200 bytes without control characters");
  }
  std::string country = in.country;
  std::transform(country.begin(), country.end(), country.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  if (country.size() != 2 || !std::isalpha(static_cast<unsigned char>(country[0])) ||
      !std::isalpha(static_cast<unsigned char>(country[1]))) {
    return invalid("country", "country must be an ISO 3166-1 alpha-2 code (\"DE\")");
  }
  const std::string region = config::regionForCountry(config_, country);
  if (region.empty()) {
    return invalid("country",
                   "no storage region is configured for " + country + " (region.countries)");
  }
  if (region != config_.region.serves) {
    return Error{ErrorCode::FailedPrecondition,
                 "accounts in " + country + " belong to region " + region +
                     ", and this node serves region " + config_.region.serves,
                 "country"};
  }
  if (in.kind == AccountKind::Partner && !in.partner_id.empty()) {
    return invalid("partner_id", "a partner account has no partner");
  }
  if (in.kind == AccountKind::Customer) {
    auto partner = account(db, in.partner_id);
    if (!partner.ok() || partner->kind != AccountKind::Partner) {
      return Error{ErrorCode::NotFound, "no such partner account", "partner_id"};
    }
  }
  Account a{newId("a_"), in.kind, in.partner_id,         in.name,
            country,     region,  AccountStatus::Active, core::toUnixMillis(clock_.now())};
  auto ins = db.prepare(kInsertAccount);
  if (!ins.ok()) {
    return ins.error();
  }
  ins->bind(1, a.id).bind(2, accountKindName(a.kind)).bind(4, a.name).bind(5, a.country);
  ins->bind(6, a.region).bind(7, a.created_at);
  if (a.partner_id.empty()) {
    ins->bindNull(3);
  } else {
    ins->bind(3, a.partner_id);
  }
  CONFAB_TRY(ins->run());
  // Recorded in the new account's log, and for a customer also in its partner's.
  audit::Details details{
      {"kind", std::string(accountKindName(a.kind))}, {"country", a.country}, {"region", a.region}};
  for (const std::string& log_account : {a.id, a.partner_id}) {
    if (log_account.empty()) {
      continue;
    }
    auto rec = audit_.append(db, audit::Entry{log_account, who.actor, who.client, "account.created",
                                              "account", a.id, audit::Outcome::Success, details});
    if (!rec.ok()) {
      return rec.error();
    }
  }
  return a;
}

Result<Account> Directory::account(store::Database& db, const std::string& id) const {
  auto s = db.prepare(kSelectAccount);
  if (!s.ok()) {
    return s.error();
  }
  auto row = s->bind(1, id).step();
  if (!row.ok()) {
    return row.error();
  }
  if (!*row) {
    return makeError(ErrorCode::NotFound, "no such account");
  }
  return Account{s->text(0),
                 s->text(1) == "partner" ? AccountKind::Partner : AccountKind::Customer,
                 s->isNull(2) ? std::string() : s->text(2),
                 s->text(3),
                 s->text(4),
                 s->text(5),
                 accountStatusOf(s->text(6)),
                 s->int64(7)};
}

Result<User> Directory::createUser(store::Database& db, const NewUser& in,
                                   const ChangeContext& who) const {
  auto owner = account(db, in.account_id);
  if (!owner.ok()) {
    return Error{ErrorCode::NotFound, "no such account", "account_id"};
  }
  std::string username = in.username;
  std::transform(username.begin(), username.end(), username.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (username.empty() || username.size() > 64 ||
      username.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789._-") != std::string::npos) {
    return invalid("username", "username must be 1 to 64 of a-z, 0-9, '.', '_' and '-'");
  }
  auto at = in.email.find('@');
  if (in.email.size() > 254 || at == std::string::npos || at == 0 || at + 1 >= in.email.size() ||
      in.email.find('@', at + 1) != std::string::npos || !printable(in.email) ||
      in.email.find(' ') != std::string::npos) {
    return invalid("email", "email must be one address, local@domain, at most 254 bytes");
  }
  if (in.display_name.size() > 200 || !printable(in.display_name)) {
    return invalid("display_name",
                   "display_name must be at most 200 bytes without control "
                   "characters");
  }
  const bool partner = owner->kind == AccountKind::Partner;
  if (in.role == Role::Guest || (in.role == Role::PartnerAdmin && !partner) ||
      (in.role == Role::CustomerAdmin && partner)) {
    return invalid("role", partner ? "a partner account's users are partner_admin or user"
                                   : "a customer account's users are customer_admin or user");
  }
  if (in.password_hash.rfind("$argon2id$", 0) != 0) {
    return invalid("password_hash", "password_hash must come from PasswordHasher::hash");
  }
  auto taken = db.prepare(kUsernameTaken);
  if (!taken.ok()) {
    return taken.error();
  }
  auto row = taken->bind(1, in.account_id).bind(2, username).step();
  if (!row.ok()) {
    return row.error();
  }
  if (taken->int64(0) > 0) {
    return Error{ErrorCode::AlreadyExists, "the account has a user of that name", "username"};
  }
  User u{in.account_id,      newId("u_"),
         username,           in.email,
         in.display_name,    in.role,
         in.password_hash,   in.must_change_password,
         UserStatus::Active, core::toUnixMillis(clock_.now())};
  auto ins = db.prepare(kInsertUser);
  if (!ins.ok()) {
    return ins.error();
  }
  ins->bind(1, u.account_id).bind(2, u.id).bind(3, u.username).bind(4, u.email);
  ins->bind(5, u.display_name).bind(6, roleName(u.role)).bind(7, u.password_hash);
  ins->bind(8, std::int64_t{u.must_change_password}).bind(9, u.created_at);
  CONFAB_TRY(ins->run());
  auto rec = audit_.append(
      db, audit::Entry{u.account_id,
                       who.actor,
                       who.client,
                       "user.created",
                       "user",
                       u.id,
                       audit::Outcome::Success,
                       {{"username", u.username}, {"role", std::string(roleName(u.role))}}});
  if (!rec.ok()) {
    return rec.error();
  }
  return u;
}

Result<User> Directory::user(store::Database& db, const std::string& account_id,
                             const std::string& user_id) const {
  auto s = db.prepare(kSelectUser);
  if (!s.ok()) {
    return s.error();
  }
  auto row = s->bind(1, account_id).bind(2, user_id).step();
  if (!row.ok()) {
    return row.error();
  }
  if (!*row) {
    return makeError(ErrorCode::NotFound, "no such user");
  }
  return User{s->text(0), s->text(1),       s->text(2),
              s->text(3), s->text(4),       roleFromName(s->text(5)).value_or(Role::User),
              s->text(6), s->int64(7) != 0, userStatusOf(s->text(8)),
              s->int64(9)};
}

}  // namespace confab::iam
