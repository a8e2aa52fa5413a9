#pragma once

// The broker's live state: topics, their groups, pending deliveries and connected consumers.
// Thread: kj. Only the event-loop thread touches these objects, so they have no locks.

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/records.h"
#include "common/status.h"

namespace sluice::core {

class Consumer;
struct Group;

// Counts events over the last few seconds for a per-second rate.
class RateMeter {
 public:
  void add(int64_t nowMs, uint64_t n);
  double perSecond(int64_t nowMs) const;

 private:
  static constexpr int kSlots = 5;  // One-second slots; the current one is excluded.
  int64_t slotSecond_[kSlots] = {};
  uint64_t slotCount_[kSlots] = {};
};

// Why a pending message became due for redelivery; named in dead-letter headers.
enum class RedeliveryCause { kNone, kNack, kAckTimeout, kConsumerGone, kRestart };
const char* causeName(RedeliveryCause cause);

// A message delivered to the group (or due for redelivery) and not yet acknowledged.
struct Pending {
  uint32_t deliveries = 0;    // Times delivered so far.
  int64_t visibleAtMs = 0;    // Unowned: not redelivered before this time.
  int64_t ackDeadlineMs = 0;  // Owned: redelivered after this time.
  Consumer* owner = nullptr;  // Null while waiting for (re)delivery.
  RedeliveryCause cause = RedeliveryCause::kNone;
};

struct Topic {
  std::string name;
  TopicId id = 0;
  TopicSettings settings;
  int64_t createdMs = 0;
  Offset nextOffset = 1;        // Committed: every offset below exists or was dropped.
  Offset firstOffset = 1;       // Oldest retained; == nextOffset when empty.
  uint64_t publishedTotal = 0;  // Since start.
  uint64_t publishedBytes = 0;  // Since start.
  RateMeter publishRate;
  std::map<std::string, std::unique_ptr<Group>> groups;
};

struct Group {
  Topic* topic = nullptr;
  std::string name;
  int64_t createdMs = 0;
  Offset position = 1;  // Next offset never yet delivered.
  std::map<Offset, Pending> pending;
  std::vector<Consumer*> consumers;
  size_t nextConsumer = 0;  // Round-robin start.
  // Durable totals.
  uint64_t redelivered = 0;
  uint64_t deadLettered = 0;
  // Since start.
  uint64_t delivered = 0;
  uint64_t acked = 0;
  uint64_t nacked = 0;
  bool pumpScheduled = false;

  Offset ackFloor() const {
    return pending.empty() ? position : std::min(position, pending.begin()->first);
  }
};

// A delivered message as handed to a consumer's transport.
struct Delivery {
  StoredMessageData message;
  uint32_t deliveries = 0;
};

// Where a consumer's deliveries go: implemented by the RPC layer. Thread: kj.
class ConsumerSink {
 public:
  virtual ~ConsumerSink() = default;
  virtual void deliver(std::vector<Delivery> batch) = 0;
  // The broker ended the subscription (topic or group deleted, shutdown).
  virtual void closed(const Status& why) = 0;
};

// One member of a consumer group. Owned by Broker; the RPC layer holds its id.
class Consumer {
 public:
  uint64_t id = 0;
  Group* group = nullptr;  // Null once detached (its topic or group was deleted).
  ConsumerSink* sink = nullptr;
  uint32_t prefetch = 1;
  uint64_t ackTimeoutMs = 30000;
  uint32_t inFlight = 0;
  std::string peer;
  int64_t connectedMs = 0;
};

}  // namespace sluice::core
