#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sluice {

// Message headers: text keys to text values.
using Headers = std::map<std::string, std::string>;

// A message to publish.
struct OutgoingMessage {
  std::string payload;
  std::optional<std::string> key;  // Absent and empty are different.
  Headers headers;
  // Producer message id. When set, a repeat within the topic's dedup window is not stored
  // again; the broker answers the original offset with duplicate = true.
  std::string id;
  // Delayed delivery: no group receives the message before this Unix time in milliseconds (0,
  // or a time in the past: at once; at most 30 days ahead). The publish is acknowledged, and
  // the message durable, at once.
  int64_t deliverAtMs = 0;
  // Or: no group receives it before `delay` has passed since the publish (at most 30 days).
  // Not both.
  std::chrono::milliseconds delay{0};
  // Time to live, from when the message becomes deliverable (1 ms to 30 days): once it ends,
  // no group receives the message, and it leaves the topic. Unset: the topic's default.
  std::optional<std::chrono::milliseconds> ttl{};
};

// The broker's answer to one published message, sent after its commit was fsync'd.
struct PublishAck {
  uint64_t offset = 0;
  bool duplicate = false;
};

// Per-topic settings. A zero limit means "unlimited"; a zero maxMessageSize or dedupWindow
// means the broker default (1 MiB, 2 minutes). Describe returns the effective values.
struct TopicSettings {
  std::chrono::milliseconds maxAge{0};
  uint64_t maxBytes = 0;
  uint64_t maxMessages = 0;
  uint32_t maxMessageSize = 0;
  bool workQueue = false;  // Also drop messages once every group has acknowledged them.
  uint32_t maxDeliveries = 0;
  std::string deadLetterTopic;  // Where messages go past maxDeliveries; empty: dropped.
  std::chrono::milliseconds dedupWindow{0};
  // Time to live of messages published without one (at most 30 days); 0: they never expire.
  std::chrono::milliseconds defaultTtl{0};
  // Send expired messages to deadLetterTopic (header sluice-reason: expired); needs one.
  bool deadLetterExpired = false;
  // Subject patterns the topic captures (Producer::publishSubject), at most 32: dot-separated
  // tokens, `*` for exactly one token, `>` for one or more trailing ones (`orders.*.created`,
  // `orders.>`). Empty: the topic captures exactly its own name.
  std::vector<std::string> subjects;
};

// Where a consumer group starts when a call creates it. Default: the earliest retained message.
struct StartPosition {
  enum class Kind { kEarliest, kLatest, kOffset, kTimestamp };
  Kind kind = Kind::kEarliest;
  uint64_t offset = 0;      // For kOffset.
  int64_t timestampMs = 0;  // For kTimestamp: Unix milliseconds.

  static StartPosition earliest() { return {}; }
  static StartPosition latest() { return {Kind::kLatest, 0, 0}; }
  static StartPosition atOffset(uint64_t offset) { return {Kind::kOffset, offset, 0}; }
  static StartPosition atTime(int64_t unixMs) { return {Kind::kTimestamp, 0, unixMs}; }
};

struct ConsumerInfo {
  uint64_t id = 0;
  std::string peer;  // The consumer's address as the broker sees it.
  uint32_t prefetch = 0;
  uint32_t inFlight = 0;    // Delivered to this consumer, not yet acknowledged.
  int64_t connectedMs = 0;  // Unix milliseconds.
};

struct GroupInfo {
  std::string topic;
  std::string name;
  uint64_t position = 0;      // Next offset never yet delivered to this group.
  uint64_t ackFloor = 0;      // Every offset below this is acknowledged or no longer retained.
  uint64_t pending = 0;       // Delivered (or due for redelivery), not yet acknowledged.
  uint64_t lagMessages = 0;   // Retained messages not yet delivered.
  int64_t lagMs = 0;          // Age of the oldest undelivered message; 0 when caught up.
  uint64_t delivered = 0;     // Since the broker started, including redeliveries.
  uint64_t acked = 0;         // Since the broker started.
  uint64_t nacked = 0;        // Since the broker started.
  uint64_t redelivered = 0;   // Durable total.
  uint64_t deadLettered = 0;  // Durable total.
  uint64_t expired = 0;       // Since the broker started: passed over for their time to live.
  bool keyOrdered = false;
  uint64_t keyBlocked = 0;  // Key-ordered: messages waiting behind an earlier one of their key.
  uint64_t scheduled = 0;   // Delayed messages held for their time, not yet delivered.
  // Subject patterns: the group receives only matching messages; lagMessages counts only them.
  std::vector<std::string> filter;
  std::vector<ConsumerInfo> consumers;
  int64_t createdMs = 0;
};

struct TopicInfo {
  std::string name;
  TopicSettings settings;    // Effective values.
  uint64_t messages = 0;     // Retained messages.
  uint64_t bytes = 0;        // Retained payload, key and header bytes.
  uint64_t firstOffset = 0;  // Oldest retained offset; 0 when empty.
  uint64_t lastOffset = 0;   // Newest offset ever assigned; 0 when nothing was published.
  std::vector<GroupInfo> groups;
  int64_t createdMs = 0;
  uint64_t publishedTotal = 0;  // Since the broker started.
  double publishRate = 0;       // Messages per second over the last few seconds.
  uint64_t expired = 0;         // Since the broker started: removed for their time to live.
  uint64_t scheduled = 0;       // Over its groups: delayed messages not yet delivered.
  uint64_t keyBlocked = 0;      // Over its groups: messages held back behind their key.
};

// The answer to a routed publish: per capturing topic (by name), one ack per message.
using RoutedAcks = std::vector<std::pair<std::string, std::vector<PublishAck>>>;
// One message's answer to a routed publish: per capturing topic (by name), its ack.
using RoutedAck = std::vector<std::pair<std::string, PublishAck>>;

struct BrokerStats {
  std::string version;
  int64_t uptimeMs = 0;
  uint64_t topics = 0;
  uint64_t messages = 0;
  uint64_t bytes = 0;
  uint64_t storageUsed = 0;
  uint64_t storageLimit = 0;
  uint64_t connections = 0;
  uint64_t consumers = 0;
  uint64_t publishedTotal = 0;
  uint64_t deliveredTotal = 0;
  double publishRate = 0;  // Messages per second over the last few seconds.
  double deliveryRate = 0;
  uint64_t commits = 0;
};

}  // namespace sluice
