// SPDX-License-Identifier: Apache-2.0
#include "audit/chain.h"

#include <confab/core/crypto.h>

#include <cstdint>
#include <string_view>

namespace confab::audit {
namespace {

namespace crypto = core::crypto;

void field(std::string& out, std::string_view v) {
  auto n = static_cast<std::uint32_t>(v.size());
  out.push_back(static_cast<char>(n >> 24));
  out.push_back(static_cast<char>(n >> 16));
  out.push_back(static_cast<char>(n >> 8));
  out.push_back(static_cast<char>(n));
  out.append(v);
}

void field(std::string& out, std::int64_t v) {
  field(out, std::to_string(v));
}

}  // namespace

std::string genesisHash(const std::string& account_id) {
  std::string in("confab audit genesis v1");
  in.push_back('\0');
  in += account_id;
  return crypto::toHex(crypto::sha256(crypto::asBytes(in)));
}

std::string chainHash(const Record& r) {
  std::string in("confab audit v1");
  in.push_back('\0');
  // A stored prev_hash that is not 64 hex digits is hashed as it is: the result cannot match.
  in += crypto::fromHex(r.prev_hash).value_or(r.prev_hash);
  field(in, r.account_id);
  field(in, r.seq);
  field(in, r.ts);
  field(in, r.actor.account_id);
  field(in, r.actor.user_id);
  field(in, r.actor.real_account_id);
  field(in, r.actor.real_user_id);
  field(in, r.client.address);
  field(in, std::int64_t(r.client.port));
  field(in, r.action);
  field(in, r.target_type);
  field(in, r.target_id);
  field(in, outcomeName(r.outcome));
  field(in, r.details);
  return crypto::toHex(crypto::sha256(crypto::asBytes(in)));
}

std::string checkpointMessage(const Checkpoint& c) {
  std::string m("confab audit checkpoint v1");
  m.push_back('\0');
  field(m, c.account_id);
  field(m, c.seq);
  field(m, c.hash);
  field(m, c.ts);
  field(m, c.key_id);
  return m;
}

}  // namespace confab::audit
