#include "core/broker.h"

#include <chrono>

#include <spdlog/spdlog.h>

#include "core/log.h"
#include "core/names.h"

namespace sluice::core {

int64_t wallClockMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

int64_t notBeforeMs(uint64_t delayMs) {
  // Rounds the present up to the next millisecond: a deadline compared against the truncated
  // wallClockMs() then never fires before `delayMs` has fully passed.
  using namespace std::chrono;
  int64_t nowUs = duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
  return (nowUs + 999) / 1000 + static_cast<int64_t>(delayMs);
}

namespace {

Status noTopic(std::string_view name) {
  return Status(Code::kTopicNotFound, "no topic named " + quoted(name));
}

Status noGroup(std::string_view topic, std::string_view group) {
  return Status(Code::kGroupNotFound,
                "topic " + quoted(topic) + " has no consumer group named " + quoted(group));
}

template <typename T>
kj::Promise<Result<T>> ready(Result<T> result) {
  return kj::Promise<Result<T>>(std::move(result));
}

}  // namespace

Broker::Broker(store::Env& env, store::Writer& writer, kj::Timer& timer, Metrics& metrics,
               BrokerOptions options)
    : env_(env),
      writer_(writer),
      timer_(timer),
      metrics_(metrics),
      options_(std::move(options)),
      tasks_(kj::heap<kj::TaskSet>(static_cast<kj::TaskSet::ErrorHandler&>(*this))) {}

Broker::~Broker() = default;

void Broker::taskFailed(kj::Exception&& exception) {
  coreLog()->error("background task failed: {}", exception.getDescription().cStr());
}

void Broker::start() {
  startedMs_ = wallClockMs();
  Snapshot snapshot = store::ReadTxn(env_).snapshot();
  std::map<TopicId, Topic*> byId;
  for (const TopicRecord& record : snapshot.topics)
    byId[record.id] = &adoptTopic(record);
  for (const GroupRecord& record : snapshot.groups) {
    auto topic = byId.find(record.topicId);
    if (topic == byId.end()) continue;  // `sluiced --check` reports orphans.
    auto group = std::make_unique<Group>();
    group->topic = topic->second;
    group->name = record.name;
    group->createdMs = record.createdMs;
    group->position = record.position;
    group->redelivered = record.redelivered;
    group->deadLettered = record.deadLettered;
    topic->second->groups.emplace(record.name, std::move(group));
  }
  uint64_t pendingLoaded = 0;
  for (const PendingRecord& record : snapshot.pending) {
    auto topic = byId.find(record.topicId);
    if (topic == byId.end()) continue;
    auto group = topic->second->groups.find(record.group);
    if (group == topic->second->groups.end()) continue;
    Pending pending;
    pending.deliveries = record.deliveries;
    pending.visibleAtMs = record.visibleAtMs;
    pending.cause = RedeliveryCause::kRestart;
    group->second->pending.emplace(record.offset, pending);
    ++pendingLoaded;
  }
  coreLog()->info("loaded topics={} groups={} pending={}", snapshot.topics.size(),
                  snapshot.groups.size(), pendingLoaded);
  ticker_ = tickLoop().eagerlyEvaluate([](kj::Exception&& e) {
    coreLog()->error("periodic work stopped: {}", e.getDescription().cStr());
  });
}

void Broker::shutdown() {
  if (stopped_) return;
  stopped_ = true;
  ticker_ = nullptr;
  Status why(Code::kShuttingDown, "the broker is shutting down");
  for (auto& [name, topic] : topics_) {
    for (auto& [groupName, group] : topic->groups)
      closeConsumers(*group, why);
  }
}

Topic* Broker::findTopic(std::string_view name) {
  auto it = topics_.find(name);
  return it == topics_.end() ? nullptr : it->second.get();
}

Status Broker::topicRoom(uint32_t adding) const {
  if (topics_.size() + topicsBeingCreated_ + adding <= options_.limits.maxTopics) return Status();
  return Status(Code::kLimitExceeded, "the broker holds at most " +
                                          std::to_string(options_.limits.maxTopics) + " topics");
}

Result<Topic*> Broker::requireTopic(std::string_view name) {
  if (auto problem = validateTopicName(name)) return Status(Code::kInvalidArgument, *problem);
  if (Topic* topic = findTopic(name)) return topic;
  return noTopic(name);
}

Group* Broker::findGroup(std::string_view topicName, std::string_view groupName) {
  Topic* topic = findTopic(topicName);
  if (topic == nullptr) return nullptr;
  auto it = topic->groups.find(std::string(groupName));
  return it == topic->groups.end() ? nullptr : it->second.get();
}

Topic& Broker::adoptTopic(const TopicRecord& record) {
  auto topic = std::make_unique<Topic>();
  topic->name = record.name;
  topic->id = record.id;
  topic->settings = record.settings;
  topic->createdMs = record.createdMs;
  topic->nextOffset = record.nextOffset;
  topic->firstOffset = record.firstOffset;
  Topic& ref = *topic;
  topics_[record.name] = std::move(topic);
  return ref;
}

void Broker::updateTopicStats(Topic& topic, const TopicRecord& record) {
  // Completions of different commits may interleave; never move backwards.
  if (record.id != topic.id || record.nextOffset < topic.nextOffset) return;
  topic.nextOffset = record.nextOffset;
  topic.firstOffset = std::max(topic.firstOffset, record.firstOffset);
}

GroupRecord Broker::recordOf(const Group& group) const {
  GroupRecord record;
  record.topicId = group.topic->id;
  record.name = group.name;
  record.position = group.position;
  record.createdMs = group.createdMs;
  record.redelivered = group.redelivered;
  record.deadLettered = group.deadLettered;
  return record;
}

// Publishing -----------------------------------------------------------------------------------

Status Broker::checkBatchCount(size_t count) const {
  if (count == 0)
    return Status(Code::kInvalidArgument, "a publish needs at least 1 message, got 0");
  if (count > options_.limits.maxBatchMessages) {
    return Status(Code::kLimitExceeded, "a publish may carry at most " +
                                            std::to_string(options_.limits.maxBatchMessages) +
                                            " messages, got " + std::to_string(count));
  }
  return Status();
}

kj::Promise<Result<std::vector<PublishAckData>>> Broker::publish(
    std::string topicName, std::vector<MessageData> messages) {
  using Acks = std::vector<PublishAckData>;
  if (stopped_) return ready<Acks>(Status(Code::kShuttingDown, "the broker is shutting down"));
  if (auto problem = validateTopicName(topicName)) {
    return ready<Acks>(Status(Code::kInvalidArgument, *problem));
  }
  const Limits& limits = options_.limits;
  Status count = checkBatchCount(messages.size());
  if (!count.ok()) return ready<Acks>(count);
  Topic* topic = findTopic(topicName);
  if (topic == nullptr && !options_.autoCreateTopics) return ready<Acks>(noTopic(topicName));
  if (topic == nullptr) {
    Status room = topicRoom(1);
    if (!room.ok()) return ready<Acks>(room);
  }
  uint32_t maxSize = topic != nullptr ? topic->settings.maxMessageSize : kDefaultMaxMessageSize;
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
      return ready<Acks>(Status(Code::kInvalidArgument, which() + ": " + *problem));
    }
    if (auto problem = validateHeaders(message.headers)) {
      return ready<Acks>(Status(Code::kInvalidArgument, which() + ": " + *problem));
    }
    uint64_t size = message.accountedBytes();
    if (size > maxSize) {
      return ready<Acks>(Status(Code::kMessageTooLarge,
                                which() + " is " + std::to_string(size) + " bytes; topic " +
                                    quoted(topicName) + " allows at most " +
                                    std::to_string(maxSize) +
                                    " bytes (payload, key and headers); nothing was stored"));
    }
    total += size;
  }
  if (total > limits.maxBatchBytes) {
    return ready<Acks>(Status(Code::kLimitExceeded, "a publish may carry at most " +
                                                        std::to_string(limits.maxBatchBytes) +
                                                        " bytes, got " + std::to_string(total)));
  }

  struct Appended {
    Acks acks;
    TopicRecord record;
  };
  std::vector<uint64_t> sizes;
  sizes.reserve(messages.size());
  for (const MessageData& message : messages)
    sizes.push_back(message.accountedBytes());
  bool mayCreate = topic == nullptr;
  // Counted until the commit answers, or until a cancelled call drops it.
  uint32_t creating = mayCreate ? 1 : 0;
  topicsBeingCreated_ += creating;
  return commit<Appended>([topicName, messages = std::move(messages),
                           mayCreate](store::WriteTxn& txn) -> Result<Appended> {
           if (mayCreate && !txn.topic(topicName)) {
             auto created = txn.createTopic(topicName, TopicSettings{});
             if (!created.ok()) return created.status();
           }
           auto acks = txn.append(topicName, messages);
           if (!acks.ok()) return acks.status();
           auto record = txn.topic(topicName);
           if (!record) return noTopic(topicName);
           return Appended{std::move(acks).value(), std::move(*record)};
         })
      .attach(kj::defer([this, creating]() { topicsBeingCreated_ -= creating; }))
      .then([this, topicName, sizes = std::move(sizes)](Result<Appended> appended) -> Result<Acks> {
        if (!appended.ok()) return appended.status();
        const TopicRecord& record = appended.value().record;
        Topic* topic = findTopic(topicName);
        if (topic == nullptr) {
          topic = &adoptTopic(record);
          coreLog()->info("topic created topic={} reason=auto-create", topicName);
        }
        if (topic->id == record.id) {
          uint64_t fresh = 0;
          uint64_t freshBytes = 0;
          const Acks& acks = appended.value().acks;
          for (size_t i = 0; i < acks.size(); ++i) {
            if (acks[i].duplicate) continue;
            ++fresh;
            freshBytes += sizes[i];
          }
          topic->publishedBytes += freshBytes;
          updateTopicStats(*topic, record);
          topic->publishedTotal += fresh;
          topic->publishRate.add(wallClockMs(), fresh);
          metrics_.publishedTotal.fetch_add(fresh, std::memory_order_relaxed);
          for (auto& [name, group] : topic->groups)
            schedulePump(*group);
        }
        return std::move(appended.value().acks);
      });
}

// Topics ---------------------------------------------------------------------------------------

kj::Promise<Result<TopicView>> Broker::createTopic(std::string name, RequestedSettings requested) {
  if (stopped_) return ready<TopicView>(Status(Code::kShuttingDown, "the broker is shutting down"));
  if (auto problem = validateTopicName(name)) {
    return ready<TopicView>(Status(Code::kInvalidArgument, *problem));
  }
  SettingsCheck check = checkSettings(name, requested, options_.limits);
  if (check.problem) return ready<TopicView>(Status(Code::kInvalidArgument, *check.problem));
  if (findTopic(name) != nullptr) {
    return ready<TopicView>(
        Status(Code::kTopicExists, "topic " + quoted(name) + " already exists"));
  }
  TopicSettings settings = check.effective;
  const std::string& deadLetter = settings.deadLetterTopic;
  uint32_t adding = deadLetter.empty() || findTopic(deadLetter) != nullptr ? 1 : 2;
  Status room = topicRoom(adding);
  if (!room.ok()) return ready<TopicView>(room);
  topicsBeingCreated_ += adding;  // Until the commit answers, or a cancelled call drops it.
  return commit<std::vector<TopicRecord>>(
             [name, settings](store::WriteTxn& txn) -> Result<std::vector<TopicRecord>> {
               std::vector<TopicRecord> created;
               auto topic = txn.createTopic(name, settings);
               if (!topic.ok()) return topic.status();
               created.push_back(std::move(topic).value());
               const std::string& dlq = settings.deadLetterTopic;
               if (!dlq.empty() && !txn.topic(dlq)) {
                 auto dead = txn.createTopic(dlq, TopicSettings{});
                 if (!dead.ok()) return dead.status();
                 created.push_back(std::move(dead).value());
               }
               return created;
             })
      .attach(kj::defer([this, adding]() { topicsBeingCreated_ -= adding; }))
      .then([this, name](Result<std::vector<TopicRecord>> created) -> Result<TopicView> {
        if (!created.ok()) return created.status();
        for (const TopicRecord& record : created.value()) {
          if (findTopic(record.name) == nullptr) {
            adoptTopic(record);
            coreLog()->info("topic created topic={} id={}", record.name, record.id);
          }
        }
        return describeTopic(name);
      });
}

Result<std::vector<TopicView>> Broker::listTopics() {
  store::ReadTxn read(env_);
  int64_t now = wallClockMs();
  std::vector<TopicView> views;
  views.reserve(topics_.size());
  for (const auto& [name, topic] : topics_)
    views.push_back(viewOf(*topic, read, now));
  return views;
}

Result<TopicView> Broker::describeTopic(std::string_view name) {
  auto topic = requireTopic(name);
  if (!topic.ok()) return topic.status();
  store::ReadTxn read(env_);
  return viewOf(*topic.value(), read, wallClockMs());
}

void Broker::closeConsumers(Group& group, const Status& why) {
  for (Consumer* consumer : group.consumers) {
    consumer->group = nullptr;
    consumer->inFlight = 0;
    consumer->sink->closed(why);
  }
  group.consumers.clear();
  for (auto& [offset, pending] : group.pending)
    pending.owner = nullptr;
}

void Broker::removeTopicFromMemory(Topic& topic, const Status& why) {
  for (auto& [name, group] : topic.groups)
    closeConsumers(*group, why);
  topics_.erase(topic.name);
}

kj::Promise<Result<uint64_t>> Broker::deleteTopic(std::string name) {
  auto topic = requireTopic(name);
  if (!topic.ok()) return ready<uint64_t>(topic.status());
  // Forget it now: later publishes see topicNotFound at once, and a re-create queues behind the
  // delete in the writer, so the store sees the same order.
  removeTopicFromMemory(*topic.value(),
                        Status(Code::kTopicNotFound, "topic " + quoted(name) + " was deleted"));
  coreLog()->info("topic deleted topic={}", name);
  return commit<uint64_t>([name](store::WriteTxn& txn) { return txn.deleteTopic(name); });
}

kj::Promise<Result<uint64_t>> Broker::purgeTopic(std::string name) {
  auto topic = requireTopic(name);
  if (!topic.ok()) return ready<uint64_t>(topic.status());
  TopicId id = topic.value()->id;
  return commit<uint64_t>([name](store::WriteTxn& txn) { return txn.purgeTopic(name); })
      .then([this, name, id](Result<uint64_t> removed) -> Result<uint64_t> {
        if (!removed.ok()) return removed;
        Topic* topic = findTopic(name);
        if (topic == nullptr || topic->id != id) return removed;
        topic->firstOffset = topic->nextOffset;
        for (auto& [groupName, group] : topic->groups) {
          group->position = std::max(group->position, topic->nextOffset);
          // In-flight deliveries stay pending so their acks succeed; waiting ones are gone.
          for (auto it = group->pending.begin(); it != group->pending.end();) {
            it = it->second.owner == nullptr ? group->pending.erase(it) : std::next(it);
          }
        }
        coreLog()->info("topic purged topic={} removed={}", name, removed.value());
        return removed;
      });
}

// Groups ---------------------------------------------------------------------------------------

Result<Offset> Broker::resolveStart(const Topic& topic, const StartAt& start) {
  switch (start.kind) {
    case StartAt::Kind::kEarliest:
      return topic.firstOffset;
    case StartAt::Kind::kLatest:
      return topic.nextOffset;
    case StartAt::Kind::kOffset:
      if (start.offset == 0) {
        return Status(Code::kInvalidArgument, "start offset must be at least 1, got 0");
      }
      if (start.offset > topic.nextOffset) {
        return Status(Code::kInvalidArgument, "start offset " + std::to_string(start.offset) +
                                                  " is past the end of topic " +
                                                  quoted(topic.name) + " (next offset " +
                                                  std::to_string(topic.nextOffset) + ")");
      }
      return std::max(start.offset, topic.firstOffset);
    case StartAt::Kind::kTimestamp: {
      store::ReadTxn read(env_);
      auto record = read.topic(topic.name);
      if (!record) return topic.nextOffset;
      return read.offsetAtTime(*record, start.timestampMs);
    }
  }
  return Status(Code::kInvalidArgument, "unknown start position");
}

Result<Group*> Broker::ensureGroup(Topic& topic, std::string_view groupName, const StartAt& start,
                                   bool* created) {
  *created = false;
  if (auto problem = validateGroupName(groupName)) {
    return Status(Code::kInvalidArgument, *problem);
  }
  auto existing = topic.groups.find(std::string(groupName));
  if (existing != topic.groups.end()) return existing->second.get();
  if (topic.groups.size() >= options_.limits.maxGroupsPerTopic) {
    return Status(Code::kLimitExceeded, "a topic holds at most " +
                                            std::to_string(options_.limits.maxGroupsPerTopic) +
                                            " consumer groups");
  }
  auto position = resolveStart(topic, start);
  if (!position.ok()) return position.status();
  auto group = std::make_unique<Group>();
  group->topic = &topic;
  group->name = std::string(groupName);
  group->createdMs = wallClockMs();
  group->position = position.value();
  Group* ref = group.get();
  topic.groups.emplace(group->name, std::move(group));
  *created = true;
  coreLog()->info("group created topic={} group={} position={}", topic.name, groupName,
                  ref->position);
  return ref;
}

kj::Promise<Result<GroupView>> Broker::createGroup(std::string topicName, std::string groupName,
                                                   StartAt start) {
  auto topic = requireTopic(topicName);
  if (!topic.ok()) return ready<GroupView>(topic.status());
  bool created = false;
  auto group = ensureGroup(*topic.value(), groupName, start, &created);
  if (!group.ok()) return ready<GroupView>(group.status());
  GroupRecord record = recordOf(*group.value());
  return commit<Done>([topicName, record](store::WriteTxn& txn) -> Result<Done> {
           auto topic = txn.topic(topicName);
           if (!topic || topic->id != record.topicId) return noTopic(topicName);
           if (!txn.group(record.topicId, record.name)) txn.putGroup(record);
           return Done{};
         })
      .then([this, topicName, groupName](Result<Done> done) -> Result<GroupView> {
        if (!done.ok()) return done.status();
        return describeGroup(topicName, groupName);
      });
}

Result<std::vector<GroupView>> Broker::listGroups(std::string_view topicName) {
  auto topic = requireTopic(topicName);
  if (!topic.ok()) return topic.status();
  store::ReadTxn read(env_);
  int64_t now = wallClockMs();
  std::vector<GroupView> views;
  for (const auto& [name, group] : topic.value()->groups)
    views.push_back(viewOf(*group, &read, now));
  return views;
}

Result<GroupView> Broker::describeGroup(std::string_view topicName, std::string_view groupName) {
  auto topic = requireTopic(topicName);
  if (!topic.ok()) return topic.status();
  if (auto problem = validateGroupName(groupName)) return Status(Code::kInvalidArgument, *problem);
  Group* group = findGroup(topicName, groupName);
  if (group == nullptr) return noGroup(topicName, groupName);
  store::ReadTxn read(env_);
  return viewOf(*group, &read, wallClockMs());
}

kj::Promise<Result<GroupView>> Broker::resetGroup(std::string topicName, std::string groupName,
                                                  StartAt to) {
  auto topic = requireTopic(topicName);
  if (!topic.ok()) return ready<GroupView>(topic.status());
  if (auto problem = validateGroupName(groupName)) {
    return ready<GroupView>(Status(Code::kInvalidArgument, *problem));
  }
  Group* group = findGroup(topicName, groupName);
  if (group == nullptr) return ready<GroupView>(noGroup(topicName, groupName));
  if (!group->consumers.empty()) {
    return ready<GroupView>(Status(
        Code::kGroupBusy, "group " + quoted(groupName) + " has " +
                              std::to_string(group->consumers.size()) +
                              " connected consumers; stop them before resetting its position"));
  }
  auto position = resolveStart(*topic.value(), to);
  if (!position.ok()) return ready<GroupView>(position.status());
  group->position = position.value();
  group->pending.clear();
  GroupRecord record = recordOf(*group);
  coreLog()->info("group reset topic={} group={} position={}", topicName, groupName,
                  record.position);
  return commit<Done>([record](store::WriteTxn& txn) -> Result<Done> {
           txn.clearPending(record.topicId, record.name);
           txn.putGroup(record);
           return Done{};
         })
      .then([this, topicName, groupName](Result<Done> done) -> Result<GroupView> {
        if (!done.ok()) return done.status();
        return describeGroup(topicName, groupName);
      });
}

kj::Promise<Result<uint64_t>> Broker::deleteGroup(std::string topicName, std::string groupName) {
  auto topic = requireTopic(topicName);
  if (!topic.ok()) return ready<uint64_t>(topic.status());
  if (auto problem = validateGroupName(groupName)) {
    return ready<uint64_t>(Status(Code::kInvalidArgument, *problem));
  }
  Group* group = findGroup(topicName, groupName);
  if (group == nullptr) return ready<uint64_t>(noGroup(topicName, groupName));
  if (!group->consumers.empty()) {
    return ready<uint64_t>(
        Status(Code::kGroupBusy, "group " + quoted(groupName) + " has " +
                                     std::to_string(group->consumers.size()) +
                                     " connected consumers; stop them before deleting it"));
  }
  TopicId id = topic.value()->id;
  topic.value()->groups.erase(groupName);
  coreLog()->info("group deleted topic={} group={}", topicName, groupName);
  return commit<uint64_t>([id, groupName](store::WriteTxn& txn) -> Result<uint64_t> {
    return txn.deleteGroup(id, groupName);
  });
}

Result<std::vector<StoredMessageData>> Broker::peek(std::string_view topicName, Offset from,
                                                    uint32_t count) {
  auto topic = requireTopic(topicName);
  if (!topic.ok()) return topic.status();
  if (count == 0 || count > options_.limits.maxPeekCount) {
    return Status(Code::kInvalidArgument, "peek count must be 1-" +
                                              std::to_string(options_.limits.maxPeekCount) +
                                              ", got " + std::to_string(count));
  }
  store::ReadTxn read(env_);
  auto messages = read.readMessages(topic.value()->id, std::max<Offset>(from, 1), count,
                                    options_.limits.maxDeliveryBatchBytes);
  while (!messages.empty() && messages.back().offset >= topic.value()->nextOffset) {
    messages.pop_back();  // Committed, but its publish is not answered yet.
  }
  return messages;
}

StatsView Broker::stats() {
  StatsView view;
  int64_t now = wallClockMs();
  view.uptimeMs = now - startedMs_;
  store::ReadTxn read(env_);
  for (const TopicRecord& record : read.topics()) {
    ++view.topics;
    view.messages += record.messages;
    view.bytes += record.bytes;
  }
  for (const auto& [name, topic] : topics_)
    view.publishRate += topic->publishRate.perSecond(now);
  view.storageUsed = env_.usedBytes();
  view.storageLimit = env_.options().maxStorageBytes;
  view.connections = metrics_.connections.load(std::memory_order_relaxed);
  view.consumers = consumers_.size();
  view.publishedTotal = metrics_.publishedTotal.load(std::memory_order_relaxed);
  view.deliveredTotal = metrics_.deliveredTotal.load(std::memory_order_relaxed);
  view.deliveryRate = deliveryRate_.perSecond(now);
  view.commits = writer_.stats().commits;
  return view;
}

Result<std::unique_ptr<store::CompactCopy>> Broker::startBackup() {
  auto copy = store::CompactCopy::start(env_);
  if (copy.ok()) coreLog()->info("backup started used={}", env_.usedBytes());
  return copy;
}

// Views ----------------------------------------------------------------------------------------

GroupView Broker::viewOf(const Group& group, const store::ReadTxn* read, int64_t nowMs) const {
  const Topic& topic = *group.topic;
  GroupView view;
  view.topic = topic.name;
  view.name = group.name;
  view.position = group.position;
  view.ackFloor = std::max(group.ackFloor(), topic.firstOffset);
  view.pending = group.pending.size();
  Offset from = std::max(group.position, topic.firstOffset);
  view.lagMessages = topic.nextOffset > from ? topic.nextOffset - from : 0;
  if (view.lagMessages > 0 && read != nullptr) {
    if (auto ts = read->timestampAtOrAfter(topic.id, from))
      view.lagMs = std::max<int64_t>(0, nowMs - *ts);
  }
  view.delivered = group.delivered;
  view.acked = group.acked;
  view.nacked = group.nacked;
  view.redelivered = group.redelivered;
  view.deadLettered = group.deadLettered;
  view.createdMs = group.createdMs;
  for (const Consumer* consumer : group.consumers) {
    view.consumers.push_back(ConsumerView{consumer->id, consumer->peer, consumer->prefetch,
                                          consumer->inFlight, consumer->connectedMs});
  }
  return view;
}

TopicView Broker::viewOf(const Topic& topic, const store::ReadTxn& read, int64_t nowMs) const {
  TopicView view;
  view.name = topic.name;
  view.settings = topic.settings;
  view.createdMs = topic.createdMs;
  view.publishedTotal = topic.publishedTotal;
  view.publishedBytes = topic.publishedBytes;
  view.publishRate = topic.publishRate.perSecond(nowMs);
  view.lastOffset = topic.nextOffset - 1;
  if (auto record = read.topic(topic.name); record && record->id == topic.id) {
    view.messages = record->messages;
    view.bytes = record->bytes;
    view.firstOffset = record->messages > 0 ? record->firstOffset : 0;
    view.lastOffset = record->nextOffset - 1;
  }
  for (const auto& [name, group] : topic.groups)
    view.groups.push_back(viewOf(*group, &read, nowMs));
  return view;
}

}  // namespace sluice::core
