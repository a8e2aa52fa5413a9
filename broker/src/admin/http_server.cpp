#include "admin/http_server.h"

#include "common/log.h"
#include "common/text.h"

#define ASIO_NO_DEPRECATED
#include <spdlog/spdlog.h>
#include <asio.hpp>
#include <asio/ssl.hpp>
#include <set>
#include <type_traits>

#include <http_parser.h>
#include <nlohmann/json.hpp>

#include "net/host_port.h"

namespace sluice::admin {
namespace {

std::shared_ptr<spdlog::logger> adminLog() {
  return namedLog("admin");
}

constexpr char kSecurityPolicy[] =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

std::string serialize(const HttpResponse& response, bool withBody) {
  std::string out = "HTTP/1.1 " + std::to_string(response.status) + " " +
                    reasonOf(response.status) + "\r\nContent-Type: " + response.contentType +
                    "\r\nContent-Length: " + std::to_string(response.body.size()) +
                    "\r\nConnection: close\r\nCache-Control: no-store\r\n"
                    // Every answer, the server's own refusals too: nothing here may be framed,
                    // sniffed into another type, or run script from elsewhere.
                    "Content-Security-Policy: " +
                    kSecurityPolicy +
                    "\r\nX-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\n"
                    "Referrer-Policy: no-referrer\r\n";
  for (const auto& [name, value] : response.headers)
    out += name + ": " + value + "\r\n";
  out += "\r\n";
  if (withBody) out += response.body;
  return out;
}

// The server's own refusals, in the HTTP API's error shape (docs/http-api.md).
HttpResponse refusal(int status, const std::string& message) {
  const char* code = "invalidArgument";
  if (status == 405) code = "methodNotAllowed";
  if (status == 408) code = "requestTimeout";
  if (status == 413) code = "payloadTooLarge";
  if (status == 500) code = "internal";
  HttpResponse response;
  response.status = status;
  response.contentType = "application/json";
  response.body = nlohmann::json{{"error", {{"code", code}, {"message", message}}}}.dump(
      -1, ' ', false, nlohmann::json::error_handler_t::replace);
  return response;
}

constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

}  // namespace

const char* reasonOf(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 302:
      return "Found";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 413:
      return "Payload Too Large";
    case 415:
      return "Unsupported Media Type";
    case 422:
      return "Unprocessable Content";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    case 507:
      return "Insufficient Storage";
    default:
      return "Error";
  }
}

const std::string* HttpRequest::header(std::string_view lowerName) const {
  for (const auto& [name, value] : headers) {
    if (name == lowerName) return &value;
  }
  return nullptr;
}

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  HttpOptions options;
  HttpHandler handler;
  asio::io_context io{1};
  asio::ip::tcp::acceptor acceptor{io};
  std::unique_ptr<asio::ssl::context> tls;
  std::thread thread;
  std::atomic<size_t> open{0};
  std::atomic<bool> finished{false};  // The thread has left io.run().
  // Sessions whose request went to the handler and whose answer has not come: nothing else
  // holds them meanwhile. Admin thread only.
  std::set<std::shared_ptr<void>> waiting;

  // One request on a plain socket or, with TLS, an asio::ssl::stream over it.
  template <typename Stream>
  class Session : public std::enable_shared_from_this<Session<Stream>> {
   public:
    template <typename... StreamArgs>
    Session(Impl& server, StreamArgs&&... args)
        : server_(server), socket_(std::forward<StreamArgs>(args)...), timer_(server.io) {
      http_parser_init(&parser_, HTTP_REQUEST);
      parser_.data = this;
    }
    ~Session() { --server_.open; }

    void start() {
      asio::error_code ignored;
      auto endpoint = tcp().remote_endpoint(ignored);
      if (!ignored) request_.peer = endpoint.address().to_string();
      // One deadline for the handshake (with TLS) and the whole request.
      timer_.expires_after(server_.options.requestTimeout);
      timer_.async_wait([self = this->shared_from_this()](const asio::error_code& ec) {
        if (!ec && !self->secure()) return self->close();  // Still in the TLS handshake.
        if (!ec) self->fail(408, "request timeout");
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
      socket_.async_read_some(asio::buffer(scratch_), [self = this->shared_from_this()](
                                                          const asio::error_code& ec, size_t n) {
        self->reading_ = false;
        // The client stopped sending mid-request (it may still read): say so now, not at
        // the deadline.
        if (ec == asio::error::eof && self->received_ > 0)
          return self->fail(400, "the request ended early");
        if (ec) return;  // Peer went away, or the timer closed the socket.
        self->onBytes(n);
      });
      reading_ = true;
    }

    void onBytes(size_t n) {
      if (done_) return;
      received_ += n;
      http_parser_execute(&parser_, &kSettings, scratch_, n);
      if (done_) return;  // A callback answered (405, 413, ...).
      if (parser_.http_errno != HPE_OK && parser_.http_errno != HPE_PAUSED) {
        auto error = static_cast<http_errno>(parser_.http_errno);
        return fail(400, std::string("malformed request: ") + http_errno_description(error));
      }
      if (complete_) return dispatch();
      read();
    }

    // http_parser callbacks: `parser->data` is the session.
    static Session& of(http_parser* parser) { return *static_cast<Session*>(parser->data); }
    bool countHeaderBytes(size_t n) {
      headerBytes_ += n;
      if (headerBytes_ <= server_.options.maxHeaderBytes) return true;
      fail(413, "request headers too large");
      return false;
    }
    static int onUrl(http_parser* parser, const char* at, size_t n) {
      auto& self = of(parser);
      if (!self.countHeaderBytes(n)) return 1;
      self.target_.append(at, n);
      return 0;
    }
    static int onHeaderField(http_parser* parser, const char* at, size_t n) {
      auto& self = of(parser);
      if (!self.countHeaderBytes(n)) return 1;
      auto& headers = self.request_.headers;
      if (headers.empty() || self.inValue_) headers.emplace_back();
      self.inValue_ = false;
      for (size_t i = 0; i < n; ++i)
        headers.back().first += lowerAscii(at[i]);
      return 0;
    }
    static int onHeaderValue(http_parser* parser, const char* at, size_t n) {
      auto& self = of(parser);
      if (!self.countHeaderBytes(n)) return 1;
      self.inValue_ = true;
      self.request_.headers.back().second.append(at, n);
      return 0;
    }
    static int onHeadersComplete(http_parser* parser) {
      auto& self = of(parser);
      if (parser->http_major != 1) {
        self.fail(400, "malformed request: HTTP/1.x only");
        return -1;
      }
      auto method = static_cast<http_method>(parser->method);
      if (method != HTTP_GET && method != HTTP_HEAD && method != HTTP_POST && method != HTTP_PUT &&
          method != HTTP_DELETE) {
        self.fail(405, "method not allowed");
        return -1;
      }
      self.request_.method = http_method_str(method);
      const std::string& target = self.target_;
      if (target.empty() || target[0] != '/') {
        self.fail(400, "bad request target");
        return -1;
      }
      auto question = target.find('?');
      self.request_.path = target.substr(0, question);
      if (question != std::string::npos) self.request_.query = target.substr(question + 1);
      if ((parser->flags & F_CONTENTLENGTH) &&
          parser->content_length > self.server_.options.maxBodyBytes) {
        self.fail(413, "request body too large");
        return -1;
      }
      const std::string* expect = self.request_.header("expect");
      if (expect && equalsIgnoreCase(*expect, "100-continue")) self.sendContinue();
      return 0;
    }
    static int onBody(http_parser* parser, const char* at, size_t n) {
      auto& self = of(parser);
      if (self.request_.body.size() + n > self.server_.options.maxBodyBytes) {
        self.fail(413, "request body too large");
        return 1;
      }
      self.request_.body.append(at, n);
      return 0;
    }
    static int onMessageComplete(http_parser* parser) {
      of(parser).complete_ = true;
      http_parser_pause(parser, 1);  // One request per connection: ignore what follows.
      return 0;
    }
    static constexpr http_parser_settings kSettings = [] {
      http_parser_settings settings{};
      settings.on_url = onUrl;
      settings.on_header_field = onHeaderField;
      settings.on_header_value = onHeaderValue;
      settings.on_headers_complete = onHeadersComplete;
      settings.on_body = onBody;
      settings.on_message_complete = onMessageComplete;
      return settings;
    }();

    void sendContinue() {
      asio::async_write(socket_, asio::buffer(kContinue.data(), kContinue.size()),
                        [self = this->shared_from_this()](const asio::error_code&, size_t) {});
      continuing_ = true;
    }

    // The request is whole: no more reads; the handler answers through `reply`, which finds this
    // session again (if the server is still there) on the admin thread.
    void dispatch() {
      timer_.cancel();
      head_ = request_.method == "HEAD";
      auto self = this->shared_from_this();
      server_.waiting.insert(self);
      std::weak_ptr<Impl> server = server_.weak_from_this();
      std::weak_ptr<Session> session = self;
      HttpReply reply = [server, session](HttpResponse response) {
        auto alive = server.lock();
        if (!alive) return;
        asio::post(alive->io, [session, response = std::move(response)]() mutable {
          if (auto target = session.lock()) target->answer(std::move(response));
        });
      };
      try {
        server_.handler(std::move(request_), std::move(reply));
      } catch (const std::exception& e) {
        adminLog()->error("admin handler failed err={}", e.what());
        answer(refusal(500, "internal error"));
      }
    }

    void answer(HttpResponse response) {
      auto self = this->shared_from_this();
      server_.waiting.erase(self);
      finish(response, !head_);
    }

    void fail(int status, const std::string& message) { finish(refusal(status, message), true); }

    void finish(const HttpResponse& response, bool withBody) {
      if (done_) return;
      done_ = true;
      timer_.cancel();
      out_ = serialize(response, withBody);
      // After a 100 Continue the first write may still be going: the answer follows it.
      auto write = [self = this->shared_from_this()] {
        asio::async_write(
            self->socket_, asio::buffer(self->out_), [self](const asio::error_code& ec, size_t) {
              // A read still pending (an early answer) may not have a second beside it.
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
      };
      if (continuing_) {
        asio::post(server_.io, write);
      } else {
        write();
      }
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
    http_parser parser_;
    HttpRequest request_;
    std::string target_;
    size_t headerBytes_ = 0;
    size_t received_ = 0;
    bool inValue_ = false;
    bool complete_ = false;
    std::string out_;
    bool done_ = false;
    bool head_ = false;
    bool reading_ = false;     // A read is pending.
    bool continuing_ = false;  // A 100 Continue was sent.
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

HttpServer::HttpServer(HttpOptions options, HttpHandler handler) : impl_(std::make_shared<Impl>()) {
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
    impl_->finished = true;
  });
  return port;
}

void HttpServer::requestStop() {
  if (impl_) impl_->io.stop();
}

bool HttpServer::finished() const {
  return !impl_ || !impl_->thread.joinable() || impl_->finished.load();
}

void HttpServer::stop() {
  if (!impl_ || !impl_->thread.joinable()) return;
  impl_->io.stop();
  impl_->thread.join();
}

}  // namespace sluice::admin
