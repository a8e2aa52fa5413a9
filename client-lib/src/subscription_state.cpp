#include "subscription_state.h"

#include <algorithm>
#include <cstdint>
#include <utility>

#include "connection.h"
#include "subscription_io.h"

namespace sluice::detail {

SubscriptionState::SubscriptionState(std::shared_ptr<Connection> connection, uint64_t id,
                                     std::string topic, bool callbackMode)
    : connection_(std::move(connection)),
      id_(id),
      topic_(std::move(topic)),
      callbackMode_(callbackMode) {}

SubscriptionState::~SubscriptionState() {
  // close() joins or detaches the worker before the last owner can go; this only guards
  // against std::terminate should that ever change.
  if (worker_.joinable()) worker_.detach();
}

Message SubscriptionState::makeMessage(DeliveryFields fields, const std::string& topic,
                                       std::shared_ptr<SubscriptionState> owner) {
  Message message;
  message.offset_ = fields.offset;
  message.timestampMs_ = fields.timestampMs;
  message.key_ = std::move(fields.key);
  message.headers_ = std::move(fields.headers);
  message.payload_ = std::move(fields.payload);
  message.id_ = std::move(fields.id);
  message.deliveries_ = fields.deliveries;
  message.deliveryId_ = fields.deliveryId;
  message.topic_ = topic;
  message.subscription_ = std::move(owner);
  return message;
}

Result<Message> SubscriptionState::receive(std::chrono::milliseconds timeout) {
  if (callbackMode_) {
    return Error{ErrorCode::kInvalidArgument,
                 "receive() is for pull consumers; this consumer was subscribed with a handler, "
                 "which gets every message"};
  }
  std::unique_lock<std::mutex> lock(mu_);
  wake_.wait_for(lock, saturatedTimeout(timeout),
                 [&] { return closed_ || !inbox_.empty() || ended_.has_value(); });
  if (closed_) return Error{ErrorCode::kDisconnected, "the consumer was closed"};
  if (!inbox_.empty()) {
    Message message = std::move(inbox_.front());
    inbox_.pop_front();
    return message;
  }
  if (ended_) return *ended_;
  return Error{ErrorCode::kTimeout, "no message arrived on topic \"" + topic_ + "\" within " +
                                        std::to_string(timeout.count()) + " ms"};
}

void SubscriptionState::close() {
  std::deque<Message> dropped;
  std::thread worker;
  bool first = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!closed_) {
      first = true;
      closed_ = true;
      dropped.swap(inbox_);
    }
    worker = std::move(worker_);
  }
  wake_.notify_all();
  if (first) {
    // Releasing the capability on the broker ends the subscription there; the broker then
    // redelivers everything unacknowledged (including `dropped`) to the group's others.
    connection_->post([id = id_](IoState& io) { io.subscriptions.erase(id); });
  }
  if (worker.joinable()) {
    // The handler may call close() itself, and the I/O thread must never wait on user code.
    if (worker.get_id() == std::this_thread::get_id() || connection_->onIoThread()) {
      worker.detach();  // It holds its own reference to this state and exits soon.
    } else {
      worker.join();
    }
  }
}

void SubscriptionState::startWorker(std::shared_ptr<SubscriptionState> self,
                                    std::function<void(Message)> handler) {
  std::lock_guard<std::mutex> lock(mu_);
  worker_ = std::thread([self = std::move(self), handler = std::move(handler)]() mutable {
    self->runWorker(std::move(handler));
  });
}

void SubscriptionState::runWorker(std::function<void(Message)> handler) {
  for (;;) {
    Message message;
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [&] { return closed_ || !inbox_.empty() || ended_.has_value(); });
      // After end(), the handler still gets what was delivered before it.
      if (closed_ || inbox_.empty()) return;
      message = std::move(inbox_.front());
      inbox_.pop_front();
    }
    try {
      handler(std::move(message));
    } catch (...) {
      // The message stays unacknowledged, so the broker redelivers it after the ack timeout.
    }
  }
}

void SubscriptionState::abandon() {
  abandoned_.store(true, std::memory_order_release);
  connection_->post([id = id_](IoState& io) { io.subscriptions.erase(id); });
}

std::future<Result<void>> SubscriptionState::settle(
    uint64_t offset, uint64_t deliveryId, std::optional<std::chrono::milliseconds> delay) {
  auto done = std::make_shared<Completion<void>>();
  auto future = done->future();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) {
      done->complete(closedConsumerError(offset));
      return future;
    }
  }
  // The wire carries a nack delay as UInt32 milliseconds (about 49 days).
  uint32_t delayMs = 0;
  if (delay) {
    auto ms = std::clamp<int64_t>(delay->count(), 0, UINT32_MAX);
    delayMs = static_cast<uint32_t>(ms);
  }
  connection_->post([id = id_, offset, deliveryId, nack = delay.has_value(), delayMs,
                     done = std::move(done)](IoState& io) {
    auto it = io.subscriptions.find(id);
    if (it == io.subscriptions.end()) {
      done->complete(closedConsumerError(offset));
      return;
    }
    it->second->settle({offset, deliveryId}, nack, delayMs, std::move(*done));
  });
  return future;
}

Result<void> SubscriptionState::await(std::future<Result<void>>& future, const char* what) const {
  return connection_->await(future, what);
}

std::optional<Error> SubscriptionState::checkMayBlock(const char* what) const {
  return connection_->checkMayBlock(what);
}

void SubscriptionState::push(std::vector<Message> messages) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!closed_) {
      for (auto& message : messages)
        inbox_.push_back(std::move(message));
      messages.clear();
    }
  }
  wake_.notify_all();
  // After close(), `messages` are dropped here, outside the lock.
}

void SubscriptionState::end(Error error, bool dropQueued) {
  std::deque<Message> dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!ended_) ended_ = std::move(error);
    if (dropQueued) dropped.swap(inbox_);
  }
  wake_.notify_all();
}

}  // namespace sluice::detail
