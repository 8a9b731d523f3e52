// SPDX-License-Identifier: Apache-2.0
#include <confab/net/certificate.h>

#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <sys/stat.h>

namespace confab::net {
namespace {

template <typename T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
using PKeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION, X509_EXTENSION_free>>;

Error sslError(const std::string& what) {
  return makeError(ErrorCode::Internal, what);
}

Status addExtension(X509* cert, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  ExtPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
    return sslError("cannot add certificate extension " + value);
  }
  return {};
}

// Writes through a temporary file and renames it, so a crash never leaves half a key.
Status writeAtomically(const std::string& path, mode_t mode,
                       const std::function<bool(FILE*)>& write) {
  std::string tmp = path + ".tmp";
  ::unlink(tmp.c_str());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    return makeError(ErrorCode::Internal, "cannot create " + tmp);
  }
  FILE* f = fdopen(fd, "w");
  bool ok = f && write(f) && std::fflush(f) == 0 && ::fsync(fd) == 0;
  if (f) {
    std::fclose(f);
  } else {
    ::close(fd);
  }
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return makeError(ErrorCode::Internal, "cannot write " + path);
  }
  return {};
}

std::string hostName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) {
    return {};
  }
  std::string h(buf);
  // Only a plain DNS label sequence goes into a SAN.
  for (char c : h) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.')) {
      return {};
    }
  }
  return h == "localhost" ? std::string() : h;
}

}  // namespace

Result<bool> ensureSelfSignedCertificate(const std::string& cert_path,
                                         const std::string& key_path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(cert_path, ec) && fs::exists(key_path, ec)) {
    return false;
  }
  fs::create_directories(fs::path(cert_path).parent_path(), ec);
  fs::create_directories(fs::path(key_path).parent_path(), ec);

  PKeyPtr key(EVP_EC_gen("P-256"));
  if (!key) {
    return sslError("cannot generate a P-256 key");
  }
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) {
    return sslError("CSPRNG failure");
  }
  serial[0] &= 0x7f;  // RFC 5280 §4.1.2.2: positive, at most 20 octets
  std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>> bn(BN_bin2bn(serial, sizeof serial, nullptr));
  BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get()));
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 397L * 24 * 3600);  // CA/B limit for leaves
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("Confab self-signed"), -1, -1,
                             0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  std::string san = "DNS:localhost,IP:127.0.0.1,IP:::1";
  if (auto h = hostName(); !h.empty()) {
    san += ",DNS:" + h;
  }
  // It is its own trust anchor (clients are given it as their CA file), hence CA:TRUE.
  CONFAB_TRY(addExtension(cert.get(), NID_basic_constraints, "critical,CA:TRUE"));
  CONFAB_TRY(addExtension(cert.get(), NID_key_usage, "critical,digitalSignature,keyCertSign"));
  CONFAB_TRY(addExtension(cert.get(), NID_ext_key_usage, "serverAuth"));
  CONFAB_TRY(addExtension(cert.get(), NID_subject_key_identifier, "hash"));
  CONFAB_TRY(addExtension(cert.get(), NID_subject_alt_name, san));
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) {
    return sslError("cannot sign the certificate");
  }
  CONFAB_TRY(writeAtomically(key_path, 0600, [&](FILE* f) {
    return PEM_write_PrivateKey(f, key.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1;
  }));
  CONFAB_TRY(writeAtomically(cert_path, 0644,
                             [&](FILE* f) { return PEM_write_X509(f, cert.get()) == 1; }));
  return true;
}

Result<std::string> certificateSerial(const std::string& cert_path) {
  FILE* f = std::fopen(cert_path.c_str(), "r");
  if (!f) {
    return makeError(ErrorCode::NotFound, "cannot open " + cert_path);
  }
  X509Ptr cert(PEM_read_X509(f, nullptr, nullptr, nullptr));
  std::fclose(f);
  if (!cert) {
    return makeError(ErrorCode::InvalidArgument, cert_path + " holds no PEM certificate");
  }
  std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>> bn(
      ASN1_INTEGER_to_BN(X509_get_serialNumber(cert.get()), nullptr));
  char* hex = BN_bn2hex(bn.get());
  std::string out(hex);
  OPENSSL_free(hex);
  return out;
}

}  // namespace confab::net
