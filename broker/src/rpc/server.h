#pragma once

// Accepts RPC connections and gives each its own TwoPartyVatNetwork (with deliberate reader
// limits) and RpcSystem whose bootstrap is a fresh BrokerService. Thread: kj.

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>
#include <kj/compat/tls.h>

#include "core/broker.h"
#include "rpc/services.h"

namespace sluice::rpc {

struct ServerOptions {
  // Reader limits for every incoming RPC message. The traversal limit bounds how much one
  // message may make the broker read (a publish batch is at most Limits::maxBatchBytes of
  // payload, plus framing); the nesting limit is far above the schema's real depth (< 8).
  uint64_t traversalLimitWords = (80ull << 20) / 8;
  int nestingLimit = 32;
  // Backpressure per connection: once this many words of calls await their answers, the
  // connection's next message is not read until some are answered (capnp's flow limit), so a
  // client that floods publishes waits in TCP instead of in broker memory. Above the client
  // library's default in-flight window (8 batches of 4 MiB), so well-behaved producers never
  // feel it. One call may exceed it alone (up to the traversal limit).
  uint64_t flowLimitWords = (32ull << 20) / 8;
  uint32_t maxConnections = 10000;
  ServiceLimits service;
  // Paces retries of a failed accept (out of file descriptors: EMFILE, ENFILE); null: the
  // server stops accepting at the first such failure.
  kj::Timer* timer = nullptr;
  // Reads the pipe of Admin.backup (the AsyncIoContext's lowLevelProvider); null: backups
  // answer kStorageFailed.
  kj::LowLevelAsyncIoProvider* lowLevelIo = nullptr;
  // TLS handshakes in progress at most (each bounded by the TLS context's own timeout); a
  // connection arriving beyond that is closed at once, so stalled or garbage handshakes cost a
  // slot each and never the accept loop.
  uint32_t maxHandshakes = 256;
};

class RpcServer final : private kj::TaskSet::ErrorHandler {
 public:
  // Makes a connection's bootstrap capability, given what the connection knows of its peer
  // and the common name of its verified client certificate (TLS listeners that ask for one).
  using Bootstrap = std::function<capnp::Capability::Client(
      std::shared_ptr<ConnectionInfo> connection, std::optional<std::string> certificateName)>;

  // Serves `broker`: each connection's bootstrap is a BrokerService.
  RpcServer(core::Broker& broker, core::Metrics& metrics, kj::Network& network,
            ServerOptions options);
  RpcServer(Bootstrap bootstrap, core::Metrics& metrics, kj::Network& network,
            ServerOptions options);
  ~RpcServer() noexcept(false);

  // Binds `address` ("host:port"; port 0 picks one) and starts accepting (again, after
  // stopAccepting). Resolves to the port.
  kj::Promise<uint> listen(const std::string& address);
  // The same for a TLS listener: every connection's handshake runs on its own, through `tls`
  // (which must outlive this server), before it is served as any other.
  kj::Promise<uint> listenTls(const std::string& address, kj::TlsContext& tls);
  // Stops accepting new connections; open ones keep working.
  void stopAccepting();
  // Closes every connection (dropping their capabilities).
  void disconnectAll();
  size_t connectionCount() const { return connections_.size(); }

 private:
  struct Connection;
  struct Listener {
    kj::Own<kj::ConnectionReceiver> receiver;
    kj::TlsContext* tls = nullptr;  // Null: plaintext.
    kj::Promise<void> task = nullptr;
    uint64_t acceptFailures = 0;  // In a row; reset by the next accepted connection.
  };
  kj::Promise<uint> startListening(const std::string& address, kj::TlsContext* tls);
  kj::Promise<void> acceptLoop(Listener& listener);
  void handshake(kj::TlsContext& tls, kj::Own<kj::AsyncIoStream> stream);
  // certificateName: the common name of a verified client certificate (TLS listeners).
  void accept(kj::Own<kj::AsyncIoStream> stream, std::string peer,
              std::optional<std::string> certificateName = std::nullopt);
  void refuse(kj::Own<Connection> connection);
  void taskFailed(kj::Exception&& exception) override;

  Bootstrap bootstrap_;
  core::Metrics& metrics_;
  kj::Network& network_;
  ServerOptions options_;
  std::list<Listener> listeners_;
  std::list<kj::Own<Connection>> connections_;
  std::list<kj::Own<Connection>> refusing_;  // Over maxConnections; closed soon.
  uint64_t refusals_ = 0;
  uint64_t nextConnectionId_ = 1;
  bool accepting_ = true;           // Until stopAccepting(): a handshake ending later is dropped.
  uint32_t handshakes_ = 0;         // TLS handshakes in progress.
  uint64_t handshakeRefusals_ = 0;  // Connections closed because maxHandshakes were running.
  kj::TaskSet tasks_;
};

}  // namespace sluice::rpc
