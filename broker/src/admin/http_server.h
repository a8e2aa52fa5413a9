#pragma once

// A small HTTP/1.1 server for the admin endpoint, on standalone Asio and its own thread, over
// TLS (asio::ssl) when given a certificate. Requests are parsed by Node's http-parser (Debian's
// libhttp-parser): GET, HEAD, POST, PUT and DELETE; headers up to 8 KiB and a body up to 1 MiB
// (Content-Length or chunked), all of it within 10 s (TLS handshake included); one request per
// connection; at most 256 connections at once; no file access. The handler answers when it
// likes, from any thread. Every answer carries a strict Content-Security-Policy, nosniff, no
// framing, no referrer and no caching. Thread: admin (its own).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "common/status.h"

namespace sluice::admin {

struct HttpRequest {
  std::string method;  // "GET", "HEAD", "POST", "PUT" or "DELETE".
  std::string path;    // The target up to '?', as sent (still percent-encoded).
  std::string query;   // After '?', as sent; empty when none.
  std::vector<std::pair<std::string, std::string>> headers;  // Names lowercased, in order.
  std::string body;
  std::string peer;  // The client's address, without the port.

  // The first header named `lowerName`, or nullptr.
  const std::string* header(std::string_view lowerName) const;
};

struct HttpResponse {
  int status = 200;
  std::string contentType = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // Sent after the standard ones.
};

// Sends the answer; call exactly once, from any thread. The connection may be gone by then.
using HttpReply = std::function<void(HttpResponse)>;
// Called on the admin thread with each complete request. HEAD gets the GET answer's headers.
using HttpHandler = std::function<void(HttpRequest request, HttpReply reply)>;

// The reason phrase of a status ("Not Found"); "Error" for ones not used here.
const char* reasonOf(int status);

// The endpoint's TLS: a PEM certificate chain (leaf first) and its key, already checked.
struct HttpTls {
  std::string certPem;
  std::string keyPem;
};

struct HttpOptions {
  std::string listen = "127.0.0.1:7401";  // HOST:PORT; port 0 picks a free one.
  std::optional<HttpTls> tls;             // Given: HTTPS only (TLS 1.2 or later). Default: none.
  size_t maxHeaderBytes = 8192;           // Request line and headers.
  size_t maxBodyBytes = 1024 * 1024;      // Decoded body.
  std::chrono::milliseconds requestTimeout{10000};  // Until the request is whole.
  size_t maxConnections = 256;
};

class HttpServer {
 public:
  HttpServer(HttpOptions options, HttpHandler handler);
  ~HttpServer();  // stop()

  // Binds and starts the thread. Returns the bound port. Errors: kInvalidArgument (bad address
  // or cannot bind, with the reason).
  Result<uint16_t> start();
  // Stops serving: requestStop() asks, finished() tells when the thread has let go, stop() waits
  // for it (and is all one needs when no request can be waiting on the caller's thread).
  void requestStop();
  bool finished() const;
  void stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;  // Shared with answers still on their way (weakly).
};

}  // namespace sluice::admin
