#pragma once

// The LMDB key layout (documented in README.md; it is an on-disk format). Integers are
// big-endian so that LMDB's byte order is numeric order. Names and ids never contain 0x00.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/records.h"

namespace sluice::store::keys {

// `meta` database keys.
constexpr std::string_view kFormatVersion = "format_version";         // u32 BE
constexpr std::string_view kNextTopicId = "next_topic_id";            // u32 BE
constexpr std::string_view kLastSeq = "last_seq";                     // u64 BE
constexpr std::string_view kNextCredentialId = "next_credential_id";  // u64 BE
constexpr std::string_view kLeaderEpoch = "leader_epoch";  // u64 BE epoch, then the leader's id
constexpr std::string_view kClusterId = "cluster_id";      // The cluster the store belongs to
// 1: no due index, no pending counts. 2: both, with held entries in the due index at 0.
// 3: held entries in `held`, the due index for waiting entries only. 4: `txns` and
// `txnExpiry` (nothing else changed). 5: time-to-live fields, key-ordered groups, scheduled
// counts. 6: parked entries have no due entry. 7: subjects and group filters. 8: `auth`
// (principals and credentials). Older stores are migrated at open.
constexpr uint32_t kCurrentFormatVersion = 8;

void appendU32(std::string& out, uint32_t v);
void appendU64(std::string& out, uint64_t v);
// `p` must hold at least 4 (8) bytes.
uint32_t readU32(const char* p);
uint64_t readU64(const char* p);

std::string u32(uint32_t v);
// topicId: the prefix of every key of one topic in messages, groups, pending and dedup.
std::string topicPrefix(TopicId topic);
// messages: topicId · offset
std::string message(TopicId topic, Offset offset);
// groups: topicId · group name
std::string group(TopicId topic, std::string_view name);
// pending (waiting entries) and held (entries held by a consumer) share one layout:
// topicId · group name · 0x00 · offset
std::string pendingPrefix(TopicId topic, std::string_view group);  // up to and incl. 0x00
std::string pending(TopicId topic, std::string_view group, Offset offset);
// dedup: topicId · message id
std::string dedup(TopicId topic, std::string_view id);
// dedupExpiry: expiresMs · topicId · message id
std::string dedupExpiry(uint64_t expiresMs, TopicId topic, std::string_view id);
// txns: the transaction id itself. txnExpiry: expiresMs · transaction id
std::string txnExpiry(uint64_t expiresMs, std::string_view id);

// due: topicId · group name · 0x00 · visibleAtMs u64 · offset u64
std::string duePrefix(TopicId topic, std::string_view group);  // == pendingPrefix
std::string due(TopicId topic, std::string_view group, int64_t visibleAtMs, Offset offset);
// wlog: seq u64
std::string logEntry(uint64_t seq);
// auth: "p" · principal name (StoredPrincipal); "c" · credential id u64 (StoredCredential).
constexpr char kPrincipalTag = 'p', kCredentialTag = 'c';
std::string principal(std::string_view name);
std::string credential(uint64_t id);

struct MessageKey {
  TopicId topic;
  Offset offset;
};
struct GroupKey {
  TopicId topic;
  std::string name;
};
struct PendingKey {
  TopicId topic;
  std::string group;
  Offset offset;
};
struct DueKey {
  TopicId topic;
  std::string group;
  int64_t visibleAtMs;
  Offset offset;
};
struct DedupKey {
  TopicId topic;
  std::string id;
};
struct DedupExpiryKey {
  uint64_t expiresMs;
  TopicId topic;
  std::string id;
};
struct TxnExpiryKey {
  uint64_t expiresMs;
  std::string id;
};

// Parsers return nullopt for a key of the wrong shape.
std::optional<MessageKey> parseMessage(std::string_view key);
std::optional<GroupKey> parseGroup(std::string_view key);
std::optional<PendingKey> parsePending(std::string_view key);
std::optional<DueKey> parseDue(std::string_view key);
std::optional<DedupKey> parseDedup(std::string_view key);
std::optional<DedupExpiryKey> parseDedupExpiry(std::string_view key);
std::optional<TxnExpiryKey> parseTxnExpiry(std::string_view key);

}  // namespace sluice::store::keys
