#pragma once

// Delivery to a group's consumers: subscribing, pushing batches within prefetch windows, acks
// and nacks, releasing held messages (nack, ack timeout, disconnect) onto the on-disk due
// index, and dead-lettering past max deliveries. Memory holds only leases (messages held by
// consumers); what waits for redelivery is read back from the store when it is due.
// Thread: kj.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <kj/async.h>
#include <kj/timer.h>

#include "core/context.h"
#include "core/groups.h"
#include "core/topic_log.h"
#include "core/transaction.h"

namespace sluice::core {

class GroupDelivery {
 public:
  GroupDelivery(Context& ctx, Groups& groups, TopicLog& log, kj::Timer& timer)
      : ctx_(ctx), groups_(groups), log_(log), timer_(timer) {}

  // Joins `group` on `topic` (creating the group at `start`, key-ordered if asked, if needed).
  // Returns the consumer id. `sink` must outlive the consumer (until unsubscribe()).
  // `prefetch` 0 makes a fetch consumer: nothing is pushed to it, it takes messages with
  // fetch(). Errors: kInvalidArgument, kTopicNotFound, kLimitExceeded, kShuttingDown.
  Result<uint64_t> subscribe(std::string_view topic, std::string_view group, StartAt start,
                             uint32_t prefetch, uint64_t ackTimeoutMs, ConsumerSink& sink,
                             std::string peer, bool keyOrdered = false,
                             const std::vector<std::string>& filter = {});
  // A key-ordered group at start-up: its keys from the store's pending entries. A key whose
  // first entry is parked (its predecessor settled by a commit that did not unpark it) becomes
  // due; a later entry of a key that is not parked is parked again.
  void restoreKeys(Group& group, const std::vector<KeyedEntry>& keyed);
  // After a trim or purge of `group`'s topic: forgets the tracked messages it removed (but
  // those a consumer holds), letting their keys' next messages go.
  void forgetTrimmed(Group& group, WriteBatch& batch);
  // Leaves the group; the consumer's unacknowledged messages become due for redelivery.
  void unsubscribe(uint64_t consumerId);
  // Tells the consumer's sink `why`, ends its fetch, then unsubscribes it.
  void closeConsumer(uint64_t consumerId, const Status& why);
  // Acknowledges held messages; answers per-offset failures after the commit. `deliveryIds`
  // is empty (not checked) or names, per offset, the delivery being settled: an earlier one
  // fails with kStaleDelivery and changes nothing. Errors per offset: kNotPending,
  // kStaleDelivery, kInvalidArgument (deliveryIds of another length), kStorageFailed.
  kj::Promise<std::vector<OffsetFailure>> ack(uint64_t consumerId, std::vector<Offset> offsets,
                                              std::vector<uint64_t> deliveryIds = {});
  // Makes held messages due again after `delayMs` (or dead-letters them). As ack().
  kj::Promise<std::vector<OffsetFailure>> nack(uint64_t consumerId, std::vector<Offset> offsets,
                                               uint32_t delayMs,
                                               std::vector<uint64_t> deliveryIds = {});

  // Lease renewal: the held messages' ack deadlines move to `extendMs` from now (0: the
  // consumer's ack timeout). Changes nothing durable (a restart redelivers held messages
  // anyway). Errors per offset: as ack(); for all: kInvalidArgument (extendMs too long).
  std::vector<OffsetFailure> inProgress(uint64_t consumerId, std::vector<Offset> offsets,
                                        uint32_t extendMs, std::vector<uint64_t> deliveryIds = {});
  // A fetch consumer's pull: answers with `max` messages as soon as that many are delivered to
  // it, or with fewer (perhaps none) after `timeoutMs`, or once the answer holds
  // maxDeliveryBatchBytes. The answered messages are held by the consumer, their ack timeout
  // counting from the answer. Errors: kInvalidArgument (max 0 or above maxPrefetch, timeout
  // above maxFetchTimeoutMs, a consumer with prefetch, a fetch already waiting),
  // kLimitExceeded (held + max above maxPrefetch), kTopicNotFound (subscription ended),
  // kShuttingDown.
  // `enough` (1..max; 0 means max) answers as soon as that many are gathered: 1 for a long
  // poll that wants whatever is ready, up to max.
  kj::Promise<Result<std::vector<Delivery>>> fetch(uint64_t consumerId, uint32_t max,
                                                   uint32_t timeoutMs, uint32_t enough = 0);

  // Atomic ack-and-publish (transaction.h): acknowledges held messages of the consumer and
  // publishes to one or more topics in one commit, all or nothing. With an id, a retry (same
  // content) while it commits or within kTransactionWindowMs after answers the same outputs,
  // `replayed`, and changes nothing. Errors, for the whole call (nothing changed): as
  // checkTransaction(); kNotPending / kStaleDelivery (an ack, named by offset: the rules of
  // ack()); as publish() for any topic; kTransactionConflict (the id was applied with other
  // content); kTopicNotFound (subscription ended); kShuttingDown; kStorageFailed.
  kj::Promise<Result<TransactionOutcome>> transact(uint64_t consumerId, TransactionRequest request);
  // Several transactions of the consumer: each applied as by transact(), in order (a refused
  // one changes nothing and the others go on), those that apply in one commit. The answers are
  // in request order.
  kj::Promise<std::vector<Result<TransactionOutcome>>> transactMany(
      uint64_t consumerId, std::vector<TransactionRequest> requests);

  // Asks for a delivery pass over the group in a later turn of the event loop.
  void schedulePump(Group& group);
  // Releases leases whose ack deadline has passed.
  void expireLeases(Group& group, int64_t nowMs);
  // Ends every subscription of the group with `why` (topic or group deleted, shutdown).
  void close(Group& group, const Status& why);

 private:
  // The leases a batch releases: settled (erased) once the batch commits.
  struct Settle {
    std::string topic;
    TopicId topicId = 0;
    std::string group;
    std::vector<std::pair<Offset, uint64_t>> leases;  // Offset and lease generation.
    std::optional<int64_t> dueAtMs;                   // The earliest due time the batch writes.
    std::vector<AppendTicket> appends;                // Dead letters.
    // Keys' next messages, due once the batch commits (unparkNext()), with their due times.
    std::vector<std::pair<Offset, int64_t>> wakes;

    static Settle of(const Group& group) {
      Settle settle;
      settle.topic = group.topic->name;
      settle.topicId = group.topic->id;
      settle.group = group.name;
      return settle;
    }
  };

  void pump(Group& group);
  // How many more messages `consumer` may be given now.
  size_t room(Consumer& consumer) const;
  // Ends a waiting fetch: its answer is what it gathered, or `why` if given.
  void endFetch(Consumer& consumer, std::optional<Status> why);
  // The lease of `offset` that `consumer` may settle, naming delivery `deliveryId` (0: any).
  Result<Lease*> settleable(Group& group, const Consumer& consumer, Offset offset,
                            uint64_t deliveryId);
  // Delivers what fits into `consumer`'s window; adds the delivery state to `batch`. Delayed
  // messages it passes go to the due index; `scheduledDueMs` is the earliest of their times.
  void fill(Group& group, Consumer& consumer, std::vector<DueEntry>& due, size_t& nextDue,
            const StoreSnapshot& snapshot, WriteBatch& batch, int64_t nowMs,
            std::optional<int64_t>& scheduledDueMs);
  // Removes the pending entry of `offset` in `batch`; in a key-ordered group, its key's next
  // message becomes due, after `settle`'s commit if given, else at once.
  void removePending(WriteBatch& batch, Group& group, Offset offset, Settle* settle);
  // Key order: whether `message`, next at the group's position, may be taken now.
  enum class Take { kDeliver, kParked, kFull };
  Take takeKeyed(Group& group, const MessageHead& message, WriteBatch& batch);
  void keySettled(Group& group, Offset offset, WriteBatch& batch, Settle* settle);
  void unparkNext(Group& group, KeyLines::value_type& line, WriteBatch& batch, Settle* settle);
  // A message due from memory before its entry is committed: a lease without an owner.
  void wake(Group& group, Offset offset, int64_t dueAtMs);
  // Passes over the expired message at `offset` (delivered `deliveries` times so far):
  // dead-lettered when its topic says so, else its pending entry, if it has one (`pending`), is
  // removed in `batch`.
  void expire(Group& group, Offset offset, uint32_t deliveries, bool pending,
              const StoreSnapshot& snapshot, WriteBatch& batch);
  std::vector<DueEntry> dueEntries(Group& group, const StoreSnapshot& snapshot, int64_t nowMs,
                                   size_t max) const;
  // Releases the held message at `offset` into `batch`: due at `visibleAtMs`, or moved to the
  // dead-letter topic past maxDeliveries.
  void release(WriteBatch& batch, Settle& settle, Group& group, Offset offset,
               RedeliveryCause cause, int64_t visibleAtMs, const StoreSnapshot& snapshot);
  // Moves the message at `offset` to the dead-letter topic (or drops it from the group), with
  // `reason` in its sluice-reason header.
  void deadLetter(WriteBatch& batch, Settle& settle, Group& group, Offset offset,
                  uint32_t deliveries, const std::string& reason, const StoreSnapshot& snapshot);
  // As deadLetter, in its own commit, for a message that no consumer holds.
  void deadLetterNow(Group& group, Offset offset, uint32_t deliveries, const std::string& reason,
                     const StoreSnapshot& snapshot);
  // Commits `batch` and then erases the settled leases.
  kj::Promise<Result<uint64_t>> commitSettling(WriteBatch batch, Settle settle);
  void settled(const Settle& settle, bool committed);
  void releaseConsumer(Consumer& consumer, RedeliveryCause cause);
  Consumer* consumerOf(uint64_t id);

  Context& ctx_;
  Groups& groups_;
  TopicLog& log_;
  kj::Timer& timer_;
  uint64_t nextConsumerId_ = 1;
  // Waiting fetches: destroyed with this object, while the state they read is still there.
  kj::Canceler fetches_;
  // Transactions with an id whose commit has not answered yet: a retry joins the answer, the
  // `index`th of the answers of the call that staged it.
  struct InFlightTxn {
    std::string fingerprint;
    std::shared_ptr<kj::ForkedPromise<std::vector<Result<TransactionOutcome>>>> answers;
    size_t index = 0;
  };
  std::map<std::string, InFlightTxn> txns_;
};

}  // namespace sluice::core
