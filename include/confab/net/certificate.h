// SPDX-License-Identifier: Apache-2.0
#pragma once
// The self-signed certificate of the embedded default: ECDSA P-256, SANs localhost, 127.0.0.1
// and the host name, created on first start and reused afterwards.

#include <confab/core/result.h>

#include <string>

namespace confab::net {

// Creates `cert_path` and `key_path` (mode 0600, written atomically) unless both exist.
// Returns true if it created them.
Result<bool> ensureSelfSignedCertificate(const std::string& cert_path, const std::string& key_path);

// The serial number (hex) of the first certificate in a PEM file; for logs and tests.
Result<std::string> certificateSerial(const std::string& cert_path);

}  // namespace confab::net
