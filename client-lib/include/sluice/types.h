#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
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
  // In a cluster: the broker leading the topic's shard, the brokers replicating it (the leader
  // first) and those a write waits for. Empty from a standalone broker.
  std::string leader;
  std::vector<std::string> replicas;
  std::vector<std::string> inSync;
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

// One broker of a cluster, as the leader sees it (Admin::clusterStatus).
struct ReplicaInfo {
  std::string id;
  std::string rpcAddress;          // Where clients reach it when it leads; empty: not known.
  std::string replicationAddress;  // Where its followers pull from when it leads.
  bool alive = false;              // It holds a live membership.
  bool inSync = false;             // A write is acknowledged only once it holds it.
  uint64_t ackedSeq = 0;           // The last write-log batch it holds.
  int64_t caughtUpAgoMs = -1;      // Since it last held all it had been sent; -1: never.
};

// A cluster's replication state, from its leader. clusterId is empty for a standalone broker.
struct ClusterStatus {
  std::string clusterId;
  std::string leader;  // The broker that answered.
  uint64_t epoch = 0;
  uint32_t minInsync = 0;
  uint64_t lastSeq = 0;  // The leader's last committed batch: a replica lags lastSeq - ackedSeq.
  std::vector<std::string> inSync;
  std::vector<ReplicaInfo> brokers;  // The leader first.
};

// --- Authentication (Admin::whoami and the principal, token and grant calls) -----------------

// What a rule allows or denies on the topics its pattern matches.
enum class Action {
  kPublish,  // Producer::publish (the topic), publishSubject (the subject), transactions'
             // publishes.
  kConsume,  // Client::subscribe (creating the group if missing), Admin::peek.
  kManage,   // Create, delete, purge and change the subjects of topics; create, reset and delete
             // groups.
  kAdmin,    // Principals, their rules and tokens, every credential; Admin::backup. Broker-wide:
             // a rule with it has the pattern `>`.
};

// "publish", "consume", "manage" or "admin", as the schema and the CLI spell them; "unknown"
// for a value cast from an integer outside the enum.
inline const char* actionName(Action action) {
  switch (action) {
    case Action::kPublish:
      return "publish";
    case Action::kConsume:
      return "consume";
    case Action::kManage:
      return "manage";
    case Action::kAdmin:
      return "admin";
  }
  return "unknown";
}

// The action spelled `name` exactly as actionName() spells it, or nothing.
inline std::optional<Action> parseAction(std::string_view name) {
  for (Action action : {Action::kPublish, Action::kConsume, Action::kManage, Action::kAdmin}) {
    if (name == actionName(action)) return action;
  }
  return std::nullopt;
}

// One rule of a principal, or of a grant's scope. Describing and listing a topic (or its groups)
// needs any of publish, consume or manage on it; stats and route need only a valid credential.
struct Rule {
  bool allow = true;  // false: deny. A deny matching an action on a topic wins over any allow.
  std::vector<Action> actions;
  // Topic names (and subjects) as subject patterns: `*` one token, `>` one or more trailing
  // ones (`orders.>`; `>` alone: every topic).
  std::string pattern;
};

// A credential: a token of a principal (the principal's full rights), or a grant minted from
// another credential (at most its issuer's rights, and within `scope`). Its secret is shown once,
// when it is made (Secret), and never again.
struct CredentialInfo {
  uint64_t id = 0;
  std::string principal;
  // The credential it was minted from; 0: made by an admin for the principal (or minted on a
  // connection authenticated by a TLS client certificate).
  uint64_t issuer = 0;
  bool scoped = false;      // A grant: limited to `scope`.
  std::vector<Rule> scope;  // With scoped: allow rules, each within the issuer's rights.
  int64_t expiresAtMs = 0;  // Unix milliseconds; 0: never (a grant always expires).
  int64_t createdMs = 0;    // Unix milliseconds.
  std::string note;
};

struct PrincipalInfo {
  std::string name;
  std::vector<Rule> rules;
  int64_t createdMs = 0;     // Unix milliseconds.
  uint64_t credentials = 0;  // Its live tokens and grants.
};

// A credential just made, with its bearer secret (what Options::token takes). The broker keeps
// only a hash: this is the one time the secret is shown.
struct Secret {
  CredentialInfo credential;
  std::string secret;
};

// Who the connection is, as Admin::whoami answers.
struct Identity {
  // "anonymous" when the broker has authentication off; empty when it has it on and the
  // connection holds no credential (every call but whoami is then refused).
  std::string principal;
  // The credential the connection authenticated with; id 0: none (authentication off, or a TLS
  // client certificate naming the principal).
  CredentialInfo credential;
  std::vector<Rule> rules;  // The principal's; a grant also stays within credential.scope.
  // false: authentication is off ("anonymous": every call is allowed), or the connection holds
  // no credential (empty principal).
  bool authenticated = false;
};

}  // namespace sluice
