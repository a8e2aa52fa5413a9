#pragma once

// Accepts RPC connections and gives each its own TwoPartyVatNetwork (with deliberate reader
// limits) and RpcSystem whose bootstrap is a fresh BrokerService. Thread: kj.

#include <cstdint>
#include <list>
#include <memory>
#include <string>

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>

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
};

class RpcServer final : private kj::TaskSet::ErrorHandler {
 public:
  RpcServer(core::Broker& broker, core::Metrics& metrics, kj::Network& network,
            ServerOptions options);
  ~RpcServer() noexcept(false);

  // Binds `address` ("host:port"; port 0 picks one) and starts accepting. Resolves to the port.
  kj::Promise<uint> listen(const std::string& address);
  // Stops accepting new connections; open ones keep working.
  void stopAccepting();
  // Closes every connection (dropping their capabilities).
  void disconnectAll();
  size_t connectionCount() const { return connections_.size(); }

 private:
  struct Connection;
  kj::Promise<void> acceptLoop();
  void accept(kj::Own<kj::AsyncIoStream> stream);
  void refuse(kj::Own<Connection> connection);
  void taskFailed(kj::Exception&& exception) override;

  core::Broker& broker_;
  core::Metrics& metrics_;
  kj::Network& network_;
  ServerOptions options_;
  kj::Own<kj::ConnectionReceiver> listener_;
  std::list<kj::Own<Connection>> connections_;
  std::list<kj::Own<Connection>> refusing_;  // Over maxConnections; closed soon.
  uint64_t refusals_ = 0;
  uint64_t nextConnectionId_ = 1;
  uint64_t acceptFailures_ = 0;  // In a row; reset by the next accepted connection.
  kj::Promise<void> acceptTask_ = nullptr;
  kj::TaskSet tasks_;
};

}  // namespace sluice::rpc
