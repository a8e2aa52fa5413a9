#pragma once

// Write operations: every change the broker makes to durable state, as a value. core/ decides
// everything that depends on time or on the broker's live state (timestamps, offsets, topic
// ids, deadlines, retention cut-offs, dedup outcomes) before it builds an operation, so that
// applying the same batches to the same store always gives the same databases. store/ applies
// them (store/apply.cpp); the encoded form is WriteBatch in schemas/records.capnp.
// Thread: plain values; built on the kj thread, applied on the writer thread.

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "common/records.h"

namespace sluice::core {

// Why a pending message became due for redelivery; named in dead-letter headers and stored
// with due entries (a u8 on disk: only append values).
enum class RedeliveryCause : uint8_t { kNone, kNack, kAckTimeout, kConsumerGone, kRestart };
const char* causeName(RedeliveryCause cause);

struct AppendedMessage {
  int64_t timestampMs = 0;
  MessageData data;
  int64_t dedupExpiresMs = 0;  // > 0: remember data.id in the topic's dedup index until then.
};

// Creates a topic. The store also sets its next topic id past `id`.
struct CreateTopicOp {
  TopicId id = 0;
  std::string name;
  TopicConfig settings;
  int64_t createdMs = 0;
};
// Removes the topic with its messages, groups, pending entries and dedup ids.
struct DeleteTopicOp {
  TopicId id = 0;
  std::string name;
};
// Removes every message, pending entry and dedup id of the topic; nextOffset stays.
struct PurgeTopicOp {
  TopicId id = 0;
  std::string name;
};
// Stores messages at firstOffset, firstOffset + 1, ...; firstOffset is the topic's nextOffset.
struct AppendOp {
  TopicId id = 0;
  std::string topic;
  Offset firstOffset = 0;
  std::vector<AppendedMessage> messages;
};
// Drops the topic's messages and pending entries with offset < below (retention).
struct TrimOp {
  TopicId id = 0;
  std::string topic;
  Offset below = 0;
};
// Creates or updates a group's position and counters (its pending count is the store's).
struct PutGroupOp {
  GroupRecord group;
};
struct DeleteGroupOp {
  TopicId topic = 0;
  std::string group;
};
// Removes every pending entry of the group (group reset).
struct ClearPendingOp {
  TopicId topic = 0;
  std::string group;
};
// Creates or replaces a pending entry. visibleAtMs == 0: delivered and held by a consumer.
struct PutPendingOp {
  TopicId topic = 0;
  std::string group;
  Offset offset = 0;
  uint32_t deliveries = 0;
  int64_t visibleAtMs = 0;
  RedeliveryCause cause = RedeliveryCause::kNone;
};
// Removes a pending entry if it exists (ack, dead-letter).
struct RemovePendingOp {
  TopicId topic = 0;
  std::string group;
  Offset offset = 0;
};
// Forgets every dedup id and transaction record whose window ended at or before nowMs.
struct ExpireDedupOp {
  int64_t nowMs = 0;
};
// Remembers an applied transaction (ack-and-publish) under its id until expiresMs, with the
// answer a retry gets: per published topic, in request order, one ack per message.
struct PutTxnOp {
  std::string id;
  std::string fingerprint;  // Of the request's content (core/transaction.h).
  int64_t expiresMs = 0;
  std::vector<std::vector<PublishAckData>> outputs;
};

// Replaces the subject patterns a topic captures (valid, deduplicated; empty: its own name).
struct SetSubjectsOp {
  TopicId id = 0;
  std::string topic;
  std::vector<std::string> subjects;
};

// Creates a principal or replaces its rules.
struct PutPrincipalOp {
  PrincipalRecord principal;
};
// Removes a principal (its credentials are revoked by a RevokeCredentialsOp before it).
struct DeletePrincipalOp {
  std::string name;
};
// Stores a new credential; the store's next credential id moves past its id.
struct PutCredentialOp {
  CredentialRecord credential;
};
// Removes credentials (core lists a revoked one's descendants too); unknown ids are skipped.
struct RevokeCredentialsOp {
  std::vector<uint64_t> ids;
};
// The first batch a newly elected leader commits: every store that holds it knows which epoch
// (and leader) wrote the batches after it (cluster/README.md, divergence).
struct BeginEpochOp {
  uint64_t epoch = 0;
  std::string leader;
  std::string cluster;
};

using WriteOp =
    std::variant<CreateTopicOp, DeleteTopicOp, PurgeTopicOp, AppendOp, TrimOp, PutGroupOp,
                 DeleteGroupOp, ClearPendingOp, PutPendingOp, RemovePendingOp, ExpireDedupOp,
                 PutTxnOp, SetSubjectsOp, PutPrincipalOp, DeletePrincipalOp, PutCredentialOp,
                 RevokeCredentialsOp, BeginEpochOp>;

// The ops of one broker action, applied in order and committed together.
struct WriteBatch {
  std::vector<WriteOp> ops;
  bool empty() const { return ops.empty(); }
};

// A committed batch as read back from the write log.
struct LoggedBatch {
  uint64_t seq = 0;
  WriteBatch batch;
  int64_t loggedAtMs = 0;  // Unix ms of the commit that first held it; 0: not recorded.
};

}  // namespace sluice::core
