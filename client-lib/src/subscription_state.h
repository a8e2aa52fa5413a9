#pragma once

// detail::SubscriptionState: the consumer side of one subscription — the inbox that the I/O
// thread fills with delivered messages, receive(), the callback thread, and acks.
//
// Ownership: a Consumer's state_ is an aliasing pointer into a ConsumerHandle (consumer.cpp)
// whose destructor closes the subscription; delivered Messages hold plain owning pointers, so
// a Message can be acknowledged after its Consumer handle is gone only until close(). The I/O
// thread holds a weak pointer (through the DeliveryHandler) and never keeps this alive.
// close() empties the inbox, which breaks the Message -> state cycle.
//
// Thread: any; the mutable fields are guarded by mu_.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "convert.h"
#include "sluice/client.h"
#include "subscription_io.h"

namespace sluice::detail {

class Connection;

class SubscriptionState {
 public:
  // `callbackMode`: messages go to a handler thread (startWorker) instead of receive().
  // `fetchMode`: subscribed with prefetch 0, so messages come only from fetch().
  SubscriptionState(std::shared_ptr<Connection> connection, uint64_t id, std::string topic,
                    bool callbackMode, bool fetchMode);
  ~SubscriptionState();
  SubscriptionState(const SubscriptionState&) = delete;
  SubscriptionState& operator=(const SubscriptionState&) = delete;

  // The only code that writes Message's private fields. `owner` is null for a peeked message.
  static Message makeMessage(DeliveryFields fields, const std::string& topic,
                             std::shared_ptr<SubscriptionState> owner);

  // --- The consumer's side ---

  // See Consumer::receive.
  Result<Message> receive(std::chrono::milliseconds timeout);
  // See Consumer::fetch.
  Result<std::vector<Message>> fetch(uint32_t max, std::chrono::milliseconds timeout);
  // See Consumer::transact and transactAsync.
  Result<TransactionResult> transact(const Transaction& transaction);
  void transactAsync(const Transaction& transaction, Completion<TransactionResult> completion);
  // Ends the subscription: drops the inbox, stops the handler thread, tells the I/O thread to
  // release the broker's Subscription. Idempotent; callable from the handler itself.
  void close();
  bool closed() const;
  // Drops the messages delivered and not yet received: their connection was lost, and their
  // acks could no longer reach the broker, which delivers them again. A fetch waiting for an
  // answer on that connection returns with nothing more.
  void dropInbox();
  // Callback mode: starts the thread that feeds `handler`. `self` is this object.
  void startWorker(std::shared_ptr<SubscriptionState> self, std::function<void(Message)> handler);
  // The subscribe call gave up (timeout) before the broker answered: whatever the answer, the
  // I/O thread releases the subscription instead of keeping it.
  void abandon();
  bool abandoned() const { return abandoned_.load(std::memory_order_acquire); }

  uint64_t consumerId() const { return consumerId_.load(std::memory_order_acquire); }
  void setConsumerId(uint64_t id) { consumerId_.store(id, std::memory_order_release); }
  uint64_t id() const { return id_; }
  const std::string& topic() const { return topic_; }

  // Queues an ack, nack or lease renewal of delivery `deliveryId` of `offset` for the I/O
  // thread, which sends every settlement queued in one wakeup together. See Message::ack,
  // nack and inProgress.
  std::future<Result<void>> settle(uint64_t offset, uint64_t deliveryId, Settlement settlement);
  // Waits for a settle() future within Options::callTimeout.
  Result<void> await(std::future<Result<void>>& future, const char* what) const;
  // See Connection::checkMayBlock.
  std::optional<Error> checkMayBlock(const char* what) const;

  // --- The I/O thread's side ---

  // Appends delivered messages to the inbox (dropped after close()).
  void push(std::vector<Message> messages);
  // The subscription ended with `error`: receive() returns it once the inbox is empty, or at
  // once if `dropQueued` (the connection is gone, so queued messages could not be acked).
  void end(Error error, bool dropQueued);
  // The answer to fetch number `seq`: how many messages it pushed, or why it failed.
  void fetchAnswered(uint64_t seq, Result<size_t> answer);

 private:
  void runWorker(std::function<void(Message)> handler);

  const std::shared_ptr<Connection> connection_;
  const uint64_t id_;
  const std::string topic_;
  const bool callbackMode_;
  const bool fetchMode_;
  std::mutex fetchMu_;  // One fetch at a time (the broker takes one per subscription).
  std::atomic<uint64_t> consumerId_{0};
  std::atomic<bool> abandoned_{false};

  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::deque<Message> inbox_;
  std::optional<Error> ended_;                 // Set by end().
  bool closed_ = false;                        // Set by close().
  uint64_t fetchSeq_ = 0;                      // The latest fetch sent.
  std::optional<Result<size_t>> fetchAnswer_;  // Its answer, once in.
  bool fetchCutShort_ = false;                 // Its connection was lost before the answer.
  std::thread worker_;
  std::thread::id workerId_;
};

}  // namespace sluice::detail
