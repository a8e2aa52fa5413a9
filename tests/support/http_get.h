#pragma once

// A tiny HTTP/1.x client over a plain socket (or OpenSSL), for tests of the admin endpoint: sends
// raw bytes to 127.0.0.1:<port> and reads the reply until the server closes the connection.

#include <chrono>
#include <map>
#include <string>

namespace sluice::test {

struct HttpReply {
  int status = 0;                              // 0 when the reply had no parsable status line.
  std::map<std::string, std::string> headers;  // Names lowercased.
  std::string body;
  std::string raw;  // Everything received.
};

// Sends `request` as is. Throws std::runtime_error when the connection fails or the reply does
// not end within `timeout`.
HttpReply httpRequest(int port, const std::string& request,
                      std::chrono::milliseconds timeout = std::chrono::seconds(10));
// GET `path` with HTTP/1.1, Host and Connection: close.
HttpReply httpGet(int port, const std::string& path);
// The same over TLS, trusting only the PEM CA file `caFile` and checking `serverName`. Throws
// std::runtime_error when the handshake fails (with OpenSSL's reason) or the reply does not end
// within 10 s.
HttpReply httpsGet(int port, const std::string& path, const std::string& caFile,
                   const std::string& serverName = "localhost");

}  // namespace sluice::test
