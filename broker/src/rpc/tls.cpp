#include "rpc/tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>
#include <sstream>

namespace sluice::rpc {
namespace {

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Free {
  void operator()(X509* cert) const { X509_free(cert); }
};
struct KeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using Bio = std::unique_ptr<BIO, BioFree>;
using Cert = std::unique_ptr<X509, X509Free>;
using Key = std::unique_ptr<EVP_PKEY, KeyFree>;

Status problem(const std::string& file, const std::string& what) {
  return Status(Code::kInvalidArgument, "TLS file " + file + ": " + what);
}

Result<std::string> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return problem(path, std::string("cannot read it: ") + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return problem(path, "cannot read it");
  return text.str();
}

Bio memory(const std::string& text) {
  return Bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

std::string pemOf(X509* cert) {
  Bio out(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(out.get(), cert);
  char* data = nullptr;
  long size = BIO_get_mem_data(out.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

// Every certificate in a PEM text, in order.
std::vector<Cert> certificatesIn(const std::string& pem) {
  std::vector<Cert> certs;
  Bio in = memory(pem);
  while (X509* cert = PEM_read_bio_X509(in.get(), nullptr, nullptr, nullptr))
    certs.emplace_back(cert);
  ERR_clear_error();  // The read that found no more leaves an error queued.
  return certs;
}

std::string timeText(const ASN1_TIME* time) {
  Bio out(BIO_new(BIO_s_mem()));
  ASN1_TIME_print(out.get(), time);
  char* data = nullptr;
  long size = BIO_get_mem_data(out.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

}  // namespace

Result<TlsFiles> loadTlsFiles(const std::string& certFile, const std::string& keyFile,
                              const std::string& clientCaFile) {
  TlsFiles files;
  auto certText = readFile(certFile);
  if (!certText.ok()) return certText.status();
  auto keyText = readFile(keyFile);
  if (!keyText.ok()) return keyText.status();

  std::vector<Cert> chain = certificatesIn(certText.value());
  if (chain.empty()) return problem(certFile, "holds no PEM certificate");
  X509* leaf = chain.front().get();
  Bio keyIn = memory(keyText.value());
  Key key(PEM_read_bio_PrivateKey(keyIn.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (!key) return problem(keyFile, "holds no PEM private key (encrypted keys are not supported)");
  if (X509_check_private_key(leaf, key.get()) != 1) {
    ERR_clear_error();
    return problem(keyFile, "this key does not match the certificate in " + certFile);
  }
  if (X509_cmp_current_time(X509_get0_notAfter(leaf)) <= 0) {
    return problem(certFile, "the certificate expired on " + timeText(X509_get0_notAfter(leaf)));
  }
  if (X509_cmp_current_time(X509_get0_notBefore(leaf)) > 0) {
    return problem(certFile,
                   "the certificate is not valid before " + timeText(X509_get0_notBefore(leaf)));
  }
  std::tm expiry{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(leaf), &expiry) == 1)
    files.notAfterUnix = static_cast<int64_t>(timegm(&expiry));
  for (const Cert& cert : chain)
    files.certPem += pemOf(cert.get());
  files.keyPem = std::move(keyText.value());

  if (!clientCaFile.empty()) {
    auto caText = readFile(clientCaFile);
    if (!caText.ok()) return caText.status();
    for (const Cert& cert : certificatesIn(caText.value()))
      files.clientCaPem.push_back(pemOf(cert.get()));
    if (files.clientCaPem.empty()) {
      return problem(clientCaFile,
                     "holds no PEM certificate (a client CA bundle needs at least one)");
    }
  }
  return files;
}

kj::Own<kj::TlsContext> makeServerTls(const TlsFiles& files, kj::Timer& timer,
                                      kj::Duration handshakeTimeout) {
  auto keypair = kj::heap<kj::TlsKeypair>(
      kj::TlsKeypair{kj::TlsPrivateKey(files.keyPem), kj::TlsCertificate(files.certPem)});
  auto trusted = kj::heapArrayBuilder<kj::TlsCertificate>(files.clientCaPem.size());
  for (const std::string& pem : files.clientCaPem)
    trusted.add(kj::TlsCertificate(pem));
  auto cas = trusted.finish();
  kj::TlsContext::Options options;
  options.defaultKeypair = *keypair;
  options.minVersion = kj::TlsVersion::TLS_1_2;
  options.timer = timer;
  options.acceptTimeout = handshakeTimeout;
  if (cas.size() > 0) {
    options.verifyClients = true;
    options.useSystemTrustStore = false;
    options.trustedCertificates = cas;
  }
  return kj::heap<kj::TlsContext>(kj::mv(options)).attach(kj::mv(keypair), kj::mv(cas));
}

}  // namespace sluice::rpc
