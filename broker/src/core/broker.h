#pragma once

// The broker: one object that wires the units (topic_log, groups, delivery, expiry, views)
// over a Store and offers the calls the RPC layer makes. Each unit holds one concern and
// states its contract in its own header. Thread: kj — every method runs on the event-loop
// thread; promises resolve there.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <kj/async.h>
#include <kj/timer.h>

#include "core/auth.h"
#include "core/context.h"
#include "core/delivery.h"
#include "core/expiry.h"
#include "core/groups.h"
#include "core/model.h"
#include "core/storage.h"
#include "core/topic_log.h"
#include "core/views.h"

namespace sluice::core {

class Broker final : private kj::TaskSet::ErrorHandler {
 public:
  Broker(Store& store, kj::Timer& timer, Metrics& metrics, BrokerOptions options);
  ~Broker();

  // Loads topics and groups (not pending entries: they stay on disk) and starts the periodic
  // work. Call once, before serving.
  void start();
  // Closes every subscription with kShuttingDown and stops periodic work.
  void shutdown();

  // Publishing (topic_log.h) -----------------------------------------------------------------
  kj::Promise<Result<std::vector<PublishAckData>>> publish(std::string topic,
                                                           std::vector<MessageData> messages) {
    return log_.publish(std::move(topic), std::move(messages));
  }
  Status checkBatchCount(size_t count) const { return log_.checkBatchCount(count); }
  kj::Promise<Result<std::vector<RoutedAcks>>> publishSubject(std::string subject,
                                                              std::vector<MessageData> messages) {
    return log_.publishSubject(std::move(subject), std::move(messages));
  }
  Result<std::vector<std::string>> route(std::string_view subject) { return log_.route(subject); }

  // Consumers (delivery.h) -------------------------------------------------------------------
  Result<uint64_t> subscribe(std::string_view topic, std::string_view group, StartAt start,
                             uint32_t prefetch, uint64_t ackTimeoutMs, ConsumerSink& sink,
                             std::string peer, bool keyOrdered = false,
                             const std::vector<std::string>& filter = {}) {
    return delivery_.subscribe(topic, group, start, prefetch, ackTimeoutMs, sink, std::move(peer),
                               keyOrdered, filter);
  }
  void unsubscribe(uint64_t consumerId) { delivery_.unsubscribe(consumerId); }
  // Ends a consumer as the broker does (its sink hears `why`), e.g. for lost rights.
  void closeConsumer(uint64_t consumerId, const Status& why) {
    delivery_.closeConsumer(consumerId, why);
  }
  kj::Promise<std::vector<OffsetFailure>> ack(uint64_t consumerId, std::vector<Offset> offsets,
                                              std::vector<uint64_t> deliveryIds = {}) {
    return delivery_.ack(consumerId, std::move(offsets), std::move(deliveryIds));
  }
  kj::Promise<std::vector<OffsetFailure>> nack(uint64_t consumerId, std::vector<Offset> offsets,
                                               uint32_t delayMs,
                                               std::vector<uint64_t> deliveryIds = {}) {
    return delivery_.nack(consumerId, std::move(offsets), delayMs, std::move(deliveryIds));
  }
  std::vector<OffsetFailure> inProgress(uint64_t consumerId, std::vector<Offset> offsets,
                                        uint32_t extendMs, std::vector<uint64_t> deliveryIds = {}) {
    return delivery_.inProgress(consumerId, std::move(offsets), extendMs, std::move(deliveryIds));
  }
  kj::Promise<Result<std::vector<Delivery>>> fetch(uint64_t consumerId, uint32_t max,
                                                   uint32_t timeoutMs, uint32_t enough = 0) {
    return delivery_.fetch(consumerId, max, timeoutMs, enough);
  }
  kj::Promise<Result<TransactionOutcome>> transact(uint64_t consumerId,
                                                   TransactionRequest request) {
    return delivery_.transact(consumerId, std::move(request));
  }
  kj::Promise<std::vector<Result<TransactionOutcome>>> transactMany(
      uint64_t consumerId, std::vector<TransactionRequest> requests) {
    return delivery_.transactMany(consumerId, std::move(requests));
  }

  // Administration (topic_log.h, groups.h, views.h) ------------------------------------------
  kj::Promise<Result<TopicView>> createTopic(std::string name, RequestedSettings settings);
  Result<std::vector<TopicView>> listTopics() { return views_.listTopics(); }
  Result<TopicView> describeTopic(std::string_view name) { return views_.describeTopic(name); }
  kj::Promise<Result<uint64_t>> deleteTopic(std::string name) {
    return log_.deleteTopic(std::move(name));
  }
  kj::Promise<Result<uint64_t>> purgeTopic(std::string name) {
    return log_.purgeTopic(std::move(name));
  }
  kj::Promise<Result<GroupView>> createGroup(std::string topic, std::string group, StartAt start,
                                             bool keyOrdered = false,
                                             std::vector<std::string> filter = {});
  // Adds and removes subject patterns of a topic; answers its view after the commit.
  kj::Promise<Result<TopicView>> changeSubjects(std::string topic, std::vector<std::string> add,
                                                std::vector<std::string> remove);
  Result<std::vector<GroupView>> listGroups(std::string_view topic) {
    return views_.listGroups(topic);
  }
  Result<GroupView> describeGroup(std::string_view topic, std::string_view group) {
    return views_.describeGroup(topic, group);
  }
  kj::Promise<Result<GroupView>> resetGroup(std::string topic, std::string group, StartAt to);
  kj::Promise<Result<uint64_t>> deleteGroup(std::string topic, std::string group) {
    return groups_.remove(std::move(topic), std::move(group));
  }
  Result<std::vector<StoredMessageData>> peek(std::string_view topic, Offset from, uint32_t count) {
    return views_.peek(topic, from, count);
  }
  StatsView stats() { return views_.stats(); }
  ClusterView cluster() const { return views_.cluster(); }
  // Starts an online, consistent, compacted copy of the whole store; the caller drains it.
  // Errors: kStorageFailed.
  Result<std::unique_ptr<BackupCopy>> startBackup();

  const Limits& limits() const { return ctx_.limits(); }
  // Principals, credentials and the permission check (auth.h).
  Authority& auth() { return auth_; }
  // Calls whose answers wait on a commit; shutdown waits for this to reach zero.
  uint64_t callsAwaitingCommit() const { return ctx_.awaitingCommit; }
  // For tests: one pass of the periodic work at `nowMs`.
  void tickForTest(int64_t nowMs) { expiry_.tick(nowMs); }
  void sweepRetentionForTest(int64_t nowMs) { expiry_.sweepRetention(nowMs); }

 private:
  void taskFailed(kj::Exception&& exception) override;
  kj::Promise<void> sweepAuth();

  kj::Own<kj::TaskSet> tasks_;
  Context ctx_;
  TopicLog log_;
  Groups groups_;
  GroupDelivery delivery_;
  Expiry expiry_;
  Views views_;
  Authority auth_;
  kj::Timer& timer_;
  kj::Promise<void> authSweep_ = nullptr;
};

}  // namespace sluice::core
