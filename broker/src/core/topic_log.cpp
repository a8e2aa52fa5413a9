#include "core/topic_log.h"

#include <algorithm>
#include <limits>

#include "core/log.h"
#include "core/names.h"
#include "core/subjects.h"

namespace sluice::core {
namespace {

template <typename T>
kj::Promise<Result<T>> ready(Result<T> result) {
  return kj::Promise<Result<T>>(std::move(result));
}

int64_t saturatingAdd(int64_t base, uint64_t delta) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  if (base < 0) base = 0;
  if (delta > static_cast<uint64_t>(kMax - base)) return kMax;
  return base + static_cast<int64_t>(delta);
}

}  // namespace

Status TopicLog::checkBatchCount(size_t count) const {
  if (count == 0)
    return Status(Code::kInvalidArgument, "a publish needs at least 1 message, got 0");
  if (count > ctx_.limits().maxBatchMessages) {
    return Status(Code::kLimitExceeded, "a publish may carry at most " +
                                            std::to_string(ctx_.limits().maxBatchMessages) +
                                            " messages, got " + std::to_string(count));
  }
  return Status();
}

Status TopicLog::topicRoom(uint32_t adding) const {
  if (ctx_.nextTopicId > std::numeric_limits<TopicId>::max() - adding) {
    return Status(Code::kLimitExceeded, "all topic ids have been used");
  }
  if (ctx_.topics.size() + adding <= ctx_.limits().maxTopics) return Status();
  return Status(Code::kLimitExceeded,
                "the broker holds at most " + std::to_string(ctx_.limits().maxTopics) + " topics");
}

namespace {

// A delivery time in the past means at once; one beyond the limit is refused.
Status validateSchedule(const MessageData& message) {
  const std::string limit = "at most 30 days (" + std::to_string(kMaxDeliveryDelayMs) + " ms)";
  if (message.deliverAtMs != 0 && message.delayMs != 0) {
    return Status(Code::kInvalidArgument, "set a delivery time or a delay, not both");
  }
  if (message.delayMs > kMaxDeliveryDelayMs) {
    return Status(Code::kInvalidArgument, "the delivery delay must be " + limit + ", got " +
                                              std::to_string(message.delayMs) + " ms");
  }
  int64_t now = wallClockMs();
  if (message.deliverAtMs > now && message.deliverAtMs - now > int64_t{kMaxDeliveryDelayMs}) {
    return Status(Code::kInvalidArgument, "the delivery time must be " + limit + " from now, got " +
                                              std::to_string(message.deliverAtMs) + " (Unix ms), " +
                                              std::to_string(message.deliverAtMs - now) +
                                              " ms from now");
  }
  return Status();
}

}  // namespace

Status TopicLog::validateBatch(std::string_view topic, const std::vector<MessageData>& messages,
                               uint32_t maxSize) const {
  uint64_t total = 0;
  for (size_t i = 0; i < messages.size(); ++i) {
    const MessageData& message = messages[i];
    // Named only on failure: building the text for every message cost allocations per publish.
    auto which = [&] {
      return messages.size() == 1
                 ? std::string("the message")
                 : "message " + std::to_string(i + 1) + " of " + std::to_string(messages.size());
    };
    if (auto problem = validateMessageId(message.id)) {
      return Status(Code::kInvalidArgument, which() + ": " + *problem);
    }
    if (auto problem = validateHeaders(message.headers)) {
      return Status(Code::kInvalidArgument, which() + ": " + *problem);
    }
    if (message.deliverAtMs != 0 || message.delayMs != 0) {
      Status schedule = validateSchedule(message);
      if (!schedule.ok())
        return Status(Code::kInvalidArgument, which() + ": " + schedule.message());
    }
    if (message.hasTtl && (message.ttlMs == 0 || message.ttlMs > kMaxTtlMs)) {
      return Status(Code::kInvalidArgument, which() +
                                                ": the time to live must be 1 ms to 30 days (" +
                                                std::to_string(kMaxTtlMs) + " ms), got " +
                                                std::to_string(message.ttlMs) + " ms");
    }
    uint64_t size = message.accountedBytes();
    if (size > maxSize) {
      return Status(Code::kMessageTooLarge,
                    which() + " is " + std::to_string(size) + " bytes; topic " + quoted(topic) +
                        " allows at most " + std::to_string(maxSize) +
                        " bytes (payload, key and headers); nothing was stored");
    }
    total += size;
  }
  if (total > ctx_.limits().maxBatchBytes) {
    return Status(Code::kLimitExceeded, "a publish may carry at most " +
                                            std::to_string(ctx_.limits().maxBatchBytes) +
                                            " bytes, got " + std::to_string(total));
  }
  return Status();
}

Status TopicLog::admit(std::string_view topicName, const std::vector<MessageData>& messages,
                       Topic* topic, uint64_t estimate) const {
  if (Status refused = ctx_.writeRefusal(); !refused.ok()) return refused;
  if (auto problem = validateTopicName(topicName)) return Status(Code::kInvalidArgument, *problem);
  Status count = checkBatchCount(messages.size());
  if (!count.ok()) return count;
  if (topic == nullptr && !ctx_.options.autoCreateTopics) return noTopic(topicName);
  if (topic == nullptr) {
    Status room = topicRoom(1);
    if (!room.ok()) return room;
  }
  uint32_t maxSize = topic != nullptr ? topic->settings.maxMessageSize : kDefaultMaxMessageSize;
  Status valid = validateBatch(topicName, messages, maxSize);
  if (!valid.ok()) return valid;
  uint64_t used = ctx_.store.usedBytes() + ctx_.uncommittedAppendBytes;
  uint64_t limit = ctx_.store.publishLimitBytes();
  if (used + estimate > limit) {
    return Status(Code::kStorageFull, "storage is full: " + std::to_string(used) +
                                          " bytes in use + ~" + std::to_string(estimate) +
                                          " for this batch would pass the publish limit of " +
                                          std::to_string(limit) +
                                          " bytes; consumers and acks still work");
  }
  return Status();
}

std::vector<PublishAckData> TopicLog::assign(Topic& topic, std::vector<MessageData> messages,
                                             int64_t now, AppendOp& op, AppendTicket& ticket) {
  // A read transaction only when something needs committed state (ids).
  std::unique_ptr<StoreSnapshot> snapshot;
  std::vector<PublishAckData> acks;
  acks.reserve(messages.size());
  const uint64_t window = topic.settings.dedupWindowMs;  // 0: ids are not remembered
  for (MessageData& message : messages) {
    int64_t dedupExpiresMs = 0;
    if (!message.id.empty() && window > 0) {
      // Same id earlier in this batch or in a batch not yet committed, then the index.
      auto pendingId = topic.uncommittedIds.find(message.id);
      if (pendingId != topic.uncommittedIds.end()) {
        acks.push_back({pendingId->second, true});
        continue;
      }
      if (!snapshot) snapshot = ctx_.store.snapshot();
      auto stored = snapshot->dedup(topic.id, message.id);
      if (stored && stored->expiresMs > now) {
        acks.push_back({stored->offset, true});
        continue;
      }
      dedupExpiresMs = saturatingAdd(now, window);
      topic.uncommittedIds.emplace(message.id, topic.nextOffset);
      ticket.ids.push_back(message.id);
    }
    Offset offset = topic.nextOffset++;
    uint64_t size = message.accountedBytes();
    if (topic.tracksBytes()) {
      topic.uncommittedSizes.emplace_back(offset, size);
      topic.bytes += size;
    }
    topic.lastTimestampMs = std::max(now, topic.lastTimestampMs);
    // As stored (relative to the timestamp), so that replay builds the same message.
    int64_t deliverAt = message.delayMs != 0 ? now + message.delayMs : message.deliverAtMs;
    message.delayMs = 0;
    message.deliverAtMs =
        deliverAtOf(topic.lastTimestampMs, storedDelayMs(topic.lastTimestampMs, deliverAt));
    if (!message.hasTtl) message.ttlMs = topic.settings.defaultTtlMs;
    message.hasTtl = false;
    op.messages.push_back(
        AppendedMessage{topic.lastTimestampMs, std::move(message), dedupExpiresMs});
    acks.push_back({offset, false});
  }
  ticket.end = topic.nextOffset;
  return acks;
}

Status TopicLog::checkPublish(std::string_view topic, const std::vector<MessageData>& messages,
                              uint64_t estimate) const {
  return admit(topic, messages, ctx_.findTopic(topic), estimate);
}

TopicLog::Prepared TopicLog::prepare(WriteBatch& batch, std::string topicName,
                                     std::vector<MessageData> messages, uint64_t estimate,
                                     int64_t now) {
  Topic* topic = ctx_.findTopic(topicName);
  if (topic == nullptr) {
    topic = &ctx_.createTopicIn(batch, topicName, TopicConfig{}, now);
    coreLog()->info("topic created topic={} reason=auto-create", topicName);
  }
  AppendOp op{topic->id, topicName, topic->nextOffset, {}};
  Prepared prepared;
  prepared.ticket = AppendTicket{topicName, topic->id, topic->nextOffset, 0, {}, estimate, {}};
  if (!messages.empty()) prepared.ticket.subject = messages.front().subject;
  prepared.acks = assign(*topic, std::move(messages), now, op, prepared.ticket);
  prepared.fresh = op.messages.size();
  for (const AppendedMessage& m : op.messages)
    prepared.freshBytes += m.data.accountedBytes();
  if (prepared.fresh > 0) {
    batch.ops.push_back(std::move(op));
    if (topic->settings.maxMessages != 0 || topic->settings.maxBytes != 0) {
      trimBySize(batch, *topic, *ctx_.store.snapshot());
    }
  }
  ctx_.uncommittedAppendBytes += estimate;
  return prepared;
}

void TopicLog::published(const Prepared& prepared, bool committed) {
  const AppendTicket& ticket = prepared.ticket;
  appended(ticket, committed);
  if (!committed) return;
  if (Topic* topic = ctx_.findTopic(ticket.topic, ticket.id)) {
    topic->publishedTotal += prepared.fresh;
    topic->publishedBytes += prepared.freshBytes;
    topic->publishRate.add(wallClockMs(), prepared.fresh);
    ctx_.metrics.publishedTotal.fetch_add(prepared.fresh, std::memory_order_relaxed);
    if (prepared.fresh > 0) events_.appended(*topic);
  }
}

kj::Promise<Result<std::vector<PublishAckData>>> TopicLog::publish(
    std::string topicName, std::vector<MessageData> messages) {
  using Acks = std::vector<PublishAckData>;
  uint64_t estimate = ctx_.store.estimateAppendBytes(messages);
  Status admitted = checkPublish(topicName, messages, estimate);
  if (!admitted.ok()) return ready<Acks>(admitted);
  WriteBatch batch;
  Prepared prepared =
      prepare(batch, std::move(topicName), std::move(messages), estimate, wallClockMs());
  return ctx_.commit(std::move(batch))
      .then([this,
             prepared = std::move(prepared)](Result<uint64_t> committed) mutable -> Result<Acks> {
        published(prepared, committed.ok());
        if (!committed.ok()) return committed.status();
        return std::move(prepared.acks);
      });
}

AppendTicket TopicLog::appendInternal(WriteBatch& batch, Topic& topic, MessageData message,
                                      int64_t nowMs, const StoreSnapshot& snapshot) {
  AppendTicket ticket{topic.name, topic.id, topic.nextOffset, topic.nextOffset + 1,
                      {},         0,        message.subject};
  Offset offset = topic.nextOffset++;
  uint64_t size = message.accountedBytes();
  if (topic.tracksBytes()) {
    topic.uncommittedSizes.emplace_back(offset, size);
    topic.bytes += size;
  }
  topic.lastTimestampMs = std::max(nowMs, topic.lastTimestampMs);
  message.deliverAtMs = 0;  // A dead letter is deliverable at once,
  message.delayMs = 0;
  message.ttlMs = topic.settings.defaultTtlMs;  // and lives as its new topic says.
  message.hasTtl = false;
  AppendOp op{topic.id, topic.name, offset, {}};
  op.messages.push_back(AppendedMessage{topic.lastTimestampMs, std::move(message), 0});
  batch.ops.push_back(std::move(op));
  trimBySize(batch, topic, snapshot);
  return ticket;
}

void TopicLog::appended(const AppendTicket& ticket, bool committed) {
  ctx_.uncommittedAppendBytes -= std::min(ctx_.uncommittedAppendBytes, ticket.estimatedBytes);
  Topic* topic = ctx_.findTopic(ticket.topic, ticket.id);
  if (topic == nullptr) return;
  for (const std::string& id : ticket.ids) {
    auto it = topic->uncommittedIds.find(id);
    if (it != topic->uncommittedIds.end() && it->second >= ticket.first && it->second < ticket.end)
      topic->uncommittedIds.erase(it);
  }
  if (!committed) return;  // The store has failed for good; nothing more becomes readable.
  // Commits complete in order, but stay monotone regardless.
  Offset fresh = ticket.end > topic->committedNext
                     ? ticket.end - std::max(ticket.first, topic->committedNext)
                     : 0;
  topic->committedNext = std::max(topic->committedNext, ticket.end);
  if (fresh > 0) {
    std::string_view subject = ticket.subject.empty() ? topic->name : ticket.subject;
    for (auto& [name, group] : topic->groups) {
      if (group->filtered() && group->matchedAhead && anySubjectMatches(group->filter, subject))
        *group->matchedAhead += fresh;
    }
  }
  auto& sizes = topic->uncommittedSizes;
  while (!sizes.empty() && sizes.front().first < topic->committedNext)
    sizes.pop_front();
}

uint64_t TopicLog::sizeAt(const Topic& topic, Offset offset, const StoreSnapshot& snapshot) const {
  const auto& sizes = topic.uncommittedSizes;
  if (!sizes.empty() && offset >= sizes.front().first) {
    size_t index = static_cast<size_t>(offset - sizes.front().first);
    return index < sizes.size() ? sizes[index].second : 0;
  }
  auto meta = snapshot.messageMeta(topic.id, offset);
  return meta ? meta->accountedBytes : 0;
}

void TopicLog::trimBySize(WriteBatch& batch, Topic& topic, const StoreSnapshot& snapshot) {
  const TopicConfig& s = topic.settings;
  if (s.maxMessages == 0 && s.maxBytes == 0) return;
  // Retained messages are exactly [firstOffset, nextOffset): appends are contiguous and
  // retention only ever drops from the front.
  Offset below = topic.firstOffset;
  if (s.maxMessages != 0 && topic.nextOffset - topic.firstOffset > s.maxMessages) {
    below = topic.nextOffset - s.maxMessages;
  }
  if (s.maxBytes != 0) {
    uint64_t bytes = topic.bytes;
    for (Offset o = topic.firstOffset; o < below; ++o)
      bytes -= std::min(bytes, sizeAt(topic, o, snapshot));
    while (bytes > s.maxBytes && below < topic.nextOffset)
      bytes -= std::min(bytes, sizeAt(topic, below++, snapshot));
  }
  trimTo(batch, topic, below, snapshot);
}

void TopicLog::trimTo(WriteBatch& batch, Topic& topic, Offset below,
                      const StoreSnapshot& snapshot) {
  below = std::min(below, topic.nextOffset);
  if (below <= topic.firstOffset) return;
  if (topic.tracksBytes()) {
    for (Offset o = topic.firstOffset; o < below; ++o)
      topic.bytes -= std::min(topic.bytes, sizeAt(topic, o, snapshot));
  }
  batch.ops.push_back(TrimOp{topic.id, topic.name, below});
  topic.firstOffset = below;
  events_.trimmed(topic, batch);
}

std::vector<Topic*> TopicLog::captured(std::string_view subject) {
  std::vector<Topic*> topics;
  for (TopicId id : ctx_.router.route(subject)) {
    auto it = ctx_.topicsById.find(id);
    if (it != ctx_.topicsById.end()) topics.push_back(it->second);
  }
  std::sort(topics.begin(), topics.end(),
            [](const Topic* a, const Topic* b) { return a->name < b->name; });
  return topics;
}

Result<std::vector<std::string>> TopicLog::route(std::string_view subject) {
  if (auto problem = validateSubject(subject)) return Status(Code::kInvalidArgument, *problem);
  std::vector<std::string> names;
  for (Topic* topic : captured(subject))
    names.push_back(topic->name);
  return names;
}

kj::Promise<Result<std::vector<RoutedAcks>>> TopicLog::publishSubject(
    std::string subject, std::vector<MessageData> messages) {
  using Routed = std::vector<RoutedAcks>;
  if (Status refused = ctx_.writeRefusal(); !refused.ok()) return ready<Routed>(refused);
  if (auto problem = validateSubject(subject)) {
    return ready<Routed>(Status(Code::kInvalidArgument, *problem));
  }
  Status count = checkBatchCount(messages.size());
  if (!count.ok()) return ready<Routed>(count);
  std::vector<Topic*> topics = captured(subject);
  if (topics.empty()) {
    if (!ctx_.options.autoCreateTopics || ctx_.findTopic(subject) != nullptr) {
      return ready<Routed>(Status(
          Code::kNoRoute, "no topic captures subject " + quoted(subject) +
                              "; nothing was stored (give a topic a matching subject pattern, "
                              "e.g. 'topics subjects TOPIC --add PATTERN')"));
    }
    // --auto-create-topics: as a publish to the topic named by the subject.
    return publish(subject, std::move(messages)).then([subject](auto published) -> Result<Routed> {
      if (!published.ok()) return published.status();
      Routed routed;
      routed.push_back(RoutedAcks{subject, std::move(published.value())});
      return routed;
    });
  }
  const uint64_t estimate = ctx_.store.estimateAppendBytes(messages);
  for (Topic* topic : topics) {
    Status admitted = admit(topic->name, messages, topic, estimate * topics.size());
    if (!admitted.ok()) {
      return ready<Routed>(Status(admitted.code(), "subject " + quoted(subject) +
                                                       " is captured by topic " +
                                                       quoted(topic->name) +
                                                       ", which refuses "
                                                       "the publish: " +
                                                       admitted.message()));
    }
  }
  for (MessageData& message : messages)
    message.subject = subject;
  WriteBatch batch;
  const int64_t now = wallClockMs();
  std::vector<Prepared> prepared;
  prepared.reserve(topics.size());
  for (size_t i = 0; i < topics.size(); ++i) {
    std::vector<MessageData> copy = i + 1 < topics.size() ? messages : std::move(messages);
    if (topics[i]->name == subject) {
      for (MessageData& message : copy)
        message.subject.clear();  // Its own name: stored without it.
    }
    prepared.push_back(prepare(batch, topics[i]->name, std::move(copy), estimate, now));
  }
  return ctx_.commit(std::move(batch))
      .then([this,
             prepared = std::move(prepared)](Result<uint64_t> committed) mutable -> Result<Routed> {
        for (const Prepared& p : prepared)
          published(p, committed.ok());
        if (!committed.ok()) return committed.status();
        Routed routed;
        routed.reserve(prepared.size());
        for (Prepared& p : prepared)
          routed.push_back(RoutedAcks{p.ticket.topic, std::move(p.acks)});
        return routed;
      });
}

Status TopicLog::patternRoom(size_t removing, size_t adding) const {
  size_t held = ctx_.router.patterns() - std::min(ctx_.router.patterns(), removing);
  if (held + adding <= ctx_.limits().maxSubjectPatterns) return Status();
  return Status(Code::kLimitExceeded,
                "the broker holds at most " + std::to_string(ctx_.limits().maxSubjectPatterns) +
                    " subject patterns in all, " + std::to_string(ctx_.router.patterns()) + " now");
}

kj::Promise<Result<Done>> TopicLog::changeSubjects(std::string name, std::vector<std::string> add,
                                                   std::vector<std::string> remove) {
  if (Status refused = ctx_.writeRefusal(); !refused.ok()) return ready<Done>(refused);
  auto found = ctx_.requireTopic(name);
  if (!found.ok()) return ready<Done>(found.status());
  Topic& topic = *found.value();
  if (add.empty() && remove.empty()) {
    return ready<Done>(Status(Code::kInvalidArgument,
                              "nothing to change: give subject patterns to add or to remove"));
  }
  if (add.size() > kMaxPatternsPerTopic || remove.size() > kMaxPatternsPerTopic) {
    return ready<Done>(Status(
        Code::kLimitExceeded,
        "a topic has at most " + std::to_string(kMaxPatternsPerTopic) + " subject patterns, got " +
            std::to_string(std::max(add.size(), remove.size())) + " in one change"));
  }
  std::vector<std::string> subjects = topic.settings.subjects;
  for (const std::string& pattern : remove) {
    auto it = std::find(subjects.begin(), subjects.end(), pattern);
    if (it == subjects.end()) {
      return ready<Done>(Status(
          Code::kInvalidArgument,
          "topic " + quoted(name) + " has no subject pattern " + quoted(pattern) + " to remove"));
    }
    subjects.erase(it);
  }
  for (const std::string& pattern : add) {
    if (auto problem = validateSubjectPattern(pattern)) {
      return ready<Done>(Status(Code::kInvalidArgument, *problem));
    }
    if (std::find(subjects.begin(), subjects.end(), pattern) == subjects.end())
      subjects.push_back(pattern);
  }
  if (subjects.size() > kMaxPatternsPerTopic) {
    return ready<Done>(
        Status(Code::kLimitExceeded, "a topic has at most " + std::to_string(kMaxPatternsPerTopic) +
                                         " subject patterns; topic " + quoted(name) +
                                         " would have " + std::to_string(subjects.size())));
  }
  Status room = patternRoom(topic.settings.subjects.size(), subjects.size());
  if (!room.ok()) return ready<Done>(room);
  // Live at once: publishes after this call route by the new set, and queue behind its op.
  topic.settings.subjects = subjects;
  ctx_.router.set(topic.id, topic.name, subjects);
  WriteBatch batch;
  batch.ops.push_back(SetSubjectsOp{topic.id, name, std::move(subjects)});
  coreLog()->info("topic subjects changed topic={} added={} removed={}", name, add.size(),
                  remove.size());
  return ctx_.commit(std::move(batch)).then([](Result<uint64_t> committed) -> Result<Done> {
    if (!committed.ok()) return committed.status();
    return Done{};
  });
}

kj::Promise<Result<Done>> TopicLog::createTopic(std::string name, RequestedSettings requested) {
  if (Status refused = ctx_.writeRefusal(); !refused.ok()) return ready<Done>(refused);
  if (auto problem = validateTopicName(name)) {
    return ready<Done>(Status(Code::kInvalidArgument, *problem));
  }
  SettingsCheck check = checkSettings(name, requested, ctx_.limits());
  if (check.problem) return ready<Done>(Status(Code::kInvalidArgument, *check.problem));
  if (ctx_.findTopic(name) != nullptr) {
    return ready<Done>(Status(Code::kTopicExists, "topic " + quoted(name) + " already exists"));
  }
  Status patterns = patternRoom(0, check.effective.subjects.size());
  if (!patterns.ok()) return ready<Done>(patterns);
  const std::string& deadLetter = check.effective.deadLetterTopic;
  bool withDeadLetter = !deadLetter.empty() && ctx_.findTopic(deadLetter) == nullptr;
  Status room = topicRoom(withDeadLetter ? 2 : 1);
  if (!room.ok()) return ready<Done>(room);
  int64_t now = wallClockMs();
  WriteBatch batch;
  ctx_.createTopicIn(batch, name, check.effective, now);
  // In the same commit: a topic never exists without its dead-letter topic.
  if (withDeadLetter) ctx_.createTopicIn(batch, deadLetter, TopicConfig{}, now);
  return ctx_.commit(std::move(batch)).then([](Result<uint64_t> committed) -> Result<Done> {
    if (!committed.ok()) return committed.status();
    return Done{};
  });
}

kj::Promise<Result<uint64_t>> TopicLog::deleteTopic(std::string name) {
  if (Status refused = ctx_.writeRefusal(); !refused.ok()) return ready<uint64_t>(refused);
  auto found = ctx_.requireTopic(name);
  if (!found.ok()) return ready<uint64_t>(found.status());
  Topic& topic = *found.value();
  uint64_t removed = topic.nextOffset - topic.firstOffset;
  WriteBatch batch;
  batch.ops.push_back(DeleteTopicOp{topic.id, name});
  // Forget it now: later publishes see topicNotFound at once, and a re-create queues behind the
  // delete in the writer, so the store sees the same order.
  Status why(Code::kTopicNotFound, "topic " + quoted(name) + " was deleted");
  for (auto& [groupName, group] : topic.groups)
    events_.closing(*group, why);
  ctx_.forgetTopic(name);
  coreLog()->info("topic deleted topic={}", name);
  return ctx_.commit(std::move(batch))
      .then([removed](Result<uint64_t> committed) -> Result<uint64_t> {
        if (!committed.ok()) return committed.status();
        return removed;
      });
}

kj::Promise<Result<uint64_t>> TopicLog::purgeTopic(std::string name) {
  if (Status refused = ctx_.writeRefusal(); !refused.ok()) return ready<uint64_t>(refused);
  auto found = ctx_.requireTopic(name);
  if (!found.ok()) return ready<uint64_t>(found.status());
  Topic& topic = *found.value();
  uint64_t removed = topic.nextOffset - topic.firstOffset;
  WriteBatch batch;
  batch.ops.push_back(PurgeTopicOp{topic.id, name});
  topic.firstOffset = topic.nextOffset;
  topic.bytes = 0;
  for (auto& [groupName, group] : topic.groups) {
    // Held deliveries keep their leases so their acks succeed; waiting entries are gone.
    group->position = std::max(group->position, topic.nextOffset);
    group->heldAtStop = 0;
    group->nextDueMs.reset();
    group->matchedAhead.reset();
    batch.ops.push_back(PutGroupOp{group->record()});
  }
  events_.trimmed(topic, batch);
  coreLog()->info("topic purged topic={} removed={}", name, removed);
  return ctx_.commit(std::move(batch))
      .then([removed](Result<uint64_t> committed) -> Result<uint64_t> {
        if (!committed.ok()) return committed.status();
        return removed;
      });
}

}  // namespace sluice::core
