#pragma once

// The broker's logic: topics, publishing, consumer groups, delivery, acks, redelivery,
// dead-lettering and retention. Persists through store::Writer and reads through
// store::ReadTxn. Thread: kj — every method runs on the event-loop thread; promises resolve there.

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <kj/async.h>
#include <kj/timer.h>

#include "core/model.h"
#include "store/backup.h"
#include "store/store.h"

namespace sluice::core {

// Broker-wide limits; every one is reported to clients with kLimitExceeded or kInvalidArgument.
struct Limits {
  uint32_t maxBatchMessages = 10000;
  uint64_t maxBatchBytes = 64ull << 20;
  uint32_t maxTopics = 10000;
  uint32_t maxGroupsPerTopic = 1000;
  uint32_t maxPrefetch = 65536;
  uint64_t maxAckTimeoutMs = 24ull * 3600 * 1000;
  uint32_t maxMessageSizeCap = 32u << 20;  // Upper bound for a topic's maxMessageSize.
  uint32_t maxPeekCount = 1000;
  uint32_t maxDeliveryBatch = 256;  // Messages per push to one consumer.
  uint64_t maxDeliveryBatchBytes = 4u << 20;
};

struct BrokerOptions {
  bool autoCreateTopics = false;
  Limits limits;
  std::string version;
};

// Counters read by other threads (admin endpoint); relaxed atomics.
struct Metrics {
  std::atomic<uint64_t> connections{0};
  std::atomic<uint64_t> consumers{0};
  std::atomic<uint64_t> publishedTotal{0};
  std::atomic<uint64_t> deliveredTotal{0};
  std::atomic<uint64_t> ackedTotal{0};
  std::atomic<uint64_t> nackedTotal{0};
  std::atomic<uint64_t> redeliveredTotal{0};
  std::atomic<uint64_t> deadLetteredTotal{0};
};

// Wire-independent forms of the start position and info structs.
struct StartAt {
  enum class Kind { kEarliest, kLatest, kOffset, kTimestamp };
  Kind kind = Kind::kEarliest;
  uint64_t offset = 0;
  int64_t timestampMs = 0;
};

struct ConsumerView {
  uint64_t id = 0;
  std::string peer;
  uint32_t prefetch = 0;
  uint32_t inFlight = 0;
  int64_t connectedMs = 0;
};

struct GroupView {
  std::string topic;
  std::string name;
  Offset position = 0;
  Offset ackFloor = 0;
  uint64_t pending = 0;
  uint64_t lagMessages = 0;
  int64_t lagMs = 0;
  uint64_t delivered = 0, acked = 0, nacked = 0, redelivered = 0, deadLettered = 0;
  std::vector<ConsumerView> consumers;
  int64_t createdMs = 0;
};

struct TopicView {
  std::string name;
  TopicSettings settings;
  uint64_t messages = 0;
  uint64_t bytes = 0;
  Offset firstOffset = 0;
  Offset lastOffset = 0;
  std::vector<GroupView> groups;
  int64_t createdMs = 0;
  uint64_t publishedTotal = 0;
  uint64_t publishedBytes = 0;
  double publishRate = 0;
};

struct StatsView {
  int64_t uptimeMs = 0;
  uint64_t topics = 0, messages = 0, bytes = 0, storageUsed = 0, storageLimit = 0;
  uint64_t connections = 0, consumers = 0, publishedTotal = 0, deliveredTotal = 0, commits = 0;
  double publishRate = 0, deliveryRate = 0;
};

struct OffsetFailure {
  Offset offset = 0;
  Status status;
};

// Settings as requested by a client: zeros mean "default" for maxMessageSize and dedupWindowMs.
struct RequestedSettings {
  uint64_t maxAgeMs = 0, maxBytes = 0, maxMessages = 0;
  uint32_t maxMessageSize = 0;
  bool workQueue = false;
  uint32_t maxDeliveries = 0;
  std::string deadLetterTopic;
  uint64_t dedupWindowMs = 0;
};

class Broker final : private kj::TaskSet::ErrorHandler {
 public:
  Broker(store::Env& env, store::Writer& writer, kj::Timer& timer, Metrics& metrics,
         BrokerOptions options);
  ~Broker();

  // Loads topics, groups and pending deliveries, and starts the periodic work (ack timeouts,
  // delayed redelivery, retention, dedup expiry). Call once, before serving.
  void start();
  // Closes every subscription with kShuttingDown and stops periodic work.
  void shutdown();

  // Publishing ------------------------------------------------------------------------------
  kj::Promise<Result<std::vector<PublishAckData>>> publish(std::string topic,
                                                           std::vector<MessageData> messages);
  // The message-count rule of publish(), for checking a request before copying it.
  Status checkBatchCount(size_t count) const;

  // Consumers -------------------------------------------------------------------------------
  // Joins `group` on `topic` (creating the group at `start` if needed). Returns the consumer id.
  // `sink` must outlive the consumer (until unsubscribe()).
  Result<uint64_t> subscribe(std::string_view topic, std::string_view group, StartAt start,
                             uint32_t prefetch, uint64_t ackTimeoutMs, ConsumerSink& sink,
                             std::string peer);
  // Leaves the group; the consumer's unacknowledged messages become due for redelivery.
  void unsubscribe(uint64_t consumerId);
  kj::Promise<std::vector<OffsetFailure>> ack(uint64_t consumerId, std::vector<Offset> offsets);
  kj::Promise<std::vector<OffsetFailure>> nack(uint64_t consumerId, std::vector<Offset> offsets,
                                               uint32_t delayMs);

  // Administration --------------------------------------------------------------------------
  kj::Promise<Result<TopicView>> createTopic(std::string name, RequestedSettings settings);
  Result<std::vector<TopicView>> listTopics();
  Result<TopicView> describeTopic(std::string_view name);
  kj::Promise<Result<uint64_t>> deleteTopic(std::string name);
  kj::Promise<Result<uint64_t>> purgeTopic(std::string name);
  kj::Promise<Result<GroupView>> createGroup(std::string topic, std::string group, StartAt start);
  Result<std::vector<GroupView>> listGroups(std::string_view topic);
  Result<GroupView> describeGroup(std::string_view topic, std::string_view group);
  kj::Promise<Result<GroupView>> resetGroup(std::string topic, std::string group, StartAt to);
  kj::Promise<Result<uint64_t>> deleteGroup(std::string topic, std::string group);
  Result<std::vector<StoredMessageData>> peek(std::string_view topic, Offset from, uint32_t count);
  StatsView stats();
  // Starts an online, consistent, compacted copy of the whole store (store::CompactCopy); the
  // caller drains it. Errors: kStorageFailed.
  Result<std::unique_ptr<store::CompactCopy>> startBackup();

  const Limits& limits() const { return options_.limits; }
  // Calls whose answers wait on a commit; shutdown waits for this to reach zero.
  uint64_t callsAwaitingCommit() const { return awaitingCommit_; }

 private:
  Topic* findTopic(std::string_view name);
  // kLimitExceeded when `adding` more topics would pass maxTopics, counting the topics whose
  // creation is still committing (so that concurrent creations cannot pass the limit).
  Status topicRoom(uint32_t adding) const;
  Result<Topic*> requireTopic(std::string_view name);
  Topic& adoptTopic(const TopicRecord& record);
  void updateTopicStats(Topic& topic, const TopicRecord& record);
  Result<Offset> resolveStart(const Topic& topic, const StartAt& start);
  // Finds or creates (persisting it in the background) the group. `created` tells which.
  Result<Group*> ensureGroup(Topic& topic, std::string_view group, const StartAt& start,
                             bool* created);
  Group* findGroup(std::string_view topic, std::string_view group);
  GroupRecord recordOf(const Group& group) const;
  void taskFailed(kj::Exception&& exception) override;
  void closeConsumers(Group& group, const Status& why);
  void removeTopicFromMemory(Topic& topic, const Status& why);

  // Delivery (delivery.cpp).
  void schedulePump(Group& group);
  void pump(Group& group);
  // Takes `pending` from its consumer and makes it due at `visibleAtMs`. Returns true when the
  // message was dead-lettered instead (the caller erases the entry).
  bool makeDue(Group& group, Offset offset, Pending& pending, RedeliveryCause cause,
               int64_t visibleAtMs);
  void deadLetter(Group& group, Offset offset, uint32_t deliveries, RedeliveryCause cause);
  void releaseConsumer(Consumer& consumer, RedeliveryCause cause);
  void tick();
  void sweepRetention();
  kj::Promise<void> tickLoop();

  GroupView viewOf(const Group& group, const store::ReadTxn* read, int64_t nowMs) const;
  TopicView viewOf(const Topic& topic, const store::ReadTxn& read, int64_t nowMs) const;

  template <typename T>
  kj::Promise<Result<T>> commit(std::function<Result<T>(store::WriteTxn&)> body) {
    ++awaitingCommit_;
    return writer_.submit<T>(std::move(body)).attach(kj::defer([this]() { --awaitingCommit_; }));
  }

  store::Env& env_;
  store::Writer& writer_;
  kj::Timer& timer_;
  Metrics& metrics_;
  BrokerOptions options_;
  int64_t startedMs_ = 0;
  std::map<std::string, std::unique_ptr<Topic>, std::less<>> topics_;
  std::map<uint64_t, std::unique_ptr<Consumer>> consumers_;
  uint64_t nextConsumerId_ = 1;
  uint64_t awaitingCommit_ = 0;
  uint32_t topicsBeingCreated_ = 0;  // Counted by topicRoom() until their commit answers.
  RateMeter deliveryRate_;
  int64_t lastRetentionMs_ = 0;
  int64_t lastDedupExpiryMs_ = 0;
  bool stopped_ = false;
  kj::Own<kj::TaskSet> tasks_;
  kj::Promise<void> ticker_ = nullptr;
};

int64_t wallClockMs();
// The earliest wallClockMs() at which `delayMs` from now has certainly elapsed.
int64_t notBeforeMs(uint64_t delayMs);

}  // namespace sluice::core
