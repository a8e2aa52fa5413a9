#pragma once

// The RPC listener's TLS: its files read and checked once at start-up (so that a broker with a
// bad certificate refuses to start instead of failing every handshake), and the kj-tls context
// built from them. Thread: main (loading), kj (the context).

#include <cstdint>
#include <string>
#include <vector>

#include <kj/async-io.h>
#include <kj/compat/tls.h>

#include "common/status.h"

namespace sluice::rpc {

struct TlsFiles {
  std::string certPem;                   // The certificate chain, leaf first.
  std::string keyPem;                    // Its private key.
  std::vector<std::string> clientCaPem;  // One PEM per trusted client CA; empty: no mTLS.
  int64_t notAfterUnix = 0;              // When the leaf certificate expires.
};

// Reads and checks `certFile`, `keyFile` and, unless empty, `clientCaFile`: each readable, the
// certificate and key PEM that parse, the key the certificate's own, the certificate valid
// now (not expired, not yet valid), the CA bundle holding at least one certificate. Otherwise
// kInvalidArgument with one line naming the file and the problem.
Result<TlsFiles> loadTlsFiles(const std::string& certFile, const std::string& keyFile,
                              const std::string& clientCaFile);

// A server context for `files`: TLS 1.2 or later, client certificates required (and checked
// against the CA bundle only, not the system's) when the bundle is given, handshakes that take
// longer than `handshakeTimeout` abandoned.
kj::Own<kj::TlsContext> makeServerTls(const TlsFiles& files, kj::Timer& timer,
                                      kj::Duration handshakeTimeout);

}  // namespace sluice::rpc
