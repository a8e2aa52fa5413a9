#pragma once

// Certificates made by the tests themselves with OpenSSL: a CA, and leaf certificates it signs
// (for a server name, a client identity, already expired, or from another CA). PEM files in a
// directory the caller owns. Thread: any.

#include <string>
#include <vector>

namespace sluice::test {

struct CertOptions {
  std::string commonName = "localhost";
  std::vector<std::string> dnsNames = {"localhost"};  // subjectAltName DNS entries.
  std::vector<std::string> ipAddresses;               // subjectAltName IP entries.
  long validFromSeconds = -3600;                      // Relative to now.
  long validToSeconds = 7 * 24 * 3600;                // Relative to now; negative: expired.
  bool isCa = false;
};

// A key pair and its certificate, signed by `issuer` (nullptr: self-signed), written as
// DIR/NAME.crt and DIR/NAME.key (PEM, EC P-256).
class TestCert {
 public:
  TestCert(const std::string& dir, const std::string& name, const CertOptions& options,
           const TestCert* issuer = nullptr);
  ~TestCert();
  TestCert(const TestCert&) = delete;
  TestCert& operator=(const TestCert&) = delete;

  const std::string& certPath() const { return certPath_; }
  const std::string& keyPath() const { return keyPath_; }

 private:
  void* key_ = nullptr;   // EVP_PKEY*
  void* cert_ = nullptr;  // X509*
  std::string certPath_;
  std::string keyPath_;
};

// A CA (self-signed, CA:TRUE) ready to sign leaves.
inline CertOptions caOptions(const std::string& name) {
  CertOptions options;
  options.commonName = name;
  options.dnsNames.clear();
  options.isCa = true;
  options.validToSeconds = 30 * 24 * 3600;
  return options;
}

}  // namespace sluice::test
