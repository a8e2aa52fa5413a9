#include "crash/ledger.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <unordered_map>

#include "crash/violations.h"

namespace sluice::crash {
namespace {

char fillerByte(uint64_t key, size_t i) {
  return static_cast<char>('a' + (key * 31 + i * 7) % 26);
}

}  // namespace

std::string keyName(uint64_t key) {
  return "P" + std::to_string(producerOf(key)) + ":" + std::to_string(seqOf(key));
}

std::string payloadFor(uint32_t producer, uint64_t seq, size_t padding) {
  std::string payload = "P" + std::to_string(producer) + ":" + std::to_string(seq) + ";";
  uint64_t key = keyOf(producer, seq);
  payload.reserve(payload.size() + padding);
  for (size_t i = 0; i < padding; ++i)
    payload.push_back(fillerByte(key, i));
  return payload;
}

std::optional<uint64_t> keyOfPayload(std::string_view payload) {
  if (payload.size() < 4 || payload[0] != 'P') return std::nullopt;
  size_t colon = payload.find(':');
  size_t semi = payload.find(';');
  if (colon == std::string_view::npos || semi == std::string_view::npos || semi < colon + 2 ||
      colon < 2) {
    return std::nullopt;
  }
  uint64_t producer = 0;
  uint64_t seq = 0;
  for (size_t i = 1; i < colon; ++i) {
    if (payload[i] < '0' || payload[i] > '9') return std::nullopt;
    producer = producer * 10 + static_cast<uint64_t>(payload[i] - '0');
  }
  for (size_t i = colon + 1; i < semi; ++i) {
    if (payload[i] < '0' || payload[i] > '9') return std::nullopt;
    seq = seq * 10 + static_cast<uint64_t>(payload[i] - '0');
  }
  if (producer > 0xffff || seq >= (uint64_t{1} << 48)) return std::nullopt;
  uint64_t key = keyOf(static_cast<uint32_t>(producer), seq);
  for (size_t i = semi + 1; i < payload.size(); ++i) {
    if (payload[i] != fillerByte(key, i - semi - 1)) return std::nullopt;
  }
  return key;
}

bool usesId(uint32_t producer, uint64_t seq) {
  return producer % 2 == 0 || seq % 5 == 0;
}

std::string idFor(uint32_t producer, uint64_t seq) {
  return "crash-" + std::to_string(producer) + "-" + std::to_string(seq);
}

size_t verifyAndReport(const RunFigures& run, const std::vector<ProducerLedger>& producers,
                       const std::vector<ConsumerLog>& consumers,
                       const std::vector<StoredMessage>& stored, uint64_t topicLastOffset,
                       const std::vector<std::string>& groups, const TransformerLog& transformer,
                       const std::vector<StoredOutput>& outputs, uint64_t outputsLastOffset) {
  Violations violations;

  // The topic: dense offsets from 1, timestamps never going backwards, every message one that
  // a producer sent, stored once, at the offset it was acknowledged with.
  std::unordered_map<uint64_t, uint64_t> offsetOfKey;
  offsetOfKey.reserve(stored.size());
  std::vector<uint64_t> keyAtOffset(stored.size() + 1, ~uint64_t{0});
  int64_t lastTimestamp = 0;
  uint64_t inDoubtStored = 0;
  for (size_t i = 0; i < stored.size(); ++i) {
    const StoredMessage& message = stored[i];
    if (message.offset != i + 1) {
      violations.add("offsets not dense", "message " + std::to_string(i + 1) + " has offset " +
                                              std::to_string(message.offset));
      continue;
    }
    if (message.timestampMs < lastTimestamp) {
      violations.add("timestamp went backwards", "offset " + std::to_string(message.offset));
    }
    lastTimestamp = message.timestampMs;
    if (!message.key) {
      violations.add("message never published", "offset " + std::to_string(message.offset) +
                                                    " holds a payload no producer sent");
      continue;
    }
    uint64_t key = *message.key;
    uint32_t producer = producerOf(key);
    uint64_t seq = seqOf(key);
    if (producer >= producers.size() || seq >= producers[producer].records.size()) {
      violations.add("message never published", "offset " + std::to_string(message.offset) +
                                                    " holds " + keyName(key) +
                                                    ", which was never sent");
      continue;
    }
    keyAtOffset[message.offset] = key;
    auto [it, fresh] = offsetOfKey.emplace(key, message.offset);
    if (!fresh) {
      violations.add("stored twice", keyName(key) + " at offsets " + std::to_string(it->second) +
                                         " and " + std::to_string(message.offset));
    }
    std::string expectedId = usesId(producer, seq) ? idFor(producer, seq) : std::string();
    if (message.id != expectedId) {
      violations.add("wrong message id", keyName(key) + " has id \"" + message.id + "\"");
    }
    const PublishRecord& record = producers[producer].records[seq];
    switch (record.state) {
      case PublishState::kAcked:
        if (record.offset != message.offset) {
          violations.add("stored at another offset than acknowledged",
                         keyName(key) + " acked at " + std::to_string(record.offset) +
                             ", stored at " + std::to_string(message.offset));
        }
        break;
      case PublishState::kRejected:
        violations.add("stored though rejected",
                       keyName(key) + " at offset " + std::to_string(message.offset));
        break;
      case PublishState::kInDoubt:
        if (fresh) ++inDoubtStored;
        break;
    }
  }
  if (stored.size() != topicLastOffset) {
    violations.add("offsets not dense", "peek returned " + std::to_string(stored.size()) +
                                            " messages; the topic's last offset is " +
                                            std::to_string(topicLastOffset));
  }

  uint64_t attempted = 0, acked = 0, duplicateAnswers = 0, inDoubt = 0, inDoubtWithId = 0;
  uint64_t rejected = 0, lost = 0, retriesAnswered = 0, rechecks = 0, recheckWrong = 0;
  for (const ProducerLedger& ledger : producers) {
    retriesAnswered += ledger.retriesAnswered;
    rechecks += ledger.dedupRechecks;
    recheckWrong += ledger.dedupRecheckWrong;
    for (const std::string& anomaly : ledger.anomalies)
      violations.add("producer anomaly", "P" + std::to_string(ledger.producer) + ": " + anomaly);
    for (uint64_t seq = 0; seq < ledger.records.size(); ++seq) {
      const PublishRecord& record = ledger.records[seq];
      uint64_t key = keyOf(ledger.producer, seq);
      ++attempted;
      if (record.attempts > 1) ++inDoubtWithId;  // Retried: it was in doubt at a kill.
      switch (record.state) {
        case PublishState::kAcked:
          ++acked;
          if (record.duplicateAnswer) ++duplicateAnswers;
          if (offsetOfKey.count(key) == 0) {
            ++lost;
            violations.add("acknowledged publish lost",
                           keyName(key) + " acked at offset " + std::to_string(record.offset));
          }
          break;
        case PublishState::kInDoubt:
          ++inDoubt;
          if (usesId(ledger.producer, seq)) {
            violations.add("in-doubt id never resolved", keyName(key) + " still unanswered");
          }
          break;
        case PublishState::kRejected:
          ++rejected;
          break;
      }
    }
  }

  std::printf("crash test figures\n");
  std::printf("  cycles (kill -9): %u, with publishes in flight at the kill: %u\n", run.cycles,
              run.killsWithPublishesInFlight);
  std::printf("  integrity check (sluiced --check): %u/%u passed\n", run.checksPassed,
              run.checksRun);
  std::printf("  publishes: attempted %" PRIu64 ", acknowledged %" PRIu64 ", rejected %" PRIu64
              "\n",
              attempted, acked, rejected);
  std::printf("  in doubt at a kill: with id %" PRIu64 " (retried; %" PRIu64 " answers, %" PRIu64
              " of them 'duplicate': the original had been stored), "
              "without id %" PRIu64 " (stored %" PRIu64 ", absent %" PRIu64 ")\n",
              inDoubtWithId, retriesAnswered, duplicateAnswers, inDoubt, inDoubtStored,
              inDoubt - std::min(inDoubt, inDoubtStored));
  std::printf("  dedup re-publish after restart: %" PRIu64 " (wrong answers %" PRIu64 ")\n",
              rechecks, recheckWrong);
  std::printf("  topic: %zu messages, last offset %" PRIu64 ", lost %" PRIu64
              ", stored twice %zu, never published %zu\n",
              stored.size(), topicLastOffset, lost, violations.count("stored twice"),
              violations.count("message never published"));

  for (const std::string& group : groups) {
    struct PerOffset {
      std::vector<uint32_t> epochs;
      uint32_t ackedEpoch = UINT32_MAX;
      uint32_t maxDeliveries = 0;
    };
    std::unordered_map<uint64_t, PerOffset> seen;
    uint64_t delivered = 0, ackOk = 0, ackFailed = 0;
    for (const ConsumerLog& log : consumers) {
      if (log.group != group) continue;
      for (const std::string& anomaly : log.anomalies)
        violations.add("consumer anomaly", group + ": " + anomaly);
      for (const ConsumerEvent& event : log.events) {
        PerOffset& entry = seen[event.offset];
        switch (event.kind) {
          case ConsumerEventKind::kDelivered:
            ++delivered;
            entry.epochs.push_back(event.epoch);
            entry.maxDeliveries = std::max(entry.maxDeliveries, event.deliveries);
            if (event.offset == 0 || event.offset > stored.size()) {
              violations.add("delivered a message that is not stored",
                             group + " got offset " + std::to_string(event.offset));
            } else if (keyAtOffset[event.offset] != event.key) {
              violations.add("delivered content differs from the stored message",
                             group + " offset " + std::to_string(event.offset));
            }
            break;
          case ConsumerEventKind::kAckOk:
            ++ackOk;
            entry.ackedEpoch = std::min(entry.ackedEpoch, event.epoch);
            break;
          case ConsumerEventKind::kAckFailed:
            ++ackFailed;
            break;
        }
      }
    }
    uint64_t duplicates = 0, sameRun = 0, afterAck = 0, missing = 0, ackedButNeverDelivered = 0;
    uint64_t ackedPublishesReached = 0;
    for (auto& [offset, entry] : seen) {
      std::sort(entry.epochs.begin(), entry.epochs.end());
      if (entry.epochs.empty() && entry.ackedEpoch != UINT32_MAX) ++ackedButNeverDelivered;
      for (size_t i = 1; i < entry.epochs.size(); ++i) {
        if (entry.epochs[i] == entry.epochs[i - 1]) {
          ++sameRun;
          violations.add("delivered twice in one broker run",
                         group + " offset " + std::to_string(offset) + " in run " +
                             std::to_string(entry.epochs[i]));
        } else if (entry.ackedEpoch < entry.epochs[i]) {
          ++afterAck;
          violations.add("delivered again after its ack was committed",
                         group + " offset " + std::to_string(offset) + " acked in run " +
                             std::to_string(entry.ackedEpoch) + ", delivered in run " +
                             std::to_string(entry.epochs[i]));
        } else {
          ++duplicates;  // Delivered before a kill, not acknowledged by then.
        }
      }
    }
    for (uint64_t offset = 1; offset <= stored.size(); ++offset) {
      auto it = seen.find(offset);
      bool reached = it != seen.end() && !it->second.epochs.empty();
      if (!reached) {
        ++missing;
        violations.add("never delivered to a group", group + " offset " + std::to_string(offset));
        continue;
      }
      uint64_t key = keyAtOffset[offset];
      if (key != ~uint64_t{0} && producerOf(key) < producers.size() &&
          seqOf(key) < producers[producerOf(key)].records.size() &&
          producers[producerOf(key)].records[seqOf(key)].state == PublishState::kAcked) {
        ++ackedPublishesReached;
      }
    }
    if (ackedButNeverDelivered > 0) {
      violations.add("ack succeeded for a message never delivered",
                     group + ": " + std::to_string(ackedButNeverDelivered));
    }
    std::printf("  group %s: deliveries %" PRIu64 ", acks ok %" PRIu64 " (failed at a kill %" PRIu64
                "), acknowledged publishes reached %" PRIu64 "/%" PRIu64 ", duplicates %" PRIu64
                " (all delivered-not-acked at a kill), "
                "redelivered after ack %" PRIu64 ", twice in one run %" PRIu64
                ", never delivered %" PRIu64 "\n",
                group.c_str(), delivered, ackOk, ackFailed, ackedPublishesReached, acked,
                duplicates, afterAck, sameRun, missing);
  }
  verifyTransactions(violations, transformer, stored, outputs, outputsLastOffset);
  std::printf("  violations: %zu\n", violations.total());
  return violations.total();
}

}  // namespace sluice::crash
