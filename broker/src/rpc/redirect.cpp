#include "rpc/redirect.h"

#include <capnp/schema.h>
#include <kj/debug.h>

#include "rpc/wire.h"

namespace sluice::rpc {

namespace {
// The message every call but hello fails with.
std::string refusal(const Redirect& redirect) {
  std::string leader = "no leader is known yet (" + redirect.why + ")";
  for (const core::ReplicaView& broker : redirect.view.brokers) {
    if (broker.id == redirect.view.leader && !broker.rpcAddress.empty()) {
      leader = "connect to the leader " + broker.id + " at " + broker.rpcAddress +
               (broker.tlsAddress.empty() ? "" : " (TLS " + broker.tlsAddress + ")");
    }
  }
  return "broker " + redirect.self + " of cluster " + redirect.view.clusterId +
         " does not serve clients: " + leader;
}
}  // namespace

RedirectService::DispatchCallResult RedirectService::dispatchCall(
    uint64_t interfaceId, uint16_t methodId,
    capnp::CallContext<capnp::AnyPointer, capnp::AnyPointer> context) {
  constexpr uint16_t kHello = 6;  // Broker.hello @6
  if (interfaceId == capnp::typeId<wire::Broker>() && methodId == kHello) {
    return wire::Broker::Server::dispatchCall(interfaceId, methodId, context);
  }
  return {KJ_EXCEPTION(FAILED, refusal(current_()).c_str()), false};
}

kj::Promise<void> RedirectService::hello(HelloContext context) {
  Redirect redirect = current_();
  toWire(redirect.view, redirect.self, /*serves=*/false, redirect.why,
         context.getResults().initHello());
  return kj::READY_NOW;
}

}  // namespace sluice::rpc
