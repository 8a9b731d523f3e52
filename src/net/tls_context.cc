// SPDX-License-Identifier: Apache-2.0
#include "net/tls_context.h"

#include <openssl/ssl.h>

namespace confab::net {
namespace {

// TLS 1.2: forward secrecy (ECDHE) and AEAD only, ECDSA first (our default key is P-256).
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:"
    "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305";
constexpr const char* kTls13Suites =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

// Only HTTP/1.1 is spoken; answering ALPN explicitly keeps h2-capable clients from guessing.
int selectAlpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
               unsigned int inlen, void*) {
  static const unsigned char kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, kHttp11, sizeof kHttp11, in, inlen) ==
      OPENSSL_NPN_NEGOTIATED) {
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

}  // namespace

Result<std::shared_ptr<boost::asio::ssl::context>> makeServerTlsContext(
    const std::string& cert_file, const std::string& key_file) {
  namespace ssl = boost::asio::ssl;
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  boost::system::error_code ec;
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                       ssl::context::no_compression | ssl::context::single_dh_use,
                   ec);
  SSL_CTX* native = ctx->native_handle();
  if (ec || SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) != 1 ||
      SSL_CTX_set_cipher_list(native, kTls12Ciphers) != 1 ||
      SSL_CTX_set_ciphersuites(native, kTls13Suites) != 1 ||
      SSL_CTX_set1_groups_list(native, "X25519:P-256:P-384") != 1) {
    return makeError(ErrorCode::Internal, "cannot apply the TLS policy");
  }
  SSL_CTX_set_options(native, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_alpn_select_cb(native, selectAlpn, nullptr);
  ctx->use_certificate_chain_file(cert_file, ec);
  if (ec) {
    return makeError(ErrorCode::InvalidArgument,
                     "cannot load certificate " + cert_file + ": " + ec.message(), "tls.cert_file");
  }
  ctx->use_private_key_file(key_file, ssl::context::pem, ec);
  if (ec) {
    return makeError(ErrorCode::InvalidArgument,
                     "cannot load private key " + key_file + ": " + ec.message(), "tls.key_file");
  }
  if (SSL_CTX_check_private_key(native) != 1) {
    return makeError(ErrorCode::InvalidArgument,
                     "the private key " + key_file + " does not match the certificate",
                     "tls.key_file");
  }
  return ctx;
}

}  // namespace confab::net
