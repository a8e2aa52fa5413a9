#pragma once

// Plain-C++ forms of what the broker stores, shared by store/ (which persists them) and core/
// (which keeps the live state). The on-disk encodings are in schemas/records.capnp.

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sluice {

using TopicId = uint32_t;
using Offset = uint64_t;  // Offsets start at 1; 0 means "none".

constexpr uint32_t kDefaultMaxMessageSize = 1u << 20;             // 1 MiB
constexpr uint32_t kMaxDeliveryDelayMs = 30u * 24 * 3600 * 1000;  // 30 days
constexpr uint64_t kDefaultDedupWindowMs = 2 * 60 * 1000;         // 2 minutes
constexpr uint32_t kMaxTtlMs = 30u * 24 * 3600 * 1000;            // 30 days

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// Effective topic settings (defaults already applied; 0 limits mean unlimited). Not named
// TopicSettings: that is the client library's type, and a program linking both (a test) would
// get one inline constructor for two different structs.
struct TopicConfig {
  uint64_t maxAgeMs = 0;
  uint64_t maxBytes = 0;
  uint64_t maxMessages = 0;
  uint32_t maxMessageSize = kDefaultMaxMessageSize;
  bool workQueue = false;
  uint32_t maxDeliveries = 0;
  std::string deadLetterTopic;
  uint64_t dedupWindowMs = kDefaultDedupWindowMs;
  uint32_t defaultTtlMs = 0;       // Time to live of messages published without one; 0: none.
  bool deadLetterExpired = false;  // Expired messages go to deadLetterTopic.
  // Subject patterns the topic captures (core/subjects.h); empty: exactly its own name.
  std::vector<std::string> subjects;
};

struct TopicRecord {
  std::string name;
  TopicId id = 0;
  TopicConfig settings;
  Offset nextOffset = 1;   // The offset the next message gets.
  Offset firstOffset = 1;  // Oldest retained offset; == nextOffset when empty.
  uint64_t messages = 0;
  uint64_t bytes = 0;  // Payload + key + header bytes of retained messages.
  int64_t createdMs = 0;
  int64_t lastTimestampMs = 0;
};

struct GroupRecord {
  TopicId topicId = 0;
  std::string name;
  Offset position = 1;  // Next offset never yet delivered.
  int64_t createdMs = 0;
  uint64_t redelivered = 0;
  uint64_t deadLettered = 0;
  uint64_t pending = 0;     // Its entries in the store's `pending` database (counted by the store).
  bool keyOrdered = false;  // Chosen at creation, never changed.
  uint64_t scheduled = 0;   // Of `pending`: delayed, never delivered yet (counted by the store).
  // Subject patterns: the group is sent only matching messages (empty: all). Never changed.
  std::vector<std::string> filter;
};

struct PendingRecord {
  TopicId topicId = 0;
  std::string group;
  Offset offset = 0;
  uint32_t deliveries = 0;  // Times delivered so far.
  int64_t visibleAtMs = 0;  // Due at this time; 0: held by a consumer when written.
  uint8_t cause = 0;        // core::RedeliveryCause.
};

// A message as published (before it has an offset and timestamp).
struct MessageData {
  std::optional<std::string> key;
  HeaderList headers;
  std::string payload;
  std::string id;  // Producer message id; empty for none.
  // Delayed delivery: no group is sent the message before this Unix time (0: at once). As
  // stored, it is at most kMaxDeliveryDelayMs after the message's timestamp.
  int64_t deliverAtMs = 0;
  // As a publish requested it, instead of deliverAtMs: from the publish's time. The broker
  // turns it into deliverAtMs before building the append; it is never stored.
  uint32_t delayMs = 0;
  // Time to live: the message expires this long after it becomes deliverable (its timestamp,
  // or its delivery time if delayed) and is never delivered after. 0: never; as a publish
  // requested it with hasTtl false, the topic's default, which the broker applies before
  // building the append.
  uint32_t ttlMs = 0;
  bool hasTtl = false;  // As a publish requested it: ttlMs was set (0 is then refused).
  // The subject it was published to; empty: its topic's own name (a publish to the topic).
  std::string subject;

  // The bytes that count against maxBytes and maxMessageSize accounting.
  uint64_t accountedBytes() const;
};

// `base` + `deltaMs`, at most the largest time (records read from disk may hold any times).
inline int64_t plusMs(int64_t base, uint32_t deltaMs) {
  constexpr int64_t kLatest = std::numeric_limits<int64_t>::max();
  return base > kLatest - int64_t{deltaMs} ? kLatest : base + int64_t{deltaMs};
}
// The stored form of deliverAtMs: milliseconds after the message's timestamp (0: at once).
inline uint32_t storedDelayMs(int64_t timestampMs, int64_t deliverAtMs) {
  if (deliverAtMs <= timestampMs) return 0;
  // Unsigned: the difference of any two int64 values fits.
  uint64_t delay = static_cast<uint64_t>(deliverAtMs) - static_cast<uint64_t>(timestampMs);
  return static_cast<uint32_t>(std::min<uint64_t>(delay, kMaxDeliveryDelayMs));
}
inline int64_t deliverAtOf(int64_t timestampMs, uint32_t delayMs) {
  return delayMs == 0 ? 0 : plusMs(timestampMs, delayMs);
}
// When a stored message's time to live ends (0: never).
inline int64_t expiresAtOf(int64_t timestampMs, int64_t deliverAtMs, uint32_t ttlMs) {
  return ttlMs == 0 ? 0 : plusMs(std::max(timestampMs, deliverAtMs), ttlMs);
}
inline bool expiredAt(int64_t expiresAtMs, int64_t nowMs) {
  return expiresAtMs != 0 && expiresAtMs <= nowMs;
}

// A stored message, copied out of the store.
struct StoredMessageData {
  Offset offset = 0;
  int64_t timestampMs = 0;
  MessageData data;

  int64_t expiresAtMs() const { return expiresAtOf(timestampMs, data.deliverAtMs, data.ttlMs); }
};

struct PublishAckData {
  Offset offset = 0;
  bool duplicate = false;
};

// Authentication (core/auth.h). Actions are bits of a mask.
enum AuthAction : uint8_t { kActPublish = 1, kActConsume = 2, kActManage = 4, kActAdmin = 8 };
constexpr uint8_t kAllActions = kActPublish | kActConsume | kActManage | kActAdmin;

struct AuthRule {
  bool allow = true;    // false: deny; a deny matching an action on a topic wins.
  uint8_t actions = 0;  // AuthAction bits, at least one.
  std::string pattern;  // A subject pattern over topic names (core/subjects.h).
};

struct PrincipalRecord {
  std::string name;
  std::vector<AuthRule> rules;
  int64_t createdMs = 0;
};

// A token (scoped false: the principal's full rights) or a grant (scoped: also within `scope`
// and within its issuer's rights). Only the SHA-256 of the secret is kept.
struct CredentialRecord {
  uint64_t id = 0;
  std::string principal;
  uint64_t issuer = 0;  // The credential it was minted with; 0: none.
  bool scoped = false;
  std::vector<AuthRule> scope;
  int64_t expiresAtMs = 0;  // 0: never.
  int64_t createdMs = 0;
  std::string note;
  std::string secretHash;  // 32 bytes.
};

}  // namespace sluice
