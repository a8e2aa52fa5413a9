#include "rpc/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <capnp/serialize-async.h>
#include <spdlog/spdlog.h>

namespace sluice::rpc {
namespace {

std::shared_ptr<spdlog::logger> serverLog() {
  static auto logger = [] {
    auto named = spdlog::get("rpc");
    return named ? named : spdlog::default_logger();
  }();
  return logger;
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
          if (e.getType() != kj::Exception::Type::DISCONNECTED) {
            serverLog()->warn("connection dropped peer={} reason=\"{}\"", peer_,
                              e.getDescription().cStr());
          }
          return kj::mv(e);
        });
  }
  kj::Promise<void> writeMessage(
      kj::ArrayPtr<const int> fds,
      kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments) override {
    return inner_.writeMessage(fds, segments);
  }
  kj::Promise<void> writeMessages(
      kj::ArrayPtr<kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>>> messages) override {
    return inner_.writeMessages(messages);
  }
  kj::Maybe<int> getSendBufferSize() override { return inner_.getSendBufferSize(); }
  kj::Promise<void> end() override { return inner_.end(); }

 private:
  capnp::AsyncIoMessageStream inner_;
  std::string peer_;
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
    : broker_(broker), metrics_(metrics), network_(network), options_(options), tasks_(*this) {}

RpcServer::~RpcServer() noexcept(false) {
  acceptTask_ = nullptr;
  disconnectAll();
}

void RpcServer::taskFailed(kj::Exception&& exception) {
  serverLog()->warn("connection task failed: {}", exception.getDescription().cStr());
}

kj::Promise<uint> RpcServer::listen(const std::string& address) {
  return network_.parseAddress(address).then([this](kj::Own<kj::NetworkAddress> addr) {
    listener_ = addr->listen();
    acceptTask_ = acceptLoop().eagerlyEvaluate([](kj::Exception&& e) {
      serverLog()->error("accept loop stopped: {}", e.getDescription().cStr());
    });
    return listener_->getPort();
  });
}

kj::Promise<void> RpcServer::acceptLoop() {
  return listener_->accept().then([this](kj::Own<kj::AsyncIoStream> stream) {
    accept(kj::mv(stream));
    return acceptLoop();
  });
}

void RpcServer::accept(kj::Own<kj::AsyncIoStream> stream) {
  std::string peer = peerOf(*stream);
  if (connections_.size() >= options_.maxConnections) {
    serverLog()->warn("connection refused peer={} reason=\"max connections ({}) reached\"", peer,
                      options_.maxConnections);
    return;  // Dropping the stream closes it.
  }
  capnp::ReaderOptions reader;
  reader.traversalLimitInWords = options_.traversalLimitWords;
  reader.nestingLimit = options_.nestingLimit;
  auto connection = kj::heap<Connection>(kj::mv(stream), peer, reader);
  connection->id = nextConnectionId_++;
  auto info = std::make_shared<ConnectionInfo>();
  info->peer = peer;
  capnp::Capability::Client bootstrap =
      kj::heap<BrokerService>(broker_, std::move(info), options_.service);
  connection->rpc = capnp::makeRpcServer(connection->network, kj::mv(bootstrap));
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
  acceptTask_ = nullptr;
  listener_ = nullptr;
}

void RpcServer::disconnectAll() {
  connections_.clear();
  metrics_.connections.store(0, std::memory_order_relaxed);
}

}  // namespace sluice::rpc
