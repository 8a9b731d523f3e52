// SPDX-License-Identifier: Apache-2.0
#pragma once
// The byte formats the audit chain hashes and signs (docs/audit.md, "Hashes and signatures").
// An independent verifier follows that text; these functions are its reference.

#include <confab/audit/audit_log.h>

#include <string>

namespace confab::audit {

// The prev_hash of an account's entry 1: SHA-256("confab audit genesis v1" 0x00 account_id), hex.
std::string genesisHash(const std::string& account_id);

// SHA-256 over "confab audit v1" 0x00, the 32 bytes of r.prev_hash, and each field of r
// length-prefixed (u32 big-endian byte count, then the bytes), as 64 hex digits.
std::string chainHash(const Record& r);

// What a checkpoint's Ed25519 signature covers: "confab audit checkpoint v1" 0x00, then
// account_id, seq, hash, ts and key_id length-prefixed.
std::string checkpointMessage(const Checkpoint& c);

}  // namespace confab::audit
