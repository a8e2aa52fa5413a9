#include "core/expiry.h"

#include <algorithm>

#include "core/log.h"

namespace sluice::core {
namespace {

constexpr int64_t kTickMs = 25;
constexpr int64_t kRetentionEveryMs = 1000;
constexpr int64_t kDedupExpiryEveryMs = 10000;
// Expired messages one retention pass removes from the front of a topic at most.
constexpr size_t kMaxExpiredPerPass = 10000;

}  // namespace

void Expiry::start() {
  ticker_ = loop().eagerlyEvaluate([](kj::Exception&& e) {
    coreLog()->error("periodic work stopped: {}", e.getDescription().cStr());
  });
}

kj::Promise<void> Expiry::loop() {
  return timer_.afterDelay(kTickMs * kj::MILLISECONDS).then([this]() {
    tick(wallClockMs());
    return loop();
  });
}

void Expiry::tick(int64_t now) {
  if (ctx_.stopped) return;
  for (auto& [topicName, topic] : ctx_.topics) {
    for (auto& [groupName, group] : topic->groups) {
      delivery_.expireLeases(*group, now);
      if (group->mayHaveDue(now) && !group->consumers.empty()) delivery_.schedulePump(*group);
    }
  }
  if (now - lastRetentionMs_ >= kRetentionEveryMs) {
    lastRetentionMs_ = now;
    sweepRetention(now);
  }
  if (now - lastDedupExpiryMs_ >= kDedupExpiryEveryMs) {
    lastDedupExpiryMs_ = now;
    // Only when an id is due: an idle broker commits (and replicates) nothing.
    auto first = ctx_.store.snapshot()->firstIdExpiryMs();
    if (!first || *first > now) return;
    WriteBatch batch;
    batch.ops.push_back(ExpireDedupOp{now});
    ctx_.store.commitDetached(std::move(batch), "dedup expiry");
  }
}

Offset Expiry::ackFloor(const Group& group, const StoreSnapshot& snapshot) const {
  // Leases include released ones whose commit is queued: until then the store may not yet
  // show them as due, so they hold the floor.
  Offset floor = group.position;
  if (!group.leases.empty()) floor = std::min(floor, group.leases.begin()->first);
  if (auto pending = snapshot.firstPending(group.topic->id, group.name))
    floor = std::min(floor, *pending);
  return floor;
}

void Expiry::sweepRetention(int64_t now) {
  std::unique_ptr<StoreSnapshot> snapshot;
  for (auto& entry : ctx_.topics) {
    Topic* topic = entry.second.get();  // Not a structured binding: the lambda below uses it.
    if (topic->firstOffset >= topic->committedNext) continue;
    const TopicConfig& s = topic->settings;
    if (!snapshot) snapshot = ctx_.store.snapshot();
    // Every group's floor, when something below needs it.
    auto groupFloor = [&] {
      Offset floor = topic->committedNext;
      for (auto& [groupName, group] : topic->groups)
        floor = std::min(floor, ackFloor(*group, *snapshot));
      return floor;
    };
    Offset below = 0;
    if (s.maxAgeMs != 0 && static_cast<uint64_t>(now) > s.maxAgeMs) {
      int64_t cutoff = now - static_cast<int64_t>(s.maxAgeMs);
      below = snapshot->offsetAtTime(topic->id, topic->firstOffset, topic->committedNext, cutoff);
    }
    if (s.workQueue && !topic->groups.empty()) below = std::max(below, groupFloor());
    // Expired messages leave from the front, as RabbitMQ's do from a queue's head: one that
    // has not expired keeps those behind it (groups skip them when they reach them). Those
    // to be dead-lettered stay until every group has passed them, as each group sends its own.
    Offset start = std::max(below, topic->firstOffset);
    Offset end = s.deadLetterExpired ? groupFloor() : topic->committedNext;
    if (start < end) {
      Offset expired = snapshot->expiredUntil(topic->id, start, end, now, kMaxExpiredPerPass);
      if (expired > start) {
        topic->expired += expired - start;
        below = expired;
      }
    }
    WriteBatch batch;
    log_.trimTo(batch, *topic, below, *snapshot);
    if (!batch.empty()) ctx_.store.commitDetached(std::move(batch), "retention");
  }
}

}  // namespace sluice::core
