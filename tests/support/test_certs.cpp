#include "support/test_certs.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <stdexcept>

namespace sluice::test {
namespace {

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error("test certificate: " + what);
}

void addExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) fail("bad extension " + value);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

void writeFile(const std::string& path, bool isKey, EVP_PKEY* key, X509* cert) {
  FILE* file = std::fopen(path.c_str(), "w");
  if (file == nullptr) fail("cannot write " + path);
  int ok = isKey ? PEM_write_PrivateKey(file, key, nullptr, nullptr, 0, nullptr, nullptr)
                 : PEM_write_X509(file, cert);
  std::fclose(file);
  if (ok != 1) fail("cannot encode " + path);
}

}  // namespace

TestCert::TestCert(const std::string& dir, const std::string& name, const CertOptions& options,
                   const TestCert* issuer)
    : certPath_(dir + "/" + name + ".crt"), keyPath_(dir + "/" + name + ".key") {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  if (key == nullptr) fail("cannot make a key");
  key_ = key;
  X509* cert = X509_new();
  cert_ = cert;
  static long serial = 1;
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), serial++);
  X509_gmtime_adj(X509_getm_notBefore(cert), options.validFromSeconds);
  X509_gmtime_adj(X509_getm_notAfter(cert), options.validToSeconds);
  X509_set_pubkey(cert, key);
  X509_NAME* subject = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(options.commonName.c_str()), -1,
                             -1, 0);
  X509* signer = issuer != nullptr ? static_cast<X509*>(issuer->cert_) : cert;
  EVP_PKEY* signerKey = issuer != nullptr ? static_cast<EVP_PKEY*>(issuer->key_) : key;
  X509_set_issuer_name(cert, X509_get_subject_name(signer));
  if (options.isCa) {
    addExtension(cert, signer, NID_basic_constraints, "critical,CA:TRUE");
    addExtension(cert, signer, NID_key_usage, "critical,keyCertSign,cRLSign");
    addExtension(cert, signer, NID_subject_key_identifier, "hash");
  } else {
    addExtension(cert, signer, NID_basic_constraints, "critical,CA:FALSE");
    addExtension(cert, signer, NID_ext_key_usage, "serverAuth,clientAuth");
    std::string alt;
    for (const std::string& dns : options.dnsNames)
      alt += (alt.empty() ? "DNS:" : ",DNS:") + dns;
    for (const std::string& ip : options.ipAddresses)
      alt += (alt.empty() ? "IP:" : ",IP:") + ip;
    if (!alt.empty()) addExtension(cert, signer, NID_subject_alt_name, alt);
  }
  if (X509_sign(cert, signerKey, EVP_sha256()) == 0) fail("cannot sign " + name);
  writeFile(certPath_, false, key, cert);
  writeFile(keyPath_, true, key, cert);
}

TestCert::~TestCert() {
  X509_free(static_cast<X509*>(cert_));
  EVP_PKEY_free(static_cast<EVP_PKEY*>(key_));
}

}  // namespace sluice::test
