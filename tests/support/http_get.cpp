#include "support/http_get.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>

namespace sluice::test {
namespace {

class Socket {
 public:
  explicit Socket(int fd) : fd_(fd) {}
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error("http: " + what + ": " + std::strerror(errno));
}

// Waits for `events` on `fd` until `deadline`; false on timeout.
bool waitFor(int fd, short events, std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) fail("poll");
  }
}

void parse(HttpReply& reply) {
  auto headerEnd = reply.raw.find("\r\n\r\n");
  std::string head = reply.raw.substr(0, headerEnd);
  if (headerEnd != std::string::npos) reply.body = reply.raw.substr(headerEnd + 4);
  auto lineEnd = head.find("\r\n");
  std::string statusLine = head.substr(0, lineEnd);
  if (statusLine.rfind("HTTP/1.", 0) == 0 && statusLine.size() >= 12) {
    reply.status = std::atoi(statusLine.c_str() + 9);
  }
  size_t at = lineEnd == std::string::npos ? head.size() : lineEnd + 2;
  while (at < head.size()) {
    auto end = head.find("\r\n", at);
    if (end == std::string::npos) end = head.size();
    std::string line = head.substr(at, end - at);
    auto colon = line.find(':');
    if (colon != std::string::npos) {
      std::string name = line.substr(0, colon);
      for (char& c : name)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      reply.headers[name] = value;
    }
    at = end + 2;
  }
}

// Connects `socket` to 127.0.0.1:`port`, or throws.
void connectLoopback(const Socket& socket, int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(socket.fd(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    fail("connect to 127.0.0.1:" + std::to_string(port));
  }
}

}  // namespace

HttpReply httpRequest(int port, const std::string& request, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  Socket socket(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (socket.fd() < 0) fail("socket");
  connectLoopback(socket, port);
  size_t sent = 0;
  while (sent < request.size()) {
    if (!waitFor(socket.fd(), POLLOUT, deadline)) throw std::runtime_error("http: send timed out");
    ssize_t n = ::send(socket.fd(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      // The server may answer (e.g. 413) and stop reading before all was sent.
      if (errno == EPIPE || errno == ECONNRESET) break;
      fail("send");
    }
    sent += static_cast<size_t>(n);
  }
  HttpReply reply;
  char buffer[16384];
  for (;;) {
    if (!waitFor(socket.fd(), POLLIN, deadline)) {
      throw std::runtime_error("http: no complete reply within the timeout; got: " + reply.raw);
    }
    ssize_t n = ::recv(socket.fd(), buffer, sizeof buffer, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      if (errno == ECONNRESET && !reply.raw.empty()) break;
      fail("recv (after " + std::to_string(reply.raw.size()) + " bytes)");
    }
    if (n == 0) break;
    reply.raw.append(buffer, static_cast<size_t>(n));
  }
  parse(reply);
  return reply;
}

HttpReply httpGet(int port, const std::string& path) {
  return httpRequest(port,
                     "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
}

HttpReply httpsGet(int port, const std::string& path, const std::string& caFile,
                   const std::string& serverName) {
  auto sslError = [](const std::string& what) {
    char text[256] = {};
    ERR_error_string_n(ERR_get_error(), text, sizeof text);
    ERR_clear_error();
    return std::runtime_error("https: " + what + ": " + text);
  };
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()),
                                                        &SSL_CTX_free);
  if (!ctx) throw sslError("SSL_CTX_new");
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  if (SSL_CTX_load_verify_locations(ctx.get(), caFile.c_str(), nullptr) != 1) {
    throw sslError("loading " + caFile);
  }
  Socket socket(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (socket.fd() < 0) fail("socket");
  timeval timeout{10, 0};
  ::setsockopt(socket.fd(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  ::setsockopt(socket.fd(), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  connectLoopback(socket, port);
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx.get()), &SSL_free);
  SSL_set_fd(ssl.get(), socket.fd());
  SSL_set_tlsext_host_name(ssl.get(), serverName.c_str());
  SSL_set1_host(ssl.get(), serverName.c_str());
  if (SSL_connect(ssl.get()) != 1) throw sslError("handshake");
  const std::string request =
      "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (SSL_write(ssl.get(), request.data(), static_cast<int>(request.size())) <= 0) {
    throw sslError("write");
  }
  HttpReply reply;
  char buffer[16384];
  for (;;) {
    int n = SSL_read(ssl.get(), buffer, sizeof buffer);
    if (n <= 0) {
      int why = SSL_get_error(ssl.get(), n);
      ERR_clear_error();
      // A clean close_notify or the peer closing the socket both end the reply.
      if (why == SSL_ERROR_ZERO_RETURN || why == SSL_ERROR_SYSCALL || reply.raw.size() > 0) break;
      throw std::runtime_error("https: read failed (SSL error " + std::to_string(why) + ")");
    }
    reply.raw.append(buffer, static_cast<size_t>(n));
  }
  parse(reply);
  return reply;
}

}  // namespace sluice::test
