#include "subscription_io.h"

#include <set>
#include <string>
#include <utility>

#include "convert.h"
#include "io_state.h"
#include "subscription_state.h"

namespace sluice::detail {
namespace {

using Named = SubscriptionIo::Named;
using Failures = std::map<Named, Error>;
using Waiters = std::vector<std::pair<Named, Completion<void>>>;

// Completes each waiter from the reply to one ack or nack call.
template <typename Results>
void completeFromReply(IoState& io, kj::Promise<capnp::Response<Results>> reply, Waiters waiters) {
  io.tasks->add(reply
                    .then([](capnp::Response<Results>&& response) -> Result<Failures> {
                      Failures failures;
                      for (auto failure : response.getFailures()) {
                        failures.emplace(Named{failure.getOffset(), failure.getDeliveryId()},
                                         fromWire(failure.getError()));
                      }
                      return failures;
                    })
                    .catch_([](kj::Exception&& exception) -> Result<Failures> {
                      return fromException(exception);
                    })
                    .then([waiters = std::move(waiters)](Result<Failures>&& failures) mutable {
                      for (auto& [delivery, done] : waiters) {
                        if (!failures.ok()) {
                          done.complete(failures.error());
                          continue;
                        }
                        auto it = failures.value().find(delivery);
                        if (it == failures.value().end()) {
                          done.complete(Result<void>());
                        } else {
                          done.complete(it->second);
                        }
                      }
                    }));
}

// Sets the request's offsets and delivery ids: each queued delivery once, in the order first
// queued.
template <typename Request>
void setDeliveries(Request& request, const Waiters& waiters) {
  std::vector<Named> named;
  std::set<Named> seen;
  for (const auto& waiter : waiters) {
    if (seen.insert(waiter.first).second) named.push_back(waiter.first);
  }
  auto offsets = request.initOffsets(static_cast<unsigned>(named.size()));
  auto ids = request.initDeliveryIds(static_cast<unsigned>(named.size()));
  for (unsigned i = 0; i < named.size(); ++i) {
    offsets.set(i, named[i].first);
    ids.set(i, named[i].second);
  }
}

}  // namespace

Error closedConsumerError(uint64_t offset) {
  return Error{ErrorCode::kNotPending,
               "message at offset " + std::to_string(offset) +
                   " cannot be acknowledged: the consumer that received it was closed, so the "
                   "broker hands it to the group's other consumers"};
}

DeliveryHandlerService::DeliveryHandlerService(std::weak_ptr<SubscriptionState> state,
                                               std::string topic)
    : state_(std::move(state)), topic_(std::move(topic)) {}

kj::Promise<void> DeliveryHandlerService::deliver(DeliverContext context) {
  auto state = state_.lock();
  if (!state) return kj::READY_NOW;
  auto deliveries = context.getParams().getMessages();
  std::vector<Message> messages;
  messages.reserve(deliveries.size());
  for (auto delivery : deliveries) {
    messages.push_back(SubscriptionState::makeMessage(fromWire(delivery), topic_, state));
  }
  state->push(std::move(messages));
  // The broker's prefetch window bounds what it sends, so the stream never needs to wait here.
  return kj::READY_NOW;
}

kj::Promise<void> DeliveryHandlerService::closed(ClosedContext context) {
  if (auto state = state_.lock()) state->end(fromWire(context.getParams().getError()), false);
  return kj::READY_NOW;
}

SubscriptionIo::SubscriptionIo(IoState& io, uint64_t id, wire::Subscription::Client subscription,
                               std::weak_ptr<SubscriptionState> state)
    : io_(io), id_(id), subscription_(kj::mv(subscription)), state_(std::move(state)) {}

SubscriptionIo::~SubscriptionIo() {
  // Settlements queued before close() still go out, ahead of the capability's release.
  if (!io_.shuttingDown) flush();
}

void SubscriptionIo::settle(Named delivery, bool nack, uint32_t delayMs, Completion<void> done) {
  if (nack) {
    nacks_[delayMs].emplace_back(delivery, std::move(done));
  } else {
    acks_.emplace_back(delivery, std::move(done));
  }
  if (flushScheduled_) return;
  flushScheduled_ = true;
  // Runs after every command of this wakeup, so their settlements share one call. Looked up
  // by id because close() may have destroyed this object by then.
  io_.tasks->add(kj::evalLater([&io = io_, id = id_] {
    auto it = io.subscriptions.find(id);
    if (it != io.subscriptions.end()) it->second->flush();
  }));
}

void SubscriptionIo::flush() {
  flushScheduled_ = false;
  if (io_.shuttingDown) return;  // Queued waiters complete with kDisconnected when destroyed.
  if (!acks_.empty()) {
    auto request = subscription_.ackRequest();
    setDeliveries(request, acks_);
    completeFromReply<wire::Subscription::AckResults>(io_, request.send(), std::move(acks_));
    acks_.clear();
  }
  for (auto& [delayMs, waiters] : nacks_) {
    auto request = subscription_.nackRequest();
    setDeliveries(request, waiters);
    request.setDelayMs(delayMs);
    completeFromReply<wire::Subscription::NackResults>(io_, request.send(), std::move(waiters));
  }
  nacks_.clear();
}

void SubscriptionIo::end(const Error& error, bool dropQueued) {
  if (auto state = state_.lock()) state->end(error, dropQueued);
}

}  // namespace sluice::detail
