#pragma once

// What the crash driver's producers and consumers saw, and the end-of-run verification that
// compares it with what the broker stored. Thread: a ProducerLedger or ConsumerLog is written
// by one worker thread during a cycle and read by the main thread between cycles.

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
                       const std::vector<std::string>& groups);

}  // namespace sluice::crash
