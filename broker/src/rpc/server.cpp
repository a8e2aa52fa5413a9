#include "rpc/server.h"

#include "common/log.h"
#include "net/message_stream.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

#include <capnp/message.h>
#include <capnp/rpc.capnp.h>
#include <capnp/serialize-async.h>
#include <spdlog/spdlog.h>

namespace sluice::rpc {
namespace {

std::shared_ptr<spdlog::logger> serverLog() {
  return namedLog("rpc");
}

std::string peerOf(kj::AsyncIoStream& stream) {
  sockaddr_storage addr{};
  uint length = sizeof addr;
  try {
    stream.getpeername(reinterpret_cast<sockaddr*>(&addr), &length);
  } catch (...) {
    return "unknown";
  }
  char host[INET6_ADDRSTRLEN] = {};
  if (addr.ss_family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(&addr);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    return std::string(host) + ":" + std::to_string(ntohs(in->sin_port));
  }
  if (addr.ss_family == AF_INET6) {
    auto* in = reinterpret_cast<sockaddr_in6*>(&addr);
    inet_ntop(AF_INET6, &in->sin6_addr, host, sizeof host);
    return "[" + std::string(host) + "]:" + std::to_string(ntohs(in->sin6_port));
  }
  return "unknown";
}

// Wraps the connection's message stream to log the one line that says why a connection was
// dropped for bad input (capnp closes it silently otherwise).
class LoggingMessageStream final : public capnp::MessageStream {
 public:
  LoggingMessageStream(kj::AsyncIoStream& stream, std::string peer)
      : inner_(stream), peer_(std::move(peer)) {}

  kj::Promise<kj::Maybe<capnp::MessageReaderAndFds>> tryReadMessage(
      kj::ArrayPtr<kj::AutoCloseFd> fdSpace, capnp::ReaderOptions options,
      kj::ArrayPtr<capnp::word> scratchSpace) override {
    return inner_.tryReadMessage(fdSpace, options, scratchSpace)
        .catch_([this](kj::Exception&& e) -> kj::Promise<kj::Maybe<capnp::MessageReaderAndFds>> {
          const char* why = e.getDescription().cStr();
          if (e.getType() != kj::Exception::Type::DISCONNECTED) {
            logDrop(why);
          } else if (strstr(why, "disconnected prematurely") != nullptr ||
                     strstr(why, "Premature EOF") != nullptr) {
            // An orderly close in the middle of a frame: a truncated message, not a plain
            // hang-up. (A reset cannot be told apart from a client that died; not logged.)
            logDrop(std::string("truncated message: ") + why);
          }
          return kj::mv(e);
        });
  }
  kj::Promise<void> writeMessage(
      kj::ArrayPtr<const int> fds,
      kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments) override {
    noteAbort(segments);
    return inner_.writeMessage(fds, segments);
  }
  kj::Promise<void> writeMessages(
      kj::ArrayPtr<kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>>> messages) override {
    for (auto segments : messages)
      noteAbort(segments);
    return inner_.writeMessages(messages);
  }
  kj::Maybe<int> getSendBufferSize() override { return inner_.getSendBufferSize(); }
  kj::Promise<void> end() override { return inner_.end(); }

 private:
  // A message that the client's bytes could not be read as is caught above; one that was read
  // but broke the RPC protocol (no root, a bad pointer, an unknown question) ends in an Abort
  // that capnp sends to the client and logs nowhere: log it here. Aborts of type DISCONNECTED
  // only echo that the client went away.
  void noteAbort(kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments) {
    if (logged_) return;
    try {
      capnp::SegmentArrayMessageReader reader(segments);
      auto message = reader.getRoot<capnp::rpc::Message>();
      if (!message.isAbort()) return;
      auto abort = message.getAbort();
      if (abort.getType() == capnp::rpc::Exception::Type::DISCONNECTED) return;
      logDrop(abort.getReason().cStr());
    } catch (const kj::Exception&) {
      // Our own message; nothing to add if it cannot be read back.
    }
  }

  // One line per connection, whichever path sees the problem first.
  void logDrop(const std::string& why) {
    if (logged_) return;
    logged_ = true;
    serverLog()->warn("connection dropped peer={} reason=\"{}\"", peer_, why);
  }

  net::BufferedMessageStream inner_;
  std::string peer_;
  bool logged_ = false;
};

}  // namespace

struct RpcServer::Connection {
  Connection(kj::Own<kj::AsyncIoStream> streamIn, std::string peerIn,
             const capnp::ReaderOptions& options)
      : stream(kj::mv(streamIn)),
        peer(std::move(peerIn)),
        messages(*stream, peer),
        network(messages, capnp::rpc::twoparty::Side::SERVER, options) {}

  kj::Own<kj::AsyncIoStream> stream;
  std::string peer;
  LoggingMessageStream messages;
  capnp::TwoPartyVatNetwork network;
  kj::Maybe<capnp::RpcSystem<capnp::rpc::twoparty::VatId>> rpc;
  uint64_t id = 0;
};

RpcServer::RpcServer(core::Broker& broker, core::Metrics& metrics, kj::Network& network,
                     ServerOptions options)
    : RpcServer(
          [&broker, service = options.service, lowLevelIo = options.lowLevelIo](
              std::shared_ptr<ConnectionInfo> info,
              std::optional<std::string> certificateName) -> capnp::Capability::Client {
            core::Identity identity = broker.auth().initial(certificateName);
            if (certificateName) {
              serverLog()->debug("tls client peer={} certificate=\"{}\" principal=\"{}\"",
                                 info->peer, *certificateName, identity.principal);
            }
            return kj::heap<BrokerService>(broker, std::move(info), service, lowLevelIo,
                                           std::move(identity));
          },
          metrics, network, options) {}

RpcServer::RpcServer(Bootstrap bootstrap, core::Metrics& metrics, kj::Network& network,
                     ServerOptions options)
    : bootstrap_(std::move(bootstrap)),
      metrics_(metrics),
      network_(network),
      options_(options),
      tasks_(*this) {}

RpcServer::~RpcServer() noexcept(false) {
  listeners_.clear();
  disconnectAll();
}

void RpcServer::taskFailed(kj::Exception&& exception) {
  serverLog()->warn("connection task failed: {}", exception.getDescription().cStr());
}

kj::Promise<uint> RpcServer::listen(const std::string& address) {
  return startListening(address, nullptr);
}

kj::Promise<uint> RpcServer::listenTls(const std::string& address, kj::TlsContext& tls) {
  return startListening(address, &tls);
}

kj::Promise<uint> RpcServer::startListening(const std::string& address, kj::TlsContext* tls) {
  accepting_ = true;
  return network_.parseAddress(address).then([this, tls](kj::Own<kj::NetworkAddress> addr) {
    Listener& listener = listeners_.emplace_back();
    listener.receiver = addr->listen();
    listener.tls = tls;
    listener.task = acceptLoop(listener).eagerlyEvaluate([tls](kj::Exception&& e) {
      serverLog()->error("accept loop stopped{}: {}", tls != nullptr ? " (tls)" : "",
                         e.getDescription().cStr());
    });
    return listener.receiver->getPort();
  });
}

kj::Promise<void> RpcServer::acceptLoop(Listener& listener) {
  // evalNow: accept() may also throw at once, when the connection is already waiting.
  return kj::evalNow([&listener]() { return listener.receiver->accept(); })
      .then(
          [this, &listener](kj::Own<kj::AsyncIoStream> stream) {
            listener.acceptFailures = 0;
            if (listener.tls != nullptr) {
              handshake(*listener.tls, kj::mv(stream));
            } else {
              std::string peer = peerOf(*stream);
              accept(kj::mv(stream), std::move(peer));
            }
            return acceptLoop(listener);
          },
          [this, &listener](kj::Exception&& e) -> kj::Promise<void> {
            KJ_IF_MAYBE (timer, options_.timer) {
              // Typically out of file descriptors: the connection waits in the listen backlog
              // until one is closed. Retry, logging the first failure and then every 100th.
              if (listener.acceptFailures++ % 100 == 0) {
                serverLog()->error("accept failed; retrying every 100 ms failures={} err=\"{}\"",
                                   listener.acceptFailures, e.getDescription().cStr());
              }
              return timer->afterDelay(100 * kj::MILLISECONDS).then([this, &listener]() {
                return acceptLoop(listener);
              });
            }
            return kj::mv(e);
          });
}

void RpcServer::handshake(kj::TlsContext& tls, kj::Own<kj::AsyncIoStream> stream) {
  std::string peer = peerOf(*stream);  // The TLS stream does not know its socket's peer.
  if (handshakes_ >= options_.maxHandshakes) {
    metrics_.tlsHandshakeFailures.fetch_add(1, std::memory_order_relaxed);
    if (handshakeRefusals_++ % 100 == 0) {
      serverLog()->warn(
          "tls connection closed peer={} reason=\"{} handshakes in progress (the most "
          "allowed)\" closed_so_far={}",
          peer, options_.maxHandshakes, handshakeRefusals_);
    }
    return;  // Dropping the stream closes it.
  }
  ++handshakes_;
  // The context's accept timeout bounds the handshake; its failure is this connection's alone.
  kj::AuthenticatedStream plain{kj::mv(stream), kj::UnknownPeerIdentity::newInstance()};
  tasks_.add(tls.wrapServer(kj::mv(plain))
                 .then(
                     [this, peer](kj::AuthenticatedStream secure) {
                       --handshakes_;
                       // With --tls-client-ca every client presents a certificate the CA
                       // signed; its common name names the connection's principal.
                       std::optional<std::string> name;
                       auto& identity = kj::downcast<kj::TlsPeerIdentity>(*secure.peerIdentity);
                       if (identity.hasCertificate()) {
                         kj::String common = identity.getCommonName();
                         name = std::string(common.cStr(), common.size());
                       }
                       if (accepting_) accept(kj::mv(secure.stream), peer, std::move(name));
                     },
                     [this, peer](kj::Exception&& e) {
                       --handshakes_;
                       metrics_.tlsHandshakeFailures.fetch_add(1, std::memory_order_relaxed);
                       serverLog()->warn("tls handshake failed peer={} reason=\"{}\"", peer,
                                         e.getDescription().cStr());
                     }));
}

void RpcServer::accept(kj::Own<kj::AsyncIoStream> stream, std::string peer,
                       std::optional<std::string> certificateName) {
  capnp::ReaderOptions reader;
  reader.traversalLimitInWords = options_.traversalLimitWords;
  reader.nestingLimit = options_.nestingLimit;
  if (connections_.size() >= options_.maxConnections) {
    if (refusals_++ % 100 == 0) {
      serverLog()->warn(
          "connection refused peer={} reason=\"max connections ({}) reached\" "
          "refused_so_far={}",
          peer, options_.maxConnections, refusals_);
    }
    refuse(kj::heap<Connection>(kj::mv(stream), peer, reader));
    return;
  }
  auto connection = kj::heap<Connection>(kj::mv(stream), peer, reader);
  connection->id = nextConnectionId_++;
  auto info = std::make_shared<ConnectionInfo>();
  info->peer = peer;
  info->timer = options_.timer;
  capnp::Capability::Client bootstrap = bootstrap_(std::move(info), std::move(certificateName));
  auto& rpc = connection->rpc.emplace(connection->network, kj::mv(bootstrap));
  rpc.setFlowLimit(options_.flowLimitWords);
  uint64_t id = connection->id;
  auto disconnected = connection->network.onDisconnect();
  connections_.push_back(kj::mv(connection));
  metrics_.connections.store(connections_.size(), std::memory_order_relaxed);
  serverLog()->debug("connection opened peer={} id={}", peer, id);
  tasks_.add(disconnected.then([this, id, peer]() {
    serverLog()->debug("connection closed peer={} id={}", peer, id);
    connections_.remove_if([id](const kj::Own<Connection>& c) { return c->id == id; });
    metrics_.connections.store(connections_.size(), std::memory_order_relaxed);
  }));
}

void RpcServer::stopAccepting() {
  accepting_ = false;
  listeners_.clear();
}

// Answers the refused client's bootstrap with an error that says why, so that it reports the
// limit instead of a bare disconnect, then drops the connection (after at most 2 s). At most
// kMaxRefusing such connections are kept; beyond that they are closed at once.
void RpcServer::refuse(kj::Own<Connection> connection) {
  constexpr size_t kMaxRefusing = 64;
  if (refusing_.size() >= kMaxRefusing) return;  // Dropping it closes it.
  connection->id = nextConnectionId_++;
  capnp::Capability::Client refusal = KJ_EXCEPTION(
      OVERLOADED, kj::str("the broker refused the connection: it serves at most ",
                          options_.maxConnections, " connections (max connections); retry later"));
  connection->rpc.emplace(connection->network, kj::mv(refusal));
  uint64_t id = connection->id;
  kj::Promise<void> over = connection->network.onDisconnect();
  KJ_IF_MAYBE (timer, options_.timer) {
    over = over.exclusiveJoin(timer->afterDelay(2 * kj::SECONDS));
  }
  refusing_.push_back(kj::mv(connection));
  tasks_.add(over.then([this, id]() {
    refusing_.remove_if([id](const kj::Own<Connection>& c) { return c->id == id; });
  }));
}

void RpcServer::disconnectAll() {
  refusing_.clear();
  connections_.clear();
  metrics_.connections.store(0, std::memory_order_relaxed);
}

}  // namespace sluice::rpc
