#pragma once

// What a cluster member that does not serve clients (a follower, or a broker waiting for a
// leader) answers on its client addresses: Broker.hello names the leader and the live brokers,
// and every other call fails with an exception that names the leader too, so that a client
// (or an older client library that does not ask first) learns where to go. Thread: kj.

#include <functional>
#include <string>

#include <capnp/capability.h>

#include "core/cluster_view.h"
#include "sluice/schemas/rpc.capnp.h"

namespace sluice::rpc {

// The member's state when a client asks: the cluster as this broker knows it (view.leader
// empty: none known), this broker's id, and why it does not serve.
struct Redirect {
  core::ClusterView view;
  std::string self;
  std::string why;
};

class RedirectService final : public wire::Broker::Server {
 public:
  explicit RedirectService(std::function<Redirect()> current) : current_(std::move(current)) {}

  DispatchCallResult dispatchCall(
      uint64_t interfaceId, uint16_t methodId,
      capnp::CallContext<capnp::AnyPointer, capnp::AnyPointer> context) override;

 protected:
  kj::Promise<void> hello(HelloContext context) override;

 private:
  std::function<Redirect()> current_;
};

}  // namespace sluice::rpc
