// Consumer groups at work: subscribing, pushing deliveries within prefetch windows, acks and
// nacks, redelivery after ack timeouts and disconnects, dead-lettering, and the periodic sweep
// (ack deadlines, delayed redelivery, retention, dedup expiry).
#include "core/broker.h"
#include "core/log.h"
#include "core/names.h"

namespace sluice::core {
namespace {

constexpr int64_t kTickMs = 25;
constexpr int64_t kRetentionEveryMs = 1000;
constexpr int64_t kDedupExpiryEveryMs = 10000;
constexpr uint64_t kDefaultAckTimeoutMs = 30000;

Status notPending(Offset offset) {
  return Status(Code::kNotPending,
                "offset " + std::to_string(offset) +
                    " is not pending for this consumer (never delivered to it, already "
                    "acknowledged, or redelivered after its ack timeout)");
}

}  // namespace

const char* causeName(RedeliveryCause cause) {
  switch (cause) {
    case RedeliveryCause::kNone:
      return "none";
    case RedeliveryCause::kNack:
      return "nack";
    case RedeliveryCause::kAckTimeout:
      return "ack timeout";
    case RedeliveryCause::kConsumerGone:
      return "consumer disconnected";
    case RedeliveryCause::kRestart:
      return "broker restart";
  }
  return "unknown";
}

void RateMeter::add(int64_t nowMs, uint64_t n) {
  int64_t second = nowMs / 1000;
  int slot = static_cast<int>(second % kSlots);
  if (slotSecond_[slot] != second) {
    slotSecond_[slot] = second;
    slotCount_[slot] = 0;
  }
  slotCount_[slot] += n;
}

double RateMeter::perSecond(int64_t nowMs) const {
  int64_t second = nowMs / 1000;
  uint64_t total = 0;
  for (int i = 0; i < kSlots; ++i) {
    // Complete seconds only: [second - (kSlots - 1), second - 1].
    if (slotSecond_[i] < second && slotSecond_[i] >= second - (kSlots - 1)) total += slotCount_[i];
  }
  return static_cast<double>(total) / (kSlots - 1);
}

// Subscribing ----------------------------------------------------------------------------------

Result<uint64_t> Broker::subscribe(std::string_view topicName, std::string_view groupName,
                                   StartAt start, uint32_t prefetch, uint64_t ackTimeoutMs,
                                   ConsumerSink& sink, std::string peer) {
  if (stopped_) return Status(Code::kShuttingDown, "the broker is shutting down");
  const Limits& limits = options_.limits;
  if (prefetch == 0 || prefetch > limits.maxPrefetch) {
    return Status(Code::kInvalidArgument, "prefetch must be 1-" +
                                              std::to_string(limits.maxPrefetch) + ", got " +
                                              std::to_string(prefetch));
  }
  if (ackTimeoutMs == 0) ackTimeoutMs = kDefaultAckTimeoutMs;
  if (ackTimeoutMs > limits.maxAckTimeoutMs) {
    return Status(Code::kInvalidArgument, "ack timeout must be at most " +
                                              std::to_string(limits.maxAckTimeoutMs) + " ms, got " +
                                              std::to_string(ackTimeoutMs));
  }
  auto topic = requireTopic(topicName);
  if (!topic.ok()) return topic.status();
  bool created = false;
  auto group = ensureGroup(*topic.value(), groupName, start, &created);
  if (!group.ok()) return group.status();
  if (created) {
    std::string name(topicName);
    GroupRecord record = recordOf(*group.value());
    writer_.submitDetached(
        [name, record](store::WriteTxn& txn) {
          auto topic = txn.topic(name);
          if (topic && topic->id == record.topicId && !txn.group(record.topicId, record.name)) {
            txn.putGroup(record);
          }
          return Status();
        },
        "create group");
  }
  auto consumer = std::make_unique<Consumer>();
  consumer->id = nextConsumerId_++;
  consumer->group = group.value();
  consumer->sink = &sink;
  consumer->prefetch = prefetch;
  consumer->ackTimeoutMs = ackTimeoutMs;
  consumer->peer = std::move(peer);
  consumer->connectedMs = wallClockMs();
  group.value()->consumers.push_back(consumer.get());
  uint64_t id = consumer->id;
  coreLog()->debug("consumer joined topic={} group={} consumer={} peer={}", topicName, groupName,
                   id, consumer->peer);
  consumers_.emplace(id, std::move(consumer));
  metrics_.consumers.store(consumers_.size(), std::memory_order_relaxed);
  schedulePump(*group.value());
  return id;
}

void Broker::releaseConsumer(Consumer& consumer, RedeliveryCause cause) {
  Group* group = consumer.group;
  if (group == nullptr) return;
  int64_t now = wallClockMs();
  for (auto it = group->pending.begin(); it != group->pending.end();) {
    if (it->second.owner == &consumer && makeDue(*group, it->first, it->second, cause, now)) {
      it = group->pending.erase(it);
    } else {
      ++it;
    }
  }
  auto& members = group->consumers;
  members.erase(std::remove(members.begin(), members.end(), &consumer), members.end());
  consumer.group = nullptr;
  schedulePump(*group);
}

void Broker::unsubscribe(uint64_t consumerId) {
  auto it = consumers_.find(consumerId);
  if (it == consumers_.end()) return;
  releaseConsumer(*it->second, RedeliveryCause::kConsumerGone);
  coreLog()->debug("consumer left consumer={}", consumerId);
  consumers_.erase(it);
  metrics_.consumers.store(consumers_.size(), std::memory_order_relaxed);
}

// Acks and nacks -------------------------------------------------------------------------------

kj::Promise<std::vector<OffsetFailure>> Broker::ack(uint64_t consumerId,
                                                    std::vector<Offset> offsets) {
  std::vector<OffsetFailure> failures;
  auto it = consumers_.find(consumerId);
  Consumer* consumer = it == consumers_.end() ? nullptr : it->second.get();
  if (consumer == nullptr || consumer->group == nullptr) {
    Status why(Code::kTopicNotFound, "the topic or group of this subscription was deleted");
    for (Offset offset : offsets)
      failures.push_back({offset, why});
    return failures;
  }
  Group& group = *consumer->group;
  std::vector<Offset> done;
  for (Offset offset : offsets) {
    auto pending = group.pending.find(offset);
    if (pending == group.pending.end() || pending->second.owner != consumer) {
      failures.push_back({offset, notPending(offset)});
      continue;
    }
    group.pending.erase(pending);
    --consumer->inFlight;
    done.push_back(offset);
  }
  group.acked += done.size();
  metrics_.ackedTotal.fetch_add(done.size(), std::memory_order_relaxed);
  if (done.empty()) return failures;
  schedulePump(group);
  TopicId topicId = group.topic->id;
  std::string groupName = group.name;
  return commit<Done>([topicId, groupName, done](store::WriteTxn& txn) -> Result<Done> {
           for (Offset offset : done)
             txn.deletePending(topicId, groupName, offset);
           return Done{};
         })
      .then([failures = std::move(failures), done](Result<Done> committed) mutable {
        if (!committed.ok()) {
          for (Offset offset : done)
            failures.push_back({offset, committed.status()});
        }
        return std::move(failures);
      });
}

kj::Promise<std::vector<OffsetFailure>> Broker::nack(uint64_t consumerId,
                                                     std::vector<Offset> offsets,
                                                     uint32_t delayMs) {
  std::vector<OffsetFailure> failures;
  auto it = consumers_.find(consumerId);
  Consumer* consumer = it == consumers_.end() ? nullptr : it->second.get();
  if (consumer == nullptr || consumer->group == nullptr) {
    Status why(Code::kTopicNotFound, "the topic or group of this subscription was deleted");
    for (Offset offset : offsets)
      failures.push_back({offset, why});
    return failures;
  }
  constexpr uint32_t kMaxDelayMs = 24u * 3600 * 1000;
  if (delayMs > kMaxDelayMs) {
    Status why(Code::kInvalidArgument,
               "nack delay must be at most 24h (86400000 ms), got " + std::to_string(delayMs));
    for (Offset offset : offsets)
      failures.push_back({offset, why});
    return failures;
  }
  Group& group = *consumer->group;
  int64_t visibleAt = notBeforeMs(delayMs);
  std::vector<PendingRecord> updates;
  for (Offset offset : offsets) {
    auto pending = group.pending.find(offset);
    if (pending == group.pending.end() || pending->second.owner != consumer) {
      failures.push_back({offset, notPending(offset)});
      continue;
    }
    ++group.nacked;
    metrics_.nackedTotal.fetch_add(1, std::memory_order_relaxed);
    uint32_t deliveries = pending->second.deliveries;
    if (makeDue(group, offset, pending->second, RedeliveryCause::kNack, visibleAt)) {
      group.pending.erase(pending);
    } else {
      updates.push_back(PendingRecord{group.topic->id, group.name, offset, deliveries, visibleAt});
    }
  }
  schedulePump(group);
  if (updates.empty()) return failures;
  return commit<Done>([updates](store::WriteTxn& txn) -> Result<Done> {
           // Skip entries acked or dropped meanwhile: only rewrite what still exists.
           for (const PendingRecord& record : updates) {
             if (txn.deletePending(record.topicId, record.group, record.offset)) {
               txn.putPending(record);
             }
           }
           return Done{};
         })
      .then([failures = std::move(failures), updates](Result<Done> committed) mutable {
        if (!committed.ok()) {
          for (const auto& record : updates)
            failures.push_back({record.offset, committed.status()});
        }
        return std::move(failures);
      });
}

bool Broker::makeDue(Group& group, Offset offset, Pending& pending, RedeliveryCause cause,
                     int64_t visibleAtMs) {
  if (pending.owner != nullptr) {
    --pending.owner->inFlight;
    pending.owner = nullptr;
  }
  uint32_t maxDeliveries = group.topic->settings.maxDeliveries;
  if (maxDeliveries > 0 && pending.deliveries >= maxDeliveries) {
    deadLetter(group, offset, pending.deliveries, cause);
    return true;
  }
  pending.visibleAtMs = visibleAtMs;
  pending.cause = cause;
  return false;
}

void Broker::deadLetter(Group& group, Offset offset, uint32_t deliveries, RedeliveryCause cause) {
  ++group.deadLettered;
  metrics_.deadLetteredTotal.fetch_add(1, std::memory_order_relaxed);
  const Topic& topic = *group.topic;
  std::string dlq = topic.settings.deadLetterTopic;
  std::string topicName = topic.name;
  GroupRecord record = recordOf(group);
  std::string reason = "max deliveries (" + std::to_string(topic.settings.maxDeliveries) +
                       ") reached; last: " + causeName(cause);
  coreLog()->info("message dead-lettered topic={} group={} offset={} deliveries={} to={}",
                  topicName, group.name, offset, deliveries, dlq.empty() ? "(dropped)" : dlq);
  auto job = [=](store::WriteTxn& txn) -> Result<std::optional<TopicRecord>> {
    auto origin = txn.topic(topicName);
    if (!origin || origin->id != record.topicId || !txn.group(record.topicId, record.name)) {
      return std::optional<TopicRecord>();  // Deleted meanwhile: nothing to move.
    }
    std::optional<TopicRecord> target;
    if (!dlq.empty()) {
      if (auto message = txn.readMessage(record.topicId, offset)) {
        MessageData data = std::move(message->data);
        data.headers.emplace_back("sluice-origin-topic", topicName);
        data.headers.emplace_back("sluice-origin-group", record.name);
        data.headers.emplace_back("sluice-origin-offset", std::to_string(offset));
        data.headers.emplace_back("sluice-deliveries", std::to_string(deliveries));
        data.headers.emplace_back("sluice-reason", reason);
        data.id.clear();
        auto appended = txn.appendInternal(dlq, data);
        if (!appended.ok()) return appended.status();
        target = txn.topic(dlq);
      }
    }
    // Atomic with the append above: both or neither are committed.
    txn.deletePending(record.topicId, record.name, offset);
    txn.putGroup(record);
    return target;
  };
  tasks_->add(commit<std::optional<TopicRecord>>(job).then(
      [this, dlq](Result<std::optional<TopicRecord>> moved) {
        if (!moved.ok()) {
          coreLog()->warn("dead-letter failed to={} err={}", dlq, moved.status().toString());
          return;
        }
        if (!moved.value()) return;
        const TopicRecord& record = *moved.value();
        Topic* target = findTopic(record.name);
        if (target == nullptr) target = &adoptTopic(record);
        updateTopicStats(*target, record);
        for (auto& [name, g] : target->groups)
          schedulePump(*g);
      }));
}

// Delivery -------------------------------------------------------------------------------------

void Broker::schedulePump(Group& group) {
  if (group.pumpScheduled || stopped_) return;
  group.pumpScheduled = true;
  tasks_->add(kj::evalLater([this, topic = group.topic->name, name = group.name]() {
    if (Group* group = findGroup(topic, name)) {
      group->pumpScheduled = false;
      pump(*group);
    }
  }));
}

void Broker::pump(Group& group) {
  if (stopped_ || group.consumers.empty()) return;
  Topic& topic = *group.topic;
  const Limits& limits = options_.limits;
  int64_t now = wallClockMs();
  std::vector<Offset> due;
  for (const auto& [offset, pending] : group.pending) {
    if (pending.owner == nullptr && pending.visibleAtMs <= now) due.push_back(offset);
  }
  if (due.empty() && group.position >= topic.nextOffset) return;

  store::ReadTxn read(env_);
  std::vector<PendingRecord> persist;
  std::vector<Offset> dropped;  // Pending entries whose message retention removed.
  Offset startPosition = group.position;
  size_t nextDue = 0;
  bool deliveredAny = false;
  size_t members = group.consumers.size();
  for (size_t k = 0; k < members; ++k) {
    Consumer* consumer = group.consumers[(group.nextConsumer + k) % members];
    std::vector<Delivery> batch;
    uint64_t batchBytes = 0;
    auto full = [&] {
      return consumer->inFlight + batch.size() >= consumer->prefetch ||
             batch.size() >= limits.maxDeliveryBatch || batchBytes >= limits.maxDeliveryBatchBytes;
    };
    while (!full() && nextDue < due.size()) {
      Offset offset = due[nextDue++];
      auto pending = group.pending.find(offset);
      if (pending == group.pending.end()) continue;
      auto message = read.readMessage(topic.id, offset);
      if (!message) {
        group.pending.erase(pending);
        dropped.push_back(offset);
        continue;
      }
      Pending& p = pending->second;
      uint32_t maxDeliveries = topic.settings.maxDeliveries;
      if (maxDeliveries > 0 && p.deliveries >= maxDeliveries) {
        deadLetter(group, offset, p.deliveries, p.cause);  // E.g. loaded so after a restart.
        group.pending.erase(pending);
        continue;
      }
      ++p.deliveries;
      p.owner = consumer;
      p.ackDeadlineMs = notBeforeMs(consumer->ackTimeoutMs);
      p.cause = RedeliveryCause::kNone;
      ++group.redelivered;
      metrics_.redeliveredTotal.fetch_add(1, std::memory_order_relaxed);
      persist.push_back(PendingRecord{topic.id, group.name, offset, p.deliveries, 0});
      batchBytes += message->data.payload.size();
      batch.push_back(Delivery{std::move(*message), p.deliveries});
    }
    while (!full() && group.position < topic.nextOffset) {
      size_t room = std::min<size_t>(consumer->prefetch - consumer->inFlight - batch.size(),
                                     limits.maxDeliveryBatch - batch.size());
      auto messages = read.readMessages(topic.id, group.position, room,
                                        limits.maxDeliveryBatchBytes - batchBytes);
      if (messages.empty() || messages.front().offset >= topic.nextOffset) {
        group.position = topic.nextOffset;  // The rest was removed by retention or purge.
        break;
      }
      for (StoredMessageData& message : messages) {
        if (message.offset >= topic.nextOffset) break;  // Its publish is not answered yet.
        Pending p;
        p.deliveries = 1;
        p.owner = consumer;
        p.ackDeadlineMs = notBeforeMs(consumer->ackTimeoutMs);
        group.pending.emplace(message.offset, p);
        group.position = message.offset + 1;
        persist.push_back(PendingRecord{topic.id, group.name, message.offset, 1, 0});
        batchBytes += message.data.payload.size();
        batch.push_back(Delivery{std::move(message), 1});
      }
    }
    if (!batch.empty()) {
      deliveredAny = true;
      consumer->inFlight += static_cast<uint32_t>(batch.size());
      group.delivered += batch.size();
      metrics_.deliveredTotal.fetch_add(batch.size(), std::memory_order_relaxed);
      deliveryRate_.add(now, batch.size());
      consumer->sink->deliver(std::move(batch));
    }
  }
  group.nextConsumer = (group.nextConsumer + 1) % members;
  // A push is capped per consumer; come back in a later turn for the rest, so that one busy
  // group cannot hold the event loop.
  bool moreDue = nextDue < due.size() || group.position < topic.nextOffset;
  if (moreDue && deliveredAny) schedulePump(group);

  if (persist.empty() && dropped.empty() && group.position == startPosition) return;
  // Delivery state is written without waiting: a crash before this commits only means the
  // messages are delivered again (at-least-once), and the writer's FIFO order puts these
  // writes before any ack of the same messages.
  GroupRecord record = recordOf(group);
  std::string topicName = topic.name;
  writer_.submitDetached(
      [topicName, record, persist = std::move(persist),
       dropped = std::move(dropped)](store::WriteTxn& txn) {
        auto topic = txn.topic(topicName);
        if (!topic || topic->id != record.topicId || !txn.group(record.topicId, record.name)) {
          return Status();  // Deleted meanwhile.
        }
        for (Offset offset : dropped)
          txn.deletePending(record.topicId, record.name, offset);
        for (const PendingRecord& pending : persist)
          txn.putPending(pending);
        txn.putGroup(record);
        return Status();
      },
      "delivery state");
}

// Periodic work --------------------------------------------------------------------------------

kj::Promise<void> Broker::tickLoop() {
  return timer_.afterDelay(kTickMs * kj::MILLISECONDS).then([this]() {
    tick();
    return tickLoop();
  });
}

void Broker::tick() {
  if (stopped_) return;
  int64_t now = wallClockMs();
  for (auto& [topicName, topic] : topics_) {
    for (auto& [groupName, group] : topic->groups) {
      bool due = false;
      for (auto it = group->pending.begin(); it != group->pending.end();) {
        Pending& pending = it->second;
        if (pending.owner != nullptr && pending.ackDeadlineMs <= now) {
          if (makeDue(*group, it->first, pending, RedeliveryCause::kAckTimeout, now)) {
            it = group->pending.erase(it);
            continue;
          }
        }
        due = due || (pending.owner == nullptr && pending.visibleAtMs <= now);
        ++it;
      }
      if (due) schedulePump(*group);
    }
  }
  if (now - lastRetentionMs_ >= kRetentionEveryMs) {
    lastRetentionMs_ = now;
    sweepRetention();
  }
  if (now - lastDedupExpiryMs_ >= kDedupExpiryEveryMs) {
    lastDedupExpiryMs_ = now;
    writer_.submitDetached(
        [](store::WriteTxn& txn) {
          txn.expireDedup();
          return Status();
        },
        "dedup expiry");
  }
}

void Broker::sweepRetention() {
  for (auto& [name, topic] : topics_) {
    Offset dropBelow = 0;
    if (topic->settings.workQueue && !topic->groups.empty()) {
      dropBelow = topic->nextOffset;
      for (auto& [groupName, group] : topic->groups) {
        dropBelow = std::min(dropBelow, group->ackFloor());
      }
      if (dropBelow <= topic->firstOffset) dropBelow = 0;
    }
    if (topic->settings.maxAgeMs == 0 && dropBelow == 0) continue;
    if (topic->firstOffset >= topic->nextOffset) continue;  // Empty.
    std::string topicName = name;
    TopicId id = topic->id;
    tasks_->add(
        commit<TopicRecord>([topicName, dropBelow](store::WriteTxn& txn) -> Result<TopicRecord> {
          auto dropped = txn.applyRetention(topicName, dropBelow);
          if (!dropped.ok()) return dropped.status();
          auto record = txn.topic(topicName);
          if (!record) return Status(Code::kTopicNotFound, "deleted");
          return std::move(*record);
        }).then([this, topicName, id](Result<TopicRecord> record) {
          if (!record.ok()) return;
          Topic* topic = findTopic(topicName);
          if (topic == nullptr || topic->id != id) return;
          topic->firstOffset = std::max(topic->firstOffset, record.value().firstOffset);
        }));
  }
}

}  // namespace sluice::core
