#include "admin/http_server.h"

#include "common/log.h"

#define ASIO_NO_DEPRECATED
#include <spdlog/spdlog.h>
#include <asio.hpp>
#include <asio/ssl.hpp>
#include <type_traits>

#include "net/host_port.h"

namespace sluice::admin {
namespace {

std::shared_ptr<spdlog::logger> adminLog() {
  return namedLog("admin");
}

const char* reasonOf(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Payload Too Large";
    case 503:
      return "Service Unavailable";
    default:
      return "Error";
  }
}

std::string serialize(const HttpResponse& response, bool withBody) {
  std::string out = "HTTP/1.1 " + std::to_string(response.status) + " " +
                    reasonOf(response.status) + "\r\nContent-Type: " + response.contentType +
                    "\r\nContent-Length: " + std::to_string(response.body.size()) +
                    "\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n";
  if (withBody) out += response.body;
  return out;
}

HttpResponse plain(int status, std::string body) {
  HttpResponse response;
  response.status = status;
  response.body = std::move(body);
  return response;
}

}  // namespace

struct HttpServer::Impl {
  HttpOptions options;
  HttpHandler handler;
  asio::io_context io{1};
  asio::ip::tcp::acceptor acceptor{io};
  std::unique_ptr<asio::ssl::context> tls;
  std::thread thread;
  std::atomic<size_t> open{0};

  // One request on a plain socket or, with TLS, an asio::ssl::stream over it.
  template <typename Stream>
  class Session : public std::enable_shared_from_this<Session<Stream>> {
   public:
    template <typename... StreamArgs>
    Session(Impl& server, StreamArgs&&... args)
        : server_(server), socket_(std::forward<StreamArgs>(args)...), timer_(server.io) {}
    ~Session() { --server_.open; }

    void start() {
      // One deadline for the handshake (with TLS) and the request.
      timer_.expires_after(server_.options.requestTimeout);
      timer_.async_wait([self = this->shared_from_this()](const asio::error_code& ec) {
        if (!ec && !self->secure()) return self->close();  // Still in the TLS handshake.
        if (!ec) self->finish(plain(408, "request timeout\n"), true);
      });
      if constexpr (kTls) {
        socket_.async_handshake(asio::ssl::stream_base::server,
                                [self = this->shared_from_this()](const asio::error_code& ec) {
                                  if (ec) return self->close();  // Garbage, or the timer.
                                  self->handshaken_ = true;
                                  self->read();
                                });
      } else {
        read();
      }
    }

   private:
    static constexpr bool kTls = !std::is_same_v<Stream, asio::ip::tcp::socket>;

    bool secure() const { return !kTls || handshaken_; }
    asio::ip::tcp::socket& tcp() {
      if constexpr (kTls) {
        return socket_.next_layer();
      } else {
        return socket_;
      }
    }

    void read() {
      asio::async_read_until(
          socket_, asio::dynamic_buffer(buffer_, server_.options.maxRequestBytes), "\r\n\r\n",
          [self = this->shared_from_this()](const asio::error_code& ec, size_t) {
            self->onRequest(ec);
          });
    }

    void onRequest(const asio::error_code& ec) {
      reading_ = false;
      if (ec == asio::error::not_found) return finish(plain(413, "request too large\n"), true);
      if (ec) return;  // Peer went away or the timer closed the socket.
      std::string line = buffer_.substr(0, buffer_.find("\r\n"));
      auto firstSpace = line.find(' ');
      auto secondSpace = line.find(' ', firstSpace + 1);
      if (firstSpace == std::string::npos || secondSpace == std::string::npos ||
          line.compare(secondSpace + 1, 5, "HTTP/") != 0) {
        return finish(plain(400, "malformed request line\n"), true);
      }
      std::string method = line.substr(0, firstSpace);
      std::string target = line.substr(firstSpace + 1, secondSpace - firstSpace - 1);
      bool head = method == "HEAD";
      if (method != "GET" && !head) return finish(plain(405, "only GET and HEAD\n"), true);
      if (target.empty() || target[0] != '/')
        return finish(plain(400, "bad request target\n"), true);
      std::string path = target.substr(0, target.find('?'));
      HttpResponse response;
      try {
        response = server_.handler(path);
      } catch (const std::exception& e) {
        adminLog()->error("admin handler failed path={} err={}", path, e.what());
        response = plain(500, "internal error\n");
      }
      finish(response, !head);
    }

    void finish(const HttpResponse& response, bool withBody) {
      if (done_) return;
      done_ = true;
      timer_.cancel();
      out_ = serialize(response, withBody);
      asio::async_write(
          socket_, asio::buffer(out_),
          [self = this->shared_from_this()](const asio::error_code& ec, size_t) {
            // After a timeout (408) the request read is still pending; a
            // second read may not run beside it, and the client is idle anyway.
            if (ec || self->reading_) return self->close();
            if constexpr (kTls) {
              // close_notify, then the client's; the linger timer bounds it.
              self->timer_.expires_after(std::chrono::seconds(1));
              self->timer_.async_wait([self](const asio::error_code& e) {
                if (!e) self->close();
              });
              self->socket_.async_shutdown([self](const asio::error_code&) { self->close(); });
            } else {
              asio::error_code ignored;
              self->socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
              self->lingerThenClose();
            }
          });
    }

    // Closing a socket with unread input (the rest of an oversized or malformed request)
    // sends a reset, which can destroy the response before the client reads it (RFC 9112
    // 9.6). So read and discard what the client still sends, for a bounded time and amount,
    // and close once it has closed its side.
    void lingerThenClose() {
      timer_.expires_after(std::chrono::seconds(1));
      timer_.async_wait([self = this->shared_from_this()](const asio::error_code& ec) {
        if (!ec) self->close();
      });
      discard();
    }
    void discard() {
      socket_.async_read_some(asio::buffer(scratch_), [self = this->shared_from_this()](
                                                          const asio::error_code& ec, size_t n) {
        self->discarded_ += n;
        if (ec || self->discarded_ > kMaxDiscardBytes) return self->close();
        self->discard();
      });
    }
    void close() {
      asio::error_code ignored;
      timer_.cancel();
      tcp().close(ignored);
    }

    static constexpr size_t kMaxDiscardBytes = 64 * 1024;

    Impl& server_;
    Stream socket_;
    asio::steady_timer timer_;
    std::string buffer_;
    std::string out_;
    bool done_ = false;
    bool reading_ = true;      // The request read is pending.
    bool handshaken_ = false;  // With TLS: the handshake is done.
    char scratch_[4096];
    size_t discarded_ = 0;
  };

  void accept() {
    acceptor.async_accept([this](const asio::error_code& ec, asio::ip::tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) {
        if (open.load() >= options.maxConnections) {
          asio::error_code ignored;
          socket.close(ignored);
        } else {
          ++open;
          if (tls) {
            std::make_shared<Session<asio::ssl::stream<asio::ip::tcp::socket>>>(
                *this, std::move(socket), *tls)
                ->start();
          } else {
            std::make_shared<Session<asio::ip::tcp::socket>>(*this, std::move(socket))->start();
          }
        }
      }
      accept();
    });
  }
};

HttpServer::HttpServer(HttpOptions options, HttpHandler handler) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->handler = std::move(handler);
}

HttpServer::~HttpServer() {
  stop();
}

Result<uint16_t> HttpServer::start() {
  const std::string& listen = impl_->options.listen;
  std::string problem;
  auto address = net::parseHostPort(listen, &problem);
  if (!address) return Status(Code::kInvalidArgument, "admin address: " + problem);
  asio::error_code ec;
  asio::ip::tcp::resolver resolver(impl_->io);
  auto endpoints = resolver.resolve(address->host, std::to_string(address->port), ec);
  if (ec || endpoints.empty()) {
    return Status(Code::kInvalidArgument,
                  "cannot resolve admin address \"" + listen + "\": " + ec.message());
  }
  asio::ip::tcp::endpoint endpoint = *endpoints.begin();
  auto& acceptor = impl_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status(Code::kInvalidArgument,
                  "cannot listen on admin address \"" + listen + "\": " + ec.message());
  }
  uint16_t port = acceptor.local_endpoint().port();
  if (const auto& files = impl_->options.tls) {
    auto context = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    context->set_options(asio::ssl::context::no_sslv2 | asio::ssl::context::no_sslv3 |
                         asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
    context->use_certificate_chain(asio::buffer(files->certPem), ec);
    if (!ec) context->use_private_key(asio::buffer(files->keyPem), asio::ssl::context::pem, ec);
    if (ec) {
      return Status(Code::kInvalidArgument, "admin TLS: " + ec.message());
    }
    impl_->tls = std::move(context);
  }
  impl_->accept();
  impl_->thread = std::thread([this] {
    try {
      impl_->io.run();
    } catch (const std::exception& e) {
      adminLog()->error("admin thread stopped: {}", e.what());
    }
  });
  return port;
}

void HttpServer::stop() {
  if (!impl_ || !impl_->thread.joinable()) return;
  impl_->io.stop();
  impl_->thread.join();
}

}  // namespace sluice::admin
