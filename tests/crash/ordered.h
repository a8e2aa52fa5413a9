#pragma once

// The key-ordered group's workers and checker: two consumers of group "ordered" (created
// key-ordered) that ack most deliveries, nack some and sit on a few past their short ack
// timeout, recording every step in one shared log; the check then proves that each key's
// messages were delivered in offset order across every broker run, and that a key's next
// message was never delivered while the current delivery of the previous one was still
// unacknowledged (a key in flight twice). Messages keyed "k0".."k6" are a third of the topic.

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "crash/ledger.h"
#include "crash/violations.h"
#include "crash/workload.h"

namespace sluice::crash {

inline constexpr const char* kOrderedGroup = "ordered";
inline constexpr uint32_t kOrderedConsumers = 2;

enum class OrderEventKind : uint8_t { kDelivered, kAckSent, kNackSent, kAckRefused };

struct OrderEvent {
  OrderEventKind kind;
  uint32_t epoch;
  uint64_t offset;
  uint64_t deliveryId;             // Which delivery (unique within one broker run).
  std::optional<std::string> key;  // kDelivered: the message's key.
};

// Written by both consumers under `mutex`, in the order they saw things happen.
struct OrderLog {
  std::mutex mutex;
  std::vector<OrderEvent> events;
  std::vector<std::string> anomalies;
  uint64_t heldPastTimeout = 0;
};

// One consumer of group "ordered" for one broker run.
void runOrderedConsumer(OrderLog& log, CycleControl& control, uint64_t seed);

// Checks the log against the topic as stored at the end; prints the figures.
void verifyOrder(Violations& violations, const OrderLog& log,
                 const std::vector<StoredMessage>& stored);

}  // namespace sluice::crash
