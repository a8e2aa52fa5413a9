#pragma once

// Periodic work: ack deadlines of held messages, waking groups whose due entries have come
// due, retention by age and the work-queue floor, and dedup expiry. Each tick costs what is
// due, not what is stored: due times come from the store's ordered due index, one seek per
// group. Thread: kj.

#include <cstdint>

#include <kj/async.h>
#include <kj/timer.h>

#include "core/context.h"
#include "core/delivery.h"
#include "core/topic_log.h"

namespace sluice::core {

class Expiry {
 public:
  Expiry(Context& ctx, GroupDelivery& delivery, TopicLog& log, kj::Timer& timer)
      : ctx_(ctx), delivery_(delivery), log_(log), timer_(timer) {}

  // Starts ticking; stop() (or destruction) ends it.
  void start();
  void stop() { ticker_ = nullptr; }

  // One pass, as the ticker runs it (tests call it directly).
  void tick(int64_t nowMs);
  // Trims every topic past its maxAgeMs or (work queues) below every group's ack floor.
  void sweepRetention(int64_t nowMs);

 private:
  kj::Promise<void> loop();
  // The lowest offset the group may still need.
  Offset ackFloor(const Group& group, const StoreSnapshot& snapshot) const;

  Context& ctx_;
  GroupDelivery& delivery_;
  TopicLog& log_;
  kj::Timer& timer_;
  int64_t lastRetentionMs_ = 0;
  int64_t lastDedupExpiryMs_ = 0;
  kj::Promise<void> ticker_ = nullptr;
};

}  // namespace sluice::core
