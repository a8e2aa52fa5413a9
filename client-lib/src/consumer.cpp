// Client::subscribe and the Consumer handle.

#include <algorithm>
#include <cstdint>
#include <system_error>
#include <utility>

#include "connection.h"
#include "subscription_io.h"
#include "subscription_state.h"

namespace sluice {
namespace {

// What every copy of a Consumer shares. Consumer::state_ aliases `state` but counts references
// to this handle, so dropping the last Consumer closes the subscription even while delivered
// Messages still point to the state.
struct ConsumerHandle {
  explicit ConsumerHandle(std::shared_ptr<detail::SubscriptionState> state)
      : state(std::move(state)) {}
  ~ConsumerHandle() { state->close(); }
  ConsumerHandle(const ConsumerHandle&) = delete;
  ConsumerHandle& operator=(const ConsumerHandle&) = delete;

  std::shared_ptr<detail::SubscriptionState> state;
};

Error noConnection() {
  return Error{ErrorCode::kDisconnected,
               "this consumer has no connection (it was "
               "default-constructed or moved from)"};
}

// Subscribes; returns the pointer a Consumer holds (see ConsumerHandle).
Result<std::shared_ptr<detail::SubscriptionState>> subscribe(
    const std::shared_ptr<detail::Connection>& connection, std::string_view topic,
    std::string_view group, const SubscribeOptions& options, std::function<void(Message)> handler) {
  if (!connection) return detail::disconnectedError();
  if (auto problem = connection->checkMayBlock("subscribe")) return *problem;
  // The wire carries the ack timeout as UInt32 milliseconds, where 0 means "broker default";
  // longer values saturate and the broker rejects them with its own rule.
  if (options.ackTimeout.count() <= 0) {
    return Error{ErrorCode::kInvalidArgument, "ackTimeout must be at least 1 ms, got " +
                                                  std::to_string(options.ackTimeout.count()) +
                                                  " ms"};
  }
  auto ackTimeoutMs =
      static_cast<uint32_t>(std::min<int64_t>(options.ackTimeout.count(), UINT32_MAX));

  const uint64_t id = connection->newId();
  bool callbackMode = static_cast<bool>(handler);
  if (callbackMode && options.prefetch == 0) {
    return Error{ErrorCode::kInvalidArgument,
                 "a consumer with a handler needs prefetch 1-65536; prefetch 0 (fetch) is for "
                 "consumers that call fetch()"};
  }
  auto state = std::make_shared<detail::SubscriptionState>(connection, id, std::string(topic),
                                                           callbackMode, options.prefetch == 0);
  std::weak_ptr<detail::SubscriptionState> weak = state;
  // Subscribes on a connection; made again on each new one when the Client reconnects. (The
  // group exists by then, so `start` only matters the first time.)
  std::function<kj::Promise<Result<uint64_t>>(detail::IoState&)> attach =
      [weak, id, topic = std::string(topic), group = std::string(group), start = options.start,
       prefetch = options.prefetch, ackTimeoutMs, keyOrdered = options.keyOrdered,
       filter = options.filter](detail::IoState& io) {
        auto request = io.broker.subscribeRequest();
        request.setTopic(detail::asText(topic));
        request.setGroup(detail::asText(group));
        detail::toWire(start, request.initStart());
        request.setPrefetch(prefetch);
        request.setAckTimeoutMs(ackTimeoutMs);
        request.setKeyOrdered(keyOrdered);
        detail::toWire(filter, request.initFilter(static_cast<unsigned>(filter.size())));
        request.setHandler(kj::heap<detail::DeliveryHandlerService>(weak, topic));
        return request.send().then(
            [&io, weak,
             id](capnp::Response<wire::Broker::SubscribeResults>&& response) -> Result<uint64_t> {
              auto result = response.getResult();
              if (result.isError()) return detail::fromWire(result.getError());
              auto state = weak.lock();
              if (!state || state->abandoned() || state->closed()) {
                // The caller gave up waiting, or closed the consumer meanwhile: dropping the
                // capability ends the subscription.
                return Error{ErrorCode::kTimeout, "subscribe answered after its caller gave up"};
              }
              io.subscriptions.emplace(
                  id, kj::heap<detail::SubscriptionIo>(io, id, result.getSubscription(), weak));
              state->setConsumerId(result.getConsumerId());
              return result.getConsumerId();
            });
      };
  auto consumerId =
      connection->call<uint64_t>("subscribe", [attach, weak, id](detail::IoState& io) {
        return attach(io).then([&io, attach, weak, id](Result<uint64_t> subscribed) {
          if (subscribed.ok()) io.reattach[id] = detail::Reattach{attach, weak};
          return subscribed;
        });
      });
  if (!consumerId.ok()) {
    if (consumerId.error().code == ErrorCode::kTimeout) state->abandon();
    // Deliveries may have come before the answer was lost (the broker subscribed, then the
    // connection died): each holds the state, which holds them. Closing drops them and any
    // that come later, or the two would keep each other alive forever.
    state->close();
    return consumerId.error();
  }
  auto handle = std::make_shared<ConsumerHandle>(state);
  if (callbackMode) {
    try {
      state->startWorker(state, std::move(handler));
    } catch (const std::system_error& e) {
      return Error{ErrorCode::kInternal,
                   std::string("could not start the consumer's handler thread: ") + e.what()};
    }  // `handle` closes the subscription.
  }
  return std::shared_ptr<detail::SubscriptionState>(handle, state.get());
}

}  // namespace

Result<Consumer> Client::subscribe(std::string_view topic, std::string_view group,
                                   SubscribeOptions options) {
  auto state = sluice::subscribe(connection_, topic, group, options, nullptr);
  if (!state.ok()) return state.error();
  Consumer consumer;
  consumer.state_ = std::move(state).value();
  return consumer;
}

Result<Consumer> Client::subscribe(std::string_view topic, std::string_view group,
                                   SubscribeOptions options, std::function<void(Message)> handler) {
  if (!handler) {
    return Error{ErrorCode::kInvalidArgument, "subscribe with a handler needs a non-empty handler"};
  }
  auto state = sluice::subscribe(connection_, topic, group, options, std::move(handler));
  if (!state.ok()) return state.error();
  Consumer consumer;
  consumer.state_ = std::move(state).value();
  return consumer;
}

Result<Message> Consumer::receive(std::chrono::milliseconds timeout) {
  if (!state_) return noConnection();
  return state_->receive(timeout);
}

Result<std::vector<Message>> Consumer::fetch(uint32_t max, std::chrono::milliseconds timeout) {
  if (!state_) return noConnection();
  return state_->fetch(max, timeout);
}

Result<TransactionResult> Consumer::transact(const Transaction& transaction) {
  if (!state_) return noConnection();
  return state_->transact(transaction);
}

std::future<Result<TransactionResult>> Consumer::transactAsync(const Transaction& transaction) {
  detail::Completion<TransactionResult> completion;
  auto future = completion.future();
  if (!state_) {
    completion.complete(noConnection());
  } else {
    state_->transactAsync(transaction, std::move(completion));
  }
  return future;
}

void Consumer::transactAsync(const Transaction& transaction,
                             std::function<void(Result<TransactionResult>)> done) {
  detail::Completion<TransactionResult> completion(std::move(done));
  if (!state_) return completion.complete(noConnection());
  state_->transactAsync(transaction, std::move(completion));
}

Transaction& Transaction::ack(const Message& message) {
  acks.push_back(message);
  return *this;
}

Transaction& Transaction::publish(std::string_view topic, OutgoingMessage message) {
  for (auto& [name, messages] : publishes) {
    if (name == topic) {
      messages.push_back(std::move(message));
      return *this;
    }
  }
  publishes.emplace_back(std::string(topic), std::vector<OutgoingMessage>{std::move(message)});
  return *this;
}

void Consumer::close() {
  if (state_) state_->close();
}

uint64_t Consumer::id() const {
  return state_ ? state_->consumerId() : 0;
}

}  // namespace sluice
