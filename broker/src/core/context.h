#pragma once

// What the broker's units share: options and limits, counters for other threads, the store,
// and the live state (topics and consumers), with the lookups every unit needs.
// Thread: kj.

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <kj/async.h>

#include "common/clock.h"
#include "common/records.h"
#include "common/status.h"
#include "core/cluster_view.h"
#include "core/model.h"
#include "core/storage.h"
#include "core/subjects.h"

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
  uint32_t maxNackDelayMs = 24u * 3600 * 1000;
  uint32_t maxFetchTimeoutMs = 5u * 60 * 1000;
  // Messages a key-ordered group tracks (in flight or parked behind their key), at most.
  uint32_t maxKeyedMessages = 100000;
  // Subject patterns of all topics together (each topic has at most kMaxPatternsPerTopic).
  uint32_t maxSubjectPatterns = 100000;
};

struct BrokerOptions {
  bool autoCreateTopics = false;
  bool authentication = false;  // Connections authenticate and are checked (core/auth.h).
  Limits limits;
  std::string version;
  // A cluster's leader: its replication state (core/views.h). Null: a standalone broker.
  std::function<ClusterView()> cluster;
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
  std::atomic<uint64_t> expiredTotal{0};  // Passed over by groups for their time to live.
  // The TLS listener's certificate: when it expires (Unix seconds); 0 without TLS.
  std::atomic<int64_t> tlsCertificateExpiry{0};
  std::atomic<uint64_t> tlsHandshakeFailures{0};  // Failed, timed out or refused handshakes.
  std::atomic<uint64_t> authFailures{0};          // Failed authentications (any peer).
};

// Where a group created by a call starts.
struct StartAt {
  enum class Kind { kEarliest, kLatest, kOffset, kTimestamp };
  Kind kind = Kind::kEarliest;
  uint64_t offset = 0;
  int64_t timestampMs = 0;
};

// Settings as requested by a client: zeros mean "default" for maxMessageSize and dedupWindowMs.
struct RequestedSettings {
  uint64_t maxAgeMs = 0, maxBytes = 0, maxMessages = 0;
  uint32_t maxMessageSize = 0;
  bool workQueue = false;
  uint32_t maxDeliveries = 0;
  std::string deadLetterTopic;
  uint64_t dedupWindowMs = 0;
  uint64_t defaultTtlMs = 0;
  bool deadLetterExpired = false;
  std::vector<std::string> subjects;  // Subject patterns (core/subjects.h).
};

struct OffsetFailure {
  Offset offset = 0;
  Status status;
  uint64_t deliveryId = 0;  // As the ack or nack named it (0: none).
};

class Context {
 public:
  Context(Store& store, Metrics& metrics, BrokerOptions options, kj::TaskSet& tasks)
      : store(store), metrics(metrics), options(std::move(options)), tasks(tasks) {}

  Store& store;
  Metrics& metrics;
  const BrokerOptions options;
  kj::TaskSet& tasks;  // Background work; its failures are logged.

  std::map<std::string, std::unique_ptr<Topic>, std::less<>> topics;
  std::unordered_map<TopicId, Topic*> topicsById;
  SubjectRouter router;  // Which topics capture a subject: kept with `topics`.
  std::map<uint64_t, std::unique_ptr<Consumer>> consumers;
  TopicId nextTopicId = 1;
  uint64_t uncommittedAppendBytes = 0;  // Estimated; counted against the publish limit.
  uint64_t awaitingCommit = 0;          // Calls whose answers wait on a commit.
  int64_t startedMs = 0;
  bool stopped = false;
  RateMeter deliveryRate;
  uint64_t nextLeaseGeneration = 1;

  const Limits& limits() const { return options.limits; }
  Topic* findTopic(std::string_view name);
  Group* findGroup(std::string_view topic, std::string_view group);
  // The topic `name` if it still is the topic with `id` (continuations outlive deletions).
  Topic* findTopic(std::string_view name, TopicId id);
  Group* findGroup(std::string_view topic, TopicId id, std::string_view group);
  // kInvalidArgument for a bad name, kTopicNotFound for an unknown one.
  Result<Topic*> requireTopic(std::string_view name);
  // Result<Group*> for a topic and group named by a client.
  Result<Group*> requireGroup(std::string_view topic, std::string_view group);

  // Why a client's write must not start now (stopping, or the store's admission); ok if it may.
  Status writeRefusal() const;
  // Commits `batch`, counting the call in awaitingCommit until it is answered.
  kj::Promise<Result<uint64_t>> commit(WriteBatch batch);
  // Adds the topic to the live state (as created by `op`, or loaded).
  Topic& adoptTopic(const TopicRecord& record);
  // Removes a topic from the live state (and from routing).
  void forgetTopic(std::string_view name);
  // Builds the ops creating a topic with the next id; the topic is live at once.
  Topic& createTopicIn(WriteBatch& batch, std::string_view name, const TopicConfig& settings,
                       int64_t nowMs);
};

Status shuttingDown();
Status noTopic(std::string_view name);
Status noGroup(std::string_view topic, std::string_view group);

using sluice::wallClockMs;  // common/clock.h
// The earliest wallClockMs() at which `delayMs` from now has certainly elapsed.
int64_t notBeforeMs(uint64_t delayMs);

}  // namespace sluice::core
