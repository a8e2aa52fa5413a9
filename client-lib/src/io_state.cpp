#include "io_state.h"

#include <cstdio>

#include "producer_io.h"
#include "subscription_io.h"
#include "subscription_state.h"

namespace sluice::detail {

IoState::IoState(kj::Timer& timer, wire::Broker::Client broker, wire::Admin::Client admin)
    : timer(timer),
      broker(kj::mv(broker)),
      admin(kj::mv(admin)),
      tasks(kj::heap<kj::TaskSet>(taskErrors)) {}

IoState::~IoState() = default;

void IoState::shutdown(const Error& reason, bool keepSubscribed) {
  shuttingDown = true;
  // Consumers first, so that receive() returns kDisconnected without waiting for the rest.
  for (auto& [id, subscription] : subscriptions) {
    if (keepSubscribed && reattach.count(id) > 0) {
      subscription->lostConnection();
    } else {
      subscription->end(reason, /*dropQueued=*/true);
    }
  }
  // Subscribing again, not answered yet.
  if (!keepSubscribed) {
    for (auto& [id, again] : reattach) {
      if (subscriptions.count(id) > 0) continue;
      if (auto subscriber = again.state.lock()) subscriber->end(reason, /*dropQueued=*/true);
    }
  }
  subscriptions.clear();
  // Cancelling the tasks destroys the Completions they hold: in-flight calls answer
  // kDisconnected. Then the producers' queued messages do the same, in order.
  tasks = nullptr;
  producers.clear();
}

void IoState::TaskErrorHandler::taskFailed(kj::Exception&& exception) {
  // Every task turns its own failures into Results, so this is a library bug. The library has
  // no logger of its own; stderr at least makes it visible.
  std::fprintf(stderr, "libsluice: internal task failed: %s\n", exception.getDescription().cStr());
}

}  // namespace sluice::detail
