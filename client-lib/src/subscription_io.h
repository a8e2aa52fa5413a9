#pragma once

// The I/O thread's side of a subscription: the handler capability the broker pushes
// deliveries to, and the broker's Subscription capability that acks and nacks go through.
//
// Acks (and nacks and lease renewals): each settle() queues; the first one queued in a wakeup
// schedules a flush with kj::evalLater, which runs after every command of that wakeup. The flush
// sends one Subscription.ack with every queued offset and its delivery id, and one
// Subscription.nack per distinct delay (Subscription.inProgress likewise per extension), then
// completes each waiter from the reply's `failures` (a delivery not listed succeeded).
//
// Thread: kj.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <kj/async.h>

#include "completion.h"
#include "sluice/client.h"
#include "sluice/schemas/rpc.capnp.h"

namespace sluice::detail {

struct IoState;
class SubscriptionState;

// What settling a delivery does: ack, nack (redeliver after `ms`), or renew its lease (ack
// deadline `ms` from now; 0: the subscription's ack timeout).
struct Settlement {
  enum class Kind { kAck, kNack, kInProgress };
  Kind kind = Kind::kAck;
  uint32_t ms = 0;
};

// kNotPending for settling `offset` after its consumer was closed.
Error closedConsumerError(uint64_t offset);

// Receives the broker's deliveries for one subscription and hands them to its
// SubscriptionState. Holds it weakly: once the consumer is gone, deliveries are dropped (the
// broker redelivers them when the subscription ends).
class DeliveryHandlerService final : public wire::DeliveryHandler::Server {
 public:
  DeliveryHandlerService(std::weak_ptr<SubscriptionState> state, std::string topic);

 protected:
  kj::Promise<void> deliver(DeliverContext context) override;
  kj::Promise<void> closed(ClosedContext context) override;

 private:
  std::weak_ptr<SubscriptionState> state_;
  std::string topic_;
};

class SubscriptionIo {
 public:
  SubscriptionIo(IoState& io, uint64_t id, wire::Subscription::Client subscription,
                 std::weak_ptr<SubscriptionState> state);
  // Sends what is queued (unless the connection is shutting down), then releases the
  // capability, which ends the subscription on the broker.
  ~SubscriptionIo();
  SubscriptionIo(const SubscriptionIo&) = delete;
  SubscriptionIo& operator=(const SubscriptionIo&) = delete;

  // An offset and the delivery of it being settled.
  using Named = std::pair<uint64_t, uint64_t>;
  // Queues an ack, a nack or a lease renewal of a delivery.
  void settle(Named delivery, Settlement settlement, Completion<void> done);
  // Sends what is queued, then Subscription.fetch; the answered messages go to the consumer's
  // inbox, then SubscriptionState::fetchAnswered(seq, ...) reports the outcome.
  void fetch(uint64_t seq, uint32_t max, uint32_t timeoutMs);
  // Queues a transaction acknowledging `offsets` (offset and delivery id; the transaction's
  // own `acks` are not read). The flush sends the transactions queued in a wakeup after the
  // acks, in Subscription.transactMany calls of at most 1024 transactions and about 8 MiB.
  kj::Promise<Result<TransactionResult>> transact(Transaction transaction,
                                                  std::vector<Named> offsets);
  // Ends the consumer's inbox with `error`; see SubscriptionState::end.
  void end(const Error& error, bool dropQueued);
  // The connection is lost and will be made again: drops what was delivered, stays open.
  void lostConnection();

 private:
  // A delivery and whoever waits for its settlement.
  using Waiter = std::pair<Named, Completion<void>>;
  struct QueuedTransaction {
    Transaction transaction;
    std::vector<Named> offsets;
    kj::Own<kj::PromiseFulfiller<Result<TransactionResult>>> answer;
  };
  void scheduleFlush();
  void flush();
  void sendTransactions(std::vector<QueuedTransaction> queued);

  IoState& io_;
  const uint64_t id_;
  wire::Subscription::Client subscription_;
  std::weak_ptr<SubscriptionState> state_;
  std::vector<Waiter> acks_;
  std::map<uint32_t, std::vector<Waiter>> nacks_;     // By delay in ms.
  std::map<uint32_t, std::vector<Waiter>> renewals_;  // By extension in ms.
  std::vector<QueuedTransaction> transactions_;
  bool flushScheduled_ = false;
};

}  // namespace sluice::detail
