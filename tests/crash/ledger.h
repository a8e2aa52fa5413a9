#pragma once

// What the crash driver's producers, consumers and transformer saw, and the end-of-run
// verification that compares it with what the broker stored. Thread: a ProducerLedger,
// ConsumerLog or TransformerLog is written by one worker thread during a cycle and read by the
// main thread between cycles.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::crash {

// A message is named by its producer and that producer's sequence number, packed in a u64.
inline uint64_t keyOf(uint32_t producer, uint64_t seq) {
  return (uint64_t{producer} << 48) | seq;
}
inline uint32_t producerOf(uint64_t key) {
  return static_cast<uint32_t>(key >> 48);
}
inline uint64_t seqOf(uint64_t key) {
  return key & ((uint64_t{1} << 48) - 1);
}

// "P<producer>:<seq>", the name of a message in reports and in the transformer's outputs.
std::string keyName(uint64_t key);

// "P<producer>:<seq>;" followed by `padding` filler bytes derived from the key.
std::string payloadFor(uint32_t producer, uint64_t seq, size_t padding);
// The key named at the start of a payload, if it has the payloadFor() shape and its filler is
// intact.
std::optional<uint64_t> keyOfPayload(std::string_view payload);
// Producer message ids: every message of an even producer, every 5th of an odd one.
bool usesId(uint32_t producer, uint64_t seq);
std::string idFor(uint32_t producer, uint64_t seq);

enum class PublishState : uint8_t {
  kInDoubt,   // Sent; no answer (the broker died, or the answer was lost).
  kAcked,     // The broker answered an offset.
  kRejected,  // The broker answered an error: nothing may be stored.
};

struct PublishRecord {
  PublishState state = PublishState::kInDoubt;
  bool duplicateAnswer = false;  // The ack said duplicate = true (a retry of an in-doubt id).
  uint32_t attempts = 0;
  uint64_t offset = 0;
};

// One producer's messages, indexed by sequence number.
struct ProducerLedger {
  uint32_t producer = 0;
  std::vector<PublishRecord> records;
  // In-doubt messages with an id: retried after the restart until answered.
  std::vector<uint64_t> retry;
  // Figures.
  uint64_t retriesAnswered = 0;
  uint64_t dedupRechecks = 0;      // Acked id messages published again after a restart.
  uint64_t dedupRecheckWrong = 0;  // ... whose answer was not duplicate at the same offset.
  std::vector<std::string> anomalies;
};

enum class ConsumerEventKind : uint8_t { kDelivered, kAckOk, kAckFailed };

struct ConsumerEvent {
  ConsumerEventKind kind;
  uint32_t epoch;       // Broker run (cycle) in which it happened.
  uint32_t deliveries;  // kDelivered: the broker's delivery count.
  uint64_t offset;
  uint64_t key;  // kDelivered: parsed from the payload (~0 if unparsable).
};

struct ConsumerLog {
  std::string group;
  std::vector<ConsumerEvent> events;
  std::vector<std::string> anomalies;
};

// A message as read back from the broker at the end (peek).
struct StoredMessage {
  uint64_t offset = 0;
  int64_t timestampMs = 0;
  std::optional<uint64_t> key;
  std::string id;
};

// The transformer (group "tx" of crash.events) acknowledges each batch of messages it receives
// and publishes one output per message to crash.out in one transaction. Output i of a
// transaction names its input i: "T:<input offset>;<keyName of the input>" (or "?" for an
// input payload that does not parse), so a retry sends the same bytes.
std::string outputPayload(uint64_t inputOffset, std::optional<uint64_t> inputKey);
// The payload of a probe that reuses an applied transaction's id with other content: the
// broker must refuse it, so no output may ever start with "C:".
std::string conflictPayload(uint64_t inputOffset);
// A transaction's id, from its inputs alone (a retry of the same batch has the same id, and
// two batches the same id only if they are the same batch): "tx-<first>[-<last>]" for
// consecutive offsets, else "tx-<first>-<last>-n<count>-<hash of all>".
std::string transactionIdFor(const std::vector<uint64_t>& inputs);

enum class TxKind : uint8_t {
  kApply,                 // A batch's transaction: a first attempt, or a retry (see retry).
  kResend,                // The request again, same run, after it was applied: must replay.
  kConflict,              // An applied id with other content, same run: must be refused.
  kConflictAfterRestart,  // An id applied in an earlier broker run, other content: refused.
  kStale,                 // Acks a delivery superseded by a nack's redelivery: refused.
};

enum class TxOutcome : uint8_t {
  kInDoubt,   // Sent; no answer (the broker died).
  kApplied,   // Answered offsets, replayed = false.
  kReplayed,  // Answered offsets, replayed = true.
  kConflict,  // kTransactionConflict.
  kStale,     // kStaleDelivery or kNotPending.
  kFailed,    // Any other error (see TxAttempt::error).
};

struct TxAttempt {
  TxKind kind = TxKind::kApply;
  TxOutcome outcome = TxOutcome::kInDoubt;
  uint32_t epoch = 0;
  bool retry = false;  // kApply: the retry, with the same id, of one in doubt at a kill.
  std::string id;
  std::vector<uint64_t> inputs;   // Offsets in crash.events it acknowledges.
  std::vector<uint64_t> outputs;  // kApplied, kReplayed: the answered offsets in crash.out.
  int64_t answeredMs = 0;         // Steady clock; kApplied.
  std::string error;              // kFailed.
};

struct TransformerLog {
  std::vector<ConsumerEvent> deliveries;  // kDelivered events of group "tx".
  std::vector<TxAttempt> attempts;
  // kApply attempts left in doubt by a kill: retried with the same id once all their messages
  // are delivered again (they had not committed); never delivered again, they had committed.
  std::vector<size_t> inDoubt;
  // In-doubt transactions whose messages came back too slowly to be retried whole; they were
  // transformed anew, with other ids.
  uint64_t retriesGivenUp = 0;
  std::vector<std::string> anomalies;
};

// A message of crash.out as read back at the end.
struct StoredOutput {
  uint64_t offset = 0;
  std::string payload;
};

struct RunFigures {
  uint32_t cycles = 0;
  uint32_t killsWithPublishesInFlight = 0;
  uint32_t checksPassed = 0;
  uint32_t checksRun = 0;
};

// Verifies everything and prints the figures; returns the number of violations.
size_t verifyAndReport(const RunFigures& run, const std::vector<ProducerLedger>& producers,
                       const std::vector<ConsumerLog>& consumers,
                       const std::vector<StoredMessage>& stored, uint64_t topicLastOffset,
                       const std::vector<std::string>& groups, const TransformerLog& transformer,
                       const std::vector<StoredOutput>& outputs, uint64_t outputsLastOffset);

class Violations;
// The transformer's part of verifyAndReport (tx_ledger.cpp): prints its figures.
void verifyTransactions(Violations& violations, const TransformerLog& log,
                        const std::vector<StoredMessage>& stored,
                        const std::vector<StoredOutput>& outputs, uint64_t outputsLastOffset);

}  // namespace sluice::crash
