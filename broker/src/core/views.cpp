#include "core/views.h"

#include <algorithm>
#include <limits>

#include "core/subjects.h"

namespace sluice::core {

namespace {

// Heads read, at most, to find a filtered group's oldest matching message for its lag in time
// (its count is kept as messages commit and are delivered; see Group::matchedAhead).
constexpr size_t kLagScanHeads = 65536;

}  // namespace

void Views::filteredLag(const Group& group, const StoreSnapshot& snapshot, Offset from,
                        int64_t nowMs, GroupView& view) const {
  const Topic& topic = *group.topic;
  const Offset end = topic.committedNext;
  auto matches = [&](const MessageHead& head) {
    return anySubjectMatches(group.filter,
                             head.subject.empty() ? std::string_view(topic.name) : head.subject);
  };
  std::optional<int64_t> oldest;
  if (!group.matchedAhead) {
    // Unknown (start-up, reset, trim): count every matching message ahead once, on heads.
    uint64_t count = 0;
    snapshot.scanMessages(topic.id, from, std::numeric_limits<size_t>::max(),
                          std::numeric_limits<size_t>::max(), [&](const MessageHead& head) {
                            if (head.offset >= end) return Scan::kStop;
                            if (matches(head)) {
                              ++count;
                              if (!oldest) oldest = head.timestampMs;
                            }
                            return Scan::kPass;
                          });
    group.matchedAhead = count;
  } else if (*group.matchedAhead > 0) {
    size_t read = 0;
    Offset last = from;
    snapshot.scanMessages(topic.id, from, std::numeric_limits<size_t>::max(),
                          std::numeric_limits<size_t>::max(), [&](const MessageHead& head) {
                            if (head.offset >= end || ++read > kLagScanHeads) return Scan::kStop;
                            last = head.offset;
                            if (!matches(head)) return Scan::kPass;
                            oldest = head.timestampMs;
                            return Scan::kStop;
                          });
    // Not found within the bound: the oldest match is younger than the last head read.
    if (!oldest) oldest = snapshot.timestampAtOrAfter(topic.id, last);
  }
  view.lagMessages = *group.matchedAhead;
  if (view.lagMessages > 0 && oldest) view.lagMs = std::max<int64_t>(0, nowMs - *oldest);
}

GroupView Views::viewOf(const Group& group, const StoreSnapshot& snapshot, int64_t nowMs) const {
  const Topic& topic = *group.topic;
  GroupView view;
  view.topic = topic.name;
  view.name = group.name;
  view.position = group.position;
  Offset floor = group.position;
  if (!group.leases.empty()) floor = std::min(floor, group.leases.begin()->first);
  if (auto pending = snapshot.firstPending(topic.id, group.name)) floor = std::min(floor, *pending);
  view.ackFloor = std::max(floor, topic.firstOffset);
  if (auto stored = snapshot.group(topic.id, group.name)) {
    view.pending = stored->pending;
    view.scheduled = stored->scheduled;
  }
  Offset from = std::max(group.position, topic.firstOffset);
  view.filter = group.filter;
  if (group.filtered()) {
    filteredLag(group, snapshot, from, nowMs, view);
  } else {
    view.lagMessages = topic.committedNext > from ? topic.committedNext - from : 0;
    if (view.lagMessages > 0) {
      if (auto ts = snapshot.timestampAtOrAfter(topic.id, from))
        view.lagMs = std::max<int64_t>(0, nowMs - *ts);
    }
  }
  view.delivered = group.delivered;
  view.acked = group.acked;
  view.nacked = group.nacked;
  view.redelivered = group.redelivered;
  view.deadLettered = group.deadLettered;
  view.expired = group.expired;
  view.keyOrdered = group.keyOrdered;
  view.keyBlocked = group.parked();
  view.createdMs = group.createdMs;
  for (const Consumer* consumer : group.consumers) {
    view.consumers.push_back(ConsumerView{consumer->id, consumer->peer, consumer->prefetch,
                                          consumer->held(), consumer->connectedMs});
  }
  return view;
}

TopicView Views::viewOf(const Topic& topic, const StoreSnapshot& snapshot, int64_t nowMs) const {
  TopicView view;
  view.name = topic.name;
  view.settings = topic.settings;
  view.createdMs = topic.createdMs;
  view.publishedTotal = topic.publishedTotal;
  view.publishedBytes = topic.publishedBytes;
  view.publishRate = topic.publishRate.perSecond(nowMs);
  view.expired = topic.expired;
  view.lastOffset = topic.committedNext - 1;
  if (auto record = snapshot.topic(topic.name); record && record->id == topic.id) {
    view.messages = record->messages;
    view.bytes = record->bytes;
    view.firstOffset = record->messages > 0 ? record->firstOffset : 0;
    view.lastOffset = record->nextOffset - 1;
  }
  for (const auto& [name, group] : topic.groups) {
    view.groups.push_back(viewOf(*group, snapshot, nowMs));
    view.scheduled += view.groups.back().scheduled;
    view.keyBlocked += view.groups.back().keyBlocked;
  }
  return view;
}

std::vector<TopicView> Views::listTopics() {
  auto snapshot = ctx_.store.snapshot();
  int64_t now = wallClockMs();
  std::vector<TopicView> views;
  views.reserve(ctx_.topics.size());
  for (const auto& [name, topic] : ctx_.topics)
    views.push_back(viewOf(*topic, *snapshot, now));
  return views;
}

Result<TopicView> Views::describeTopic(std::string_view name) {
  auto topic = ctx_.requireTopic(name);
  if (!topic.ok()) return topic.status();
  TopicView view = viewOf(*topic.value(), *ctx_.store.snapshot(), wallClockMs());
  // One shard holds every topic: each is led and replicated as the cluster is.
  if (ctx_.options.cluster) {
    ClusterView cluster = ctx_.options.cluster();
    view.leader = cluster.leader;
    for (const ReplicaView& broker : cluster.brokers)
      view.replicas.push_back(broker.id);
    view.inSync = cluster.inSync;
  }
  return view;
}

ClusterView Views::cluster() const {
  return ctx_.options.cluster ? ctx_.options.cluster() : ClusterView{};
}

Result<std::vector<GroupView>> Views::listGroups(std::string_view topicName) {
  auto topic = ctx_.requireTopic(topicName);
  if (!topic.ok()) return topic.status();
  auto snapshot = ctx_.store.snapshot();
  int64_t now = wallClockMs();
  std::vector<GroupView> views;
  for (const auto& [name, group] : topic.value()->groups)
    views.push_back(viewOf(*group, *snapshot, now));
  return views;
}

Result<GroupView> Views::describeGroup(std::string_view topicName, std::string_view groupName) {
  auto group = ctx_.requireGroup(topicName, groupName);
  if (!group.ok()) return group.status();
  return viewOf(*group.value(), *ctx_.store.snapshot(), wallClockMs());
}

Result<std::vector<StoredMessageData>> Views::peek(std::string_view topicName, Offset from,
                                                   uint32_t count) {
  auto topic = ctx_.requireTopic(topicName);
  if (!topic.ok()) return topic.status();
  const Limits& limits = ctx_.limits();
  if (count == 0 || count > limits.maxPeekCount) {
    return Status(Code::kInvalidArgument, "peek count must be 1-" +
                                              std::to_string(limits.maxPeekCount) + ", got " +
                                              std::to_string(count));
  }
  auto messages = ctx_.store.snapshot()->readMessages(topic.value()->id, std::max<Offset>(from, 1),
                                                      count, limits.maxDeliveryBatchBytes);
  while (!messages.empty() && messages.back().offset >= topic.value()->committedNext) {
    messages.pop_back();  // Committed, but its publish is not answered yet.
  }
  return messages;
}

StatsView Views::stats() {
  StatsView view;
  int64_t now = wallClockMs();
  view.uptimeMs = now - ctx_.startedMs;
  for (const TopicRecord& record : ctx_.store.snapshot()->topics()) {
    ++view.topics;
    view.messages += record.messages;
    view.bytes += record.bytes;
  }
  for (const auto& [name, topic] : ctx_.topics)
    view.publishRate += topic->publishRate.perSecond(now);
  view.storageUsed = ctx_.store.usedBytes();
  view.storageLimit = ctx_.store.maxStorageBytes();
  view.connections = ctx_.metrics.connections.load(std::memory_order_relaxed);
  view.consumers = ctx_.consumers.size();
  view.publishedTotal = ctx_.metrics.publishedTotal.load(std::memory_order_relaxed);
  view.deliveredTotal = ctx_.metrics.deliveredTotal.load(std::memory_order_relaxed);
  view.deliveryRate = ctx_.deliveryRate.perSecond(now);
  view.commits = ctx_.store.stats().commits;
  return view;
}

}  // namespace sluice::core
