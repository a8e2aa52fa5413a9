#pragma once

// IoState: everything the I/O thread owns while a connection is up — the broker capabilities,
// the tasks carrying outstanding RPCs, and the I/O side of each producer and subscription.
// Commands (connection.h) receive it by reference.
//
// Thread: kj. Created after the connection is established, destroyed before the event loop.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <unordered_map>

#include <kj/async.h>
#include <kj/timer.h>

#include "completion.h"
#include "convert.h"
#include "sluice/schemas/rpc.capnp.h"

namespace sluice::detail {

class ProducerIo;
class SubscriptionIo;
class SubscriptionState;
struct IoState;

// How a subscription is made again on a new connection (a Client given several brokers
// reconnects): `attach` sends the subscribe and, once answered, registers its SubscriptionIo;
// its result is the consumer id, or the broker's refusal, which ends `state`.
struct Reattach {
  std::function<kj::Promise<Result<uint64_t>>(IoState&)> attach;
  std::weak_ptr<SubscriptionState> state;
};

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
  // keepSubscribed: the connection is being made again; subscriptions in `reattach` are not
  // ended but lose what was delivered to them (the broker delivers it again).
  void shutdown(const Error& reason, bool keepSubscribed = false);

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
  // The subscriptions to make again after a reconnect, by id; erased with the subscription.
  std::map<uint64_t, Reattach> reattach;
};

}  // namespace sluice::detail
