#pragma once

// A small HTTP/1.1 server for the admin endpoint, on standalone Asio and its own thread, over
// TLS (asio::ssl) when given a certificate. It is not an attack surface: only GET and HEAD,
// requests up to 8 KiB, 5 s to send one (TLS handshake included), one request per connection,
// at most 64 connections at once, no file access. Thread: admin (its own).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "common/status.h"

namespace sluice::admin {

struct HttpResponse {
  int status = 200;
  std::string contentType = "text/plain; charset=utf-8";
  std::string body;
};

// Answers GET `path` (without the query string). Runs on the admin thread.
using HttpHandler = std::function<HttpResponse(const std::string& path)>;

// The endpoint's TLS: a PEM certificate chain (leaf first) and its key, already checked.
struct HttpTls {
  std::string certPem;
  std::string keyPem;
};

struct HttpOptions {
  std::string listen = "127.0.0.1:7401";  // HOST:PORT; port 0 picks a free one.
  std::optional<HttpTls> tls;             // Given: HTTPS only (TLS 1.2 or later). Default: none.
  size_t maxRequestBytes = 8192;
  std::chrono::milliseconds requestTimeout{5000};
  size_t maxConnections = 64;
};

class HttpServer {
 public:
  HttpServer(HttpOptions options, HttpHandler handler);
  ~HttpServer();  // stop()

  // Binds and starts the thread. Returns the bound port. Errors: kInvalidArgument (bad address
  // or cannot bind, with the reason).
  Result<uint16_t> start();
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::admin
