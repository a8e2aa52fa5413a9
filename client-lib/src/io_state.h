#pragma once

// IoState: everything the I/O thread owns while a connection is up — the broker capabilities,
// the tasks carrying outstanding RPCs, and the I/O side of each producer and subscription.
// Commands (connection.h) receive it by reference.
//
// Thread: kj. Created after the connection is established, destroyed before the event loop.

#include <cstdint>
#include <unordered_map>

#include <kj/async.h>
#include <kj/timer.h>

#include "completion.h"
#include "convert.h"
#include "sluice/schemas/rpc.capnp.h"

namespace sluice::detail {

class ProducerIo;
class SubscriptionIo;

struct IoState {
  IoState(kj::Timer& timer, wire::Broker::Client broker, wire::Admin::Client admin);
  ~IoState();
  IoState(const IoState&) = delete;
  IoState& operator=(const IoState&) = delete;

  // Completes `done` with the result of `promise`; a KJ exception becomes an Error
  // (fromException). If the connection closes first, `done` completes with kDisconnected.
  template <typename T>
  void track(kj::Promise<Result<T>> promise, Completion<T> done) {
    tasks->add(
        promise
            .catch_([](kj::Exception&& exception) -> Result<T> { return fromException(exception); })
            .then([done = std::move(done)](Result<T>&& result) mutable {
              done.complete(std::move(result));
            }));
  }

  // Ends every subscription with `reason` (a kDisconnected error) and completes every
  // outstanding call and queued publish with kDisconnected. Called once, before destruction.
  void shutdown(const Error& reason);

  kj::Timer& timer;
  wire::Broker::Client broker;
  wire::Admin::Client admin;
  // True once shutdown() started: no new RPCs may be sent.
  bool shuttingDown = false;

  class TaskErrorHandler final : public kj::TaskSet::ErrorHandler {
   public:
    void taskFailed(kj::Exception&& exception) override;
  };
  TaskErrorHandler taskErrors;
  // Every outstanding RPC chain. Reset in shutdown(), which cancels them.
  kj::Own<kj::TaskSet> tasks;

  // Keyed by the ids from Connection::newId().
  std::unordered_map<uint64_t, kj::Own<SubscriptionIo>> subscriptions;
  std::unordered_map<uint64_t, kj::Own<ProducerIo>> producers;
};

}  // namespace sluice::detail
