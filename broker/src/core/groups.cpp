#include "core/groups.h"

#include <algorithm>

#include "core/log.h"
#include "core/names.h"
#include "core/subjects.h"

namespace sluice::core {
namespace {

template <typename T>
kj::Promise<Result<T>> ready(Result<T> result) {
  return kj::Promise<Result<T>>(std::move(result));
}

// Whether two filters hold the same patterns, in any order.
bool samePatterns(std::vector<std::string> a, std::vector<std::string> b) {
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  return a == b;
}

std::string describePatterns(const std::vector<std::string>& patterns) {
  std::string out;
  for (const std::string& pattern : patterns)
    out += (out.empty() ? "" : ", ") + quoted(pattern);
  return out;
}

constexpr auto done = [](Result<uint64_t> committed) -> Result<Done> {
  if (!committed.ok()) return committed.status();
  return Done{};
};

}  // namespace

Result<Offset> Groups::resolveStart(const Topic& topic, const StartAt& start) {
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
    case StartAt::Kind::kTimestamp:
      // Messages not yet committed were stamped now, so they are at or after any past time.
      return ctx_.store.snapshot()->offsetAtTime(topic.id, topic.firstOffset, topic.committedNext,
                                                 start.timestampMs);
  }
  return Status(Code::kInvalidArgument, "unknown start position");
}

Status Groups::busy(const Group& group, const char* action) const {
  if (group.consumers.empty()) return Status();
  return Status(Code::kGroupBusy, "group " + quoted(group.name) + " has " +
                                      std::to_string(group.consumers.size()) +
                                      " connected consumers; stop them before " + action);
}

Result<Group*> Groups::ensure(WriteBatch& batch, Topic& topic, std::string_view groupName,
                              const StartAt& start, bool keyOrdered,
                              const std::vector<std::string>& filter) {
  if (auto problem = validateGroupName(groupName)) {
    return Status(Code::kInvalidArgument, *problem);
  }
  if (auto problem = validateSubjectPatterns(filter, kMaxPatternsPerGroup)) {
    return Status(Code::kInvalidArgument, "group filter: " + *problem);
  }
  auto existing = topic.groups.find(groupName);
  if (existing != topic.groups.end()) {
    // As for ordering: joining a filtered group without naming its filter is fine.
    if (!filter.empty() && !samePatterns(filter, existing->second->filter)) {
      return Status(
          Code::kInvalidArgument,
          "group " + quoted(groupName) + " of topic " + quoted(topic.name) +
              (existing->second->filtered() ? " has another subject filter (" +
                                                  describePatterns(existing->second->filter) + ")"
                                            : " exists without a subject filter") +
              "; a group's filter is chosen when it is created (delete the group, or "
              "use another name)");
    }
    // The mode is the group's: joining a key-ordered group without asking is fine.
    if (keyOrdered && !existing->second->keyOrdered) {
      return Status(Code::kInvalidArgument,
                    "group " + quoted(groupName) + " of topic " + quoted(topic.name) +
                        " exists without key ordering; a group's ordering is chosen when it is "
                        "created (delete the group, or use another name)");
    }
    return existing->second.get();
  }
  if (topic.groups.size() >= ctx_.limits().maxGroupsPerTopic) {
    return Status(Code::kLimitExceeded, "a topic holds at most " +
                                            std::to_string(ctx_.limits().maxGroupsPerTopic) +
                                            " consumer groups");
  }
  auto position = resolveStart(topic, start);
  if (!position.ok()) return position.status();
  GroupRecord record;
  record.topicId = topic.id;
  record.name = std::string(groupName);
  record.createdMs = wallClockMs();
  record.position = position.value();
  record.keyOrdered = keyOrdered;
  record.filter = filter;
  auto group = Group::fromRecord(topic, record);
  Group* ref = group.get();
  topic.groups.emplace(record.name, std::move(group));
  batch.ops.push_back(PutGroupOp{record});
  coreLog()->info("group created topic={} group={} position={} ordering={} filter={}", topic.name,
                  groupName, record.position, keyOrdered ? "key" : "none",
                  filter.empty() ? std::string("none") : describePatterns(filter));
  return ref;
}

kj::Promise<Result<Done>> Groups::create(std::string topicName, std::string groupName,
                                         StartAt start, bool keyOrdered,
                                         std::vector<std::string> filter) {
  auto topic = ctx_.requireTopic(topicName);
  if (!topic.ok()) return ready<Done>(topic.status());
  WriteBatch batch;
  auto group = ensure(batch, *topic.value(), groupName, start, keyOrdered, filter);
  if (!group.ok()) return ready<Done>(group.status());
  // An existing group commits nothing but still answers after what is queued before it.
  return ctx_.commit(std::move(batch)).then(done);
}

kj::Promise<Result<Done>> Groups::reset(std::string topicName, std::string groupName, StartAt to) {
  auto found = ctx_.requireGroup(topicName, groupName);
  if (!found.ok()) return ready<Done>(found.status());
  Group& group = *found.value();
  Status refused = busy(group, "resetting its position");
  if (!refused.ok()) return ready<Done>(refused);
  auto position = resolveStart(*group.topic, to);
  if (!position.ok()) return ready<Done>(position.status());
  group.position = position.value();
  group.leases.clear();
  group.releasedLeases.clear();
  group.forgetKeys();
  group.heldAtStop = 0;
  group.nextDueMs.reset();
  group.matchedAhead.reset();
  WriteBatch batch;
  batch.ops.push_back(ClearPendingOp{group.topic->id, group.name});
  batch.ops.push_back(PutGroupOp{group.record()});
  coreLog()->info("group reset topic={} group={} position={}", topicName, groupName,
                  group.position);
  return ctx_.commit(std::move(batch)).then(done);
}

kj::Promise<Result<uint64_t>> Groups::remove(std::string topicName, std::string groupName) {
  auto found = ctx_.requireGroup(topicName, groupName);
  if (!found.ok()) return ready<uint64_t>(found.status());
  Group& group = *found.value();
  Status refused = busy(group, "deleting it");
  if (!refused.ok()) return ready<uint64_t>(refused);
  Topic& topic = *group.topic;
  auto stored = ctx_.store.snapshot()->group(topic.id, groupName);
  uint64_t dropped = stored ? stored->pending : 0;
  WriteBatch batch;
  batch.ops.push_back(DeleteGroupOp{topic.id, groupName});
  topic.groups.erase(groupName);
  coreLog()->info("group deleted topic={} group={}", topicName, groupName);
  return ctx_.commit(std::move(batch))
      .then([dropped](Result<uint64_t> committed) -> Result<uint64_t> {
        if (!committed.ok()) return committed.status();
        return dropped;
      });
}

}  // namespace sluice::core
