#include "subscription_state.h"

#include <algorithm>
#include <cstdint>
#include <utility>

#include "connection.h"
#include "subscription_io.h"

namespace sluice::detail {

SubscriptionState::SubscriptionState(std::shared_ptr<Connection> connection, uint64_t id,
                                     std::string topic, bool callbackMode, bool fetchMode)
    : connection_(std::move(connection)),
      id_(id),
      topic_(std::move(topic)),
      callbackMode_(callbackMode),
      fetchMode_(fetchMode) {}

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
  message.deliverAtMs_ = fields.deliverAtMs;
  message.expiresAtMs_ = fields.expiresAtMs;
  message.topic_ = topic;
  message.subject_ = std::move(fields.subject);
  message.subscription_ = std::move(owner);
  return message;
}

Result<Message> SubscriptionState::receive(std::chrono::milliseconds timeout) {
  if (callbackMode_) {
    return Error{ErrorCode::kInvalidArgument,
                 "receive() is for pull consumers; this consumer was subscribed with a handler, "
                 "which gets every message"};
  }
  if (fetchMode_) {
    auto fetched = fetch(1, timeout);
    if (!fetched.ok()) return fetched.error();
    if (!fetched.value().empty()) return std::move(fetched.value().front());
    return Error{ErrorCode::kTimeout, "no message arrived on topic \"" + topic_ + "\" within " +
                                          std::to_string(timeout.count()) + " ms"};
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

Result<std::vector<Message>> SubscriptionState::fetch(uint32_t max,
                                                      std::chrono::milliseconds timeout) {
  if (callbackMode_ || !fetchMode_) {
    return Error{ErrorCode::kInvalidArgument,
                 "fetch() is for consumers subscribed with prefetch 0; this one has messages "
                 "pushed to it"};
  }
  if (max == 0) return Error{ErrorCode::kInvalidArgument, "fetch takes at least 1 message, got 0"};
  if (timeout.count() < 0) {
    return Error{ErrorCode::kInvalidArgument,
                 "fetch timeout must not be negative, got " + std::to_string(timeout.count())};
  }
  if (auto problem = checkMayBlock("fetch")) return *problem;
  std::lock_guard<std::mutex> one(fetchMu_);
  const auto deadline = std::chrono::steady_clock::now() + saturatedTimeout(timeout);
  std::vector<Message> out;
  std::unique_lock<std::mutex> lock(mu_);
  for (bool asked = false;;) {
    // The inbox holds what fetches answered: this one's, or one whose caller gave up.
    while (!inbox_.empty() && out.size() < max) {
      out.push_back(std::move(inbox_.front()));
      inbox_.pop_front();
    }
    if (closed_) return Error{ErrorCode::kDisconnected, "the consumer was closed"};
    if (out.size() == max) return out;
    if (ended_) {
      if (out.empty()) return *ended_;
      return out;
    }
    // Rounded up: the call returns only once the whole timeout has passed.
    auto left =
        std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (asked && left.count() <= 0) return out;
    left = std::max(left, std::chrono::milliseconds(0));
    asked = true;
    uint64_t seq = ++fetchSeq_;
    fetchAnswer_.reset();
    fetchCutShort_ = false;
    auto want = static_cast<uint32_t>(max - out.size());
    // The broker rejects timeouts beyond its limit with its own rule.
    auto timeoutMs = static_cast<uint32_t>(std::min<int64_t>(left.count(), UINT32_MAX));
    lock.unlock();
    bool posted = connection_->post([id = id_, seq, want, timeoutMs](IoState& io) {
      auto it = io.subscriptions.find(id);
      if (it != io.subscriptions.end()) it->second->fetch(seq, want, timeoutMs);
    });
    lock.lock();
    if (!posted) return disconnectedError();
    // The broker answers within `left`; the call timeout is the margin for the way back.
    bool answered =
        wake_.wait_for(lock, saturatedTimeout(left + connection_->options().callTimeout),
                       [&] { return closed_ || ended_ || fetchAnswer_.has_value(); });
    if (!answered) {
      if (!out.empty()) return out;
      return Error{ErrorCode::kTimeout, "the broker did not answer fetch within " +
                                            std::to_string(timeout.count()) +
                                            " ms plus the call timeout"};
    }
    if (fetchCutShort_) return out;  // Its connection was lost (dropInbox).
    if (fetchAnswer_ && !fetchAnswer_->ok()) {
      Error error = fetchAnswer_->error();
      if (out.empty()) return error;
      return out;  // The same error comes back on the next call.
    }
  }
}

void SubscriptionState::fetchAnswered(uint64_t seq, Result<size_t> answer) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (seq != fetchSeq_) return;  // A fetch whose caller gave up: its messages are queued.
    fetchAnswer_ = std::move(answer);
  }
  wake_.notify_all();
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
    connection_->post([id = id_](IoState& io) {
      io.subscriptions.erase(id);
      io.reattach.erase(id);
    });
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

bool SubscriptionState::closed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return closed_;
}

void SubscriptionState::dropInbox() {
  std::deque<Message> dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    dropped.swap(inbox_);
    // A fetch waiting for the lost connection's answer returns what it has (or nothing).
    if (!fetchAnswer_) {
      fetchAnswer_ = Result<size_t>(size_t{0});
      fetchCutShort_ = true;
    }
  }
  wake_.notify_all();
}

void SubscriptionState::abandon() {
  abandoned_.store(true, std::memory_order_release);
  connection_->post([id = id_](IoState& io) {
    io.subscriptions.erase(id);
    io.reattach.erase(id);
  });
}

std::future<Result<void>> SubscriptionState::settle(uint64_t offset, uint64_t deliveryId,
                                                    Settlement settlement) {
  auto done = std::make_shared<Completion<void>>();
  auto future = done->future();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) {
      done->complete(closedConsumerError(offset));
      return future;
    }
  }
  connection_->post(
      [id = id_, offset, deliveryId, settlement, done = std::move(done)](IoState& io) {
        auto it = io.subscriptions.find(id);
        if (it == io.subscriptions.end()) {
          done->complete(closedConsumerError(offset));
          return;
        }
        it->second->settle({offset, deliveryId}, settlement, std::move(*done));
      });
  return future;
}

Result<TransactionResult> SubscriptionState::transact(const Transaction& transaction) {
  if (auto problem = checkMayBlock("transact")) return *problem;
  Completion<TransactionResult> completion;
  auto future = completion.future();
  transactAsync(transaction, std::move(completion));
  return connection_->await(future, "transact");
}

void SubscriptionState::transactAsync(const Transaction& transaction,
                                      Completion<TransactionResult> completion) {
  std::vector<SubscriptionIo::Named> offsets;
  for (const Message& message : transaction.acks) {
    if (message.subscription_.get() != this) {
      return completion.complete(Error{
          ErrorCode::kInvalidArgument,
          "transaction: message at offset " + std::to_string(message.offset()) +
              (message.subscription_ ? " was delivered to another consumer" : " was read by peek") +
              "; a transaction acknowledges messages this consumer holds"});
    }
    offsets.emplace_back(message.offset(), message.deliveryId());
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_)
      return completion.complete(Error{ErrorCode::kDisconnected, "the consumer was closed"});
  }
  // Copied for the I/O thread (the caller's may be gone if the call times out), without the
  // messages: they own this state, which the I/O thread must never keep alive.
  Transaction sent{transaction.id, {}, transaction.publishes};
  connection_->callAsync<TransactionResult>(
      [id = id_, transaction = std::move(sent), offsets = std::move(offsets)](
          IoState& io) mutable -> kj::Promise<Result<TransactionResult>> {
        auto it = io.subscriptions.find(id);
        if (it == io.subscriptions.end()) {
          return Result<TransactionResult>(
              Error{ErrorCode::kDisconnected, "the consumer was closed"});
        }
        return it->second->transact(std::move(transaction), std::move(offsets));
      },
      std::move(completion));
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
