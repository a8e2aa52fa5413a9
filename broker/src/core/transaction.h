#pragma once

// Atomic ack-and-publish: the request, its answer, the rules of its shape, and the fingerprint
// that tells a retry (same id, same content) from a conflict (same id, other content).
// GroupDelivery::transact applies it. Thread: any (plain values and functions).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/records.h"
#include "common/status.h"

namespace sluice::core {

struct Limits;

// The messages a transaction publishes to one topic.
struct TopicBatch {
  std::string topic;
  std::vector<MessageData> messages;
};

struct TransactionRequest {
  std::string id;                     // Empty: not idempotent (a retry applies again).
  std::vector<Offset> offsets;        // Held messages of the consumer to acknowledge.
  std::vector<uint64_t> deliveryIds;  // Empty, or one per offset (as for ack).
  std::vector<TopicBatch> publishes;  // Each topic at most once.
};

struct TransactionOutcome {
  std::vector<std::vector<PublishAckData>> outputs;  // Per publishes[i], one per message.
  bool replayed = false;  // Answered from an earlier application of the same id.
};

// How long an applied transaction's id is remembered for retries.
constexpr int64_t kTransactionWindowMs = 5 * 60 * 1000;
// Topics one transaction may publish to.
constexpr size_t kMaxTransactionTopics = 64;
// Transactions in one Subscription.transactMany call.
constexpr size_t kMaxTransactionsPerCall = 1024;

// The rules of a request's shape, checked before anything else: an id like a message id, at
// least one ack or message, acks within maxPrefetch and named once, deliveryIds empty or one
// per offset, topics named once and at most kMaxTransactionTopics, messages within
// maxBatchMessages in all. Returns the broken rule.
std::optional<Status> checkTransaction(const TransactionRequest& request, const Limits& limits);

// SHA-256 of everything a transaction asks for (the group it acks in, the offsets, every
// message published and where), not of the delivery ids: a retry after a reconnect names the
// same messages. 32 bytes.
std::string fingerprint(std::string_view topic, std::string_view group,
                        const TransactionRequest& request);

}  // namespace sluice::core
