#pragma once

// The broker's live state: topics, their groups, leases (messages held by consumers) and
// connected consumers. Pending entries that nobody holds live on disk only (the store's due
// index), so memory grows with connections and in-flight deliveries, never with backlog.
// Thread: kj. Only the event-loop thread touches these objects, so they have no locks.

#include <algorithm>
#include <cstdint>
#include <deque>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <kj/async.h>

#include "common/records.h"
#include "common/status.h"
#include "core/write_ops.h"

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

// A delivered message not yet acknowledged. While it has an owner a consumer holds it; once
// released (ack, nack, timeout, disconnect, dead-letter) the lease stays until the commit
// that records the release, so the message is not delivered again from a stale disk entry.
// A released lease that is due may be delivered again before that commit: the new delivery's
// writes queue behind the release's.
struct Lease {
  uint32_t deliveries = 0;    // Times delivered so far.
  int64_t ackDeadlineMs = 0;  // Owned: released after this time.
  bool gone = false;          // Released for good (acked, dead-lettered): never redelivered.
  int64_t dueAtMs = 0;        // Released and not gone: due again at this time.
  RedeliveryCause cause = RedeliveryCause::kNone;
  uint64_t generation = 0;  // Which delivery; a settled release erases only its own.

  Consumer* owner() const { return owner_; }  // Null: released, waiting for its commit.
  // The one way to change the owner: it keeps Consumer::held() equal to the leases it owns.
  void setOwner(Consumer* owner);

 private:
  Consumer* owner_ = nullptr;
};

struct Topic {
  std::string name;
  TopicId id = 0;
  TopicConfig settings;
  int64_t createdMs = 0;
  // As of every batch submitted so far (committed or not): the next offset to assign, the
  // oldest retained offset, the last timestamp, and (for topics with maxBytes) the bytes.
  Offset nextOffset = 1;
  Offset firstOffset = 1;
  int64_t lastTimestampMs = 0;
  uint64_t bytes = 0;
  // Every offset below is committed: deliverable and readable.
  Offset committedNext = 1;
  // Sizes of the messages at [committedNext, nextOffset), for topics with maxBytes.
  std::deque<std::pair<Offset, uint64_t>> uncommittedSizes;
  // Producer ids of appends not yet committed (the dedup index has the committed ones).
  std::map<std::string, Offset, std::less<>> uncommittedIds;
  uint64_t publishedTotal = 0;  // Since start.
  uint64_t publishedBytes = 0;  // Since start.
  uint64_t expired = 0;         // Since start: removed from the front for their time to live.
  RateMeter publishRate;
  std::map<std::string, std::unique_ptr<Group>, std::less<>> groups;

  bool tracksBytes() const { return settings.maxBytes != 0; }
};

// A key-ordered group's one key: its message in flight (held, released, or waiting in the due
// index) and those parked behind it, in offset order, each with its delivery time.
struct KeyLine {
  Offset active = 0;
  std::deque<std::pair<Offset, int64_t>> parked;
};
using KeyLines = std::unordered_map<std::string, KeyLine>;

struct Group {
  Topic* topic = nullptr;
  std::string name;
  bool keyOrdered = false;
  // Subject patterns: only matching messages are delivered (empty: all). Chosen at creation.
  std::vector<std::string> filter;
  // A filtered group's lag: the matching messages retained in [position, committedNext);
  // nullopt when unknown (at start-up, after a reset or a trim past the position), counted
  // again from the store when asked (Views).
  mutable std::optional<uint64_t> matchedAhead;  // A cache: filled in by const views.
  bool filtered() const { return !filter.empty(); }
  // Key-ordered groups: the keys with a message in flight, and every tracked (active or
  // parked) offset with its key's entry (node pointers stay valid until erased). At most
  // Limits::maxKeyedMessages are tracked; past that the group takes nothing new from the topic.
  KeyLines keys;
  std::unordered_map<Offset, KeyLines::value_type*> keyOf;
  Offset keyFloor = 0;  // No tracked offset is below it (a lower bound, refreshed on trims).
  // Messages parked behind their key (the key-blocked count): every key has one active.
  uint64_t parked() const { return keyOf.size() - keys.size(); }
  int64_t createdMs = 0;
  Offset position = 1;  // Next offset never yet delivered.
  std::map<Offset, Lease> leases;
  // No held lease's ack deadline is before it (a lower bound: leases are walked only then).
  int64_t nextAckDeadlineMs = std::numeric_limits<int64_t>::max();
  void noteAckDeadline(int64_t ms) { nextAckDeadlineMs = std::min(nextAckDeadlineMs, ms); }
  // Offsets whose lease may be released and not gone (due again): every such lease is here;
  // entries that no longer are such are dropped as they are met, so a pass over the due ones
  // costs what was released, not every lease.
  std::set<Offset> releasedLeases;
  // Due entries at visibleAtMs 0 left by consumers of an earlier run (due at once).
  uint64_t heldAtStop = 0;
  // Earliest known due time of a disk entry (visibleAtMs > 0); refreshed from the store.
  std::optional<int64_t> nextDueMs;
  // Key-ordered groups: keys' next messages, due now that the one before is settled, in the
  // order they became due; their entries stay parked on disk (GroupDelivery::wake()).
  std::deque<Offset> woken;
  std::vector<Consumer*> consumers;
  size_t nextConsumer = 0;  // Round-robin start.
  // Durable totals.
  uint64_t redelivered = 0;
  uint64_t deadLettered = 0;
  // Since start.
  uint64_t delivered = 0;
  uint64_t acked = 0;
  uint64_t nacked = 0;
  uint64_t expired = 0;  // Passed over (dropped or dead-lettered) for their time to live.
  bool pumpScheduled = false;
  bool scheduling = false;  // Delayed messages passed into the due index wait for their commit.

  // Calls each(offset, lease) for every released lease that is not gone.
  template <typename Each>
  void forEachReleased(Each each) {
    for (auto it = releasedLeases.begin(); it != releasedLeases.end();) {
      auto lease = leases.find(*it);
      if (lease == leases.end() || lease->second.owner() != nullptr || lease->second.gone) {
        it = releasedLeases.erase(it);
        continue;
      }
      each(lease->first, lease->second);
      ++it;
    }
  }

  void track(Offset offset, KeyLines::value_type* line) {
    keyOf.emplace(offset, line);
    keyFloor = std::min(keyFloor, offset);
  }
  void forgetKeys() {
    keys.clear();
    keyOf.clear();
    keyFloor = 0;
    woken.clear();
  }

  // Whether some message other than the topic's new ones may be due at `nowMs`.
  bool mayHaveDue(int64_t nowMs) const {
    return heldAtStop > 0 || (nextDueMs && *nextDueMs <= nowMs) || !woken.empty();
  }

  // The durable form (without the pending count, which the store keeps).
  GroupRecord record() const;
  // Restores a group from its durable form.
  static std::unique_ptr<Group> fromRecord(Topic& topic, const GroupRecord& record);
  void noteDue(int64_t visibleAtMs) {
    if (!nextDueMs || visibleAtMs < *nextDueMs) nextDueMs = visibleAtMs;
  }
};

// A delivered message as handed to a consumer's transport.
struct Delivery {
  StoredMessageData message;
  uint32_t deliveries = 0;
  uint64_t deliveryId = 0;  // Its lease's generation: what an ack names.
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
  uint32_t prefetch = 1;  // 0: a fetch consumer, which is sent only what it fetches.
  uint64_t ackTimeoutMs = 30000;
  std::string peer;
  int64_t connectedMs = 0;

  // Messages the consumer holds: the leases whose owner it is (kept by Lease::setOwner, so
  // that a pump does not count them over all leases of the group).
  uint32_t held() const { return held_; }

  // A fetch waiting for messages (fetch consumers only). Deliveries gather in `got`, leased to
  // this consumer with no ack deadline until the answer goes out; `full` is fulfilled once
  // `want` messages (or the byte limit) are gathered, or the subscription ends (`ended`).
  struct Fetch {
    uint64_t seq = 0;  // Which fetch of the consumer.
    uint32_t want = 0;
    uint32_t enough = 0;  // Answer once this many are gathered (1..want).
    uint64_t bytes = 0;
    std::vector<Delivery> got;
    std::optional<Status> ended;
    kj::Own<kj::PromiseFulfiller<void>> full;
  };
  std::optional<Fetch> fetch;
  uint64_t fetches = 0;

 private:
  friend struct Lease;
  uint32_t held_ = 0;
};

inline void Lease::setOwner(Consumer* owner) {
  if (owner_ != nullptr) --owner_->held_;
  owner_ = owner;
  if (owner_ != nullptr) ++owner_->held_;
}

}  // namespace sluice::core
