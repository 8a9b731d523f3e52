// SPDX-License-Identifier: Apache-2.0
#pragma once
// The TLS policy of every HTTPS listener: TLS 1.2 and 1.3 only; on 1.2 only ECDHE key exchange
// with AEAD ciphers (AES-GCM, ChaCha20-Poly1305); no compression, no renegotiation.

#include <confab/core/result.h>

#include <boost/asio/ssl/context.hpp>

#include <memory>
#include <string>

namespace confab::net {

Result<std::shared_ptr<boost::asio::ssl::context>> makeServerTlsContext(
    const std::string& cert_file, const std::string& key_file);

}  // namespace confab::net
