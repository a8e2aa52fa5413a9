#include "core/context.h"

#include <chrono>

#include "core/log.h"
#include "core/names.h"

namespace sluice::core {

int64_t notBeforeMs(uint64_t delayMs) {
  // Rounds the present up to the next millisecond: a deadline compared against the truncated
  // wallClockMs() then never fires before `delayMs` has fully passed.
  using namespace std::chrono;
  int64_t nowUs = duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
  return (nowUs + 999) / 1000 + static_cast<int64_t>(delayMs);
}

Status shuttingDown() {
  return Status(Code::kShuttingDown, "the broker is shutting down");
}

Status noTopic(std::string_view name) {
  return Status(Code::kTopicNotFound, "no topic named " + quoted(name));
}

Status noGroup(std::string_view topic, std::string_view group) {
  return Status(Code::kGroupNotFound,
                "topic " + quoted(topic) + " has no consumer group named " + quoted(group));
}

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

GroupRecord Group::record() const {
  GroupRecord record;
  record.topicId = topic->id;
  record.name = name;
  record.position = position;
  record.createdMs = createdMs;
  record.redelivered = redelivered;
  record.deadLettered = deadLettered;
  record.keyOrdered = keyOrdered;
  record.filter = filter;
  return record;
}

std::unique_ptr<Group> Group::fromRecord(Topic& topic, const GroupRecord& record) {
  auto group = std::make_unique<Group>();
  group->topic = &topic;
  group->name = record.name;
  group->createdMs = record.createdMs;
  group->position = record.position;
  group->redelivered = record.redelivered;
  group->deadLettered = record.deadLettered;
  group->keyOrdered = record.keyOrdered;
  group->filter = record.filter;
  return group;
}

Topic* Context::findTopic(std::string_view name) {
  auto it = topics.find(name);
  return it == topics.end() ? nullptr : it->second.get();
}

Topic* Context::findTopic(std::string_view name, TopicId id) {
  Topic* topic = findTopic(name);
  return topic != nullptr && topic->id == id ? topic : nullptr;
}

Group* Context::findGroup(std::string_view topicName, std::string_view groupName) {
  Topic* topic = findTopic(topicName);
  if (topic == nullptr) return nullptr;
  auto it = topic->groups.find(groupName);
  return it == topic->groups.end() ? nullptr : it->second.get();
}

Group* Context::findGroup(std::string_view topicName, TopicId id, std::string_view groupName) {
  Topic* topic = findTopic(topicName, id);
  if (topic == nullptr) return nullptr;
  auto it = topic->groups.find(groupName);
  return it == topic->groups.end() ? nullptr : it->second.get();
}

Result<Topic*> Context::requireTopic(std::string_view name) {
  if (auto problem = validateTopicName(name)) return Status(Code::kInvalidArgument, *problem);
  if (Topic* topic = findTopic(name)) return topic;
  return noTopic(name);
}

Result<Group*> Context::requireGroup(std::string_view topicName, std::string_view groupName) {
  auto topic = requireTopic(topicName);
  if (!topic.ok()) return topic.status();
  if (auto problem = validateGroupName(groupName)) return Status(Code::kInvalidArgument, *problem);
  Group* group = findGroup(topicName, groupName);
  if (group == nullptr) return noGroup(topicName, groupName);
  return group;
}

Status Context::writeRefusal() const {
  if (stopped) return shuttingDown();
  return store.admitWrite();
}

kj::Promise<Result<uint64_t>> Context::commit(WriteBatch batch) {
  ++awaitingCommit;
  return store.commit(std::move(batch)).attach(kj::defer([this]() { --awaitingCommit; }));
}

Topic& Context::adoptTopic(const TopicRecord& record) {
  auto topic = std::make_unique<Topic>();
  topic->name = record.name;
  topic->id = record.id;
  topic->settings = record.settings;
  topic->createdMs = record.createdMs;
  topic->nextOffset = record.nextOffset;
  topic->committedNext = record.nextOffset;
  topic->firstOffset = record.firstOffset;
  topic->lastTimestampMs = record.lastTimestampMs;
  topic->bytes = record.bytes;
  Topic& ref = *topic;
  topics[record.name] = std::move(topic);
  topicsById[record.id] = &ref;
  router.set(record.id, record.name, record.settings.subjects);
  return ref;
}

void Context::forgetTopic(std::string_view name) {
  auto it = topics.find(name);
  if (it == topics.end()) return;
  router.remove(it->second->id);
  topicsById.erase(it->second->id);
  topics.erase(it);
}

Topic& Context::createTopicIn(WriteBatch& batch, std::string_view name, const TopicConfig& settings,
                              int64_t nowMs) {
  CreateTopicOp op{nextTopicId++, std::string(name), settings, nowMs};
  TopicRecord record;
  record.name = op.name;
  record.id = op.id;
  record.settings = settings;
  record.createdMs = nowMs;
  batch.ops.push_back(std::move(op));
  coreLog()->info("topic created topic={} id={}", record.name, record.id);
  return adoptTopic(record);
}

}  // namespace sluice::core
