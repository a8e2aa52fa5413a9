#pragma once

// What operators see: topics, groups, consumers, peeked messages and broker-wide stats,
// computed from the live state and a store snapshot (nothing here is kept up to date by
// hand). Thread: kj.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/context.h"

namespace sluice::core {

struct ConsumerView {
  uint64_t id = 0;
  std::string peer;
  uint32_t prefetch = 0;
  uint32_t inFlight = 0;
  int64_t connectedMs = 0;
};

struct GroupView {
  std::string topic;
  std::string name;
  Offset position = 0;
  Offset ackFloor = 0;
  uint64_t pending = 0;
  uint64_t lagMessages = 0;
  int64_t lagMs = 0;
  uint64_t delivered = 0, acked = 0, nacked = 0, redelivered = 0, deadLettered = 0;
  uint64_t expired = 0;
  bool keyOrdered = false;
  uint64_t keyBlocked = 0;
  uint64_t scheduled = 0;
  std::vector<ConsumerView> consumers;
  int64_t createdMs = 0;
  std::vector<std::string> filter;  // Subject patterns; lag counts only matching messages.
};

struct TopicView {
  std::string name;
  TopicConfig settings;
  uint64_t messages = 0;
  uint64_t bytes = 0;
  Offset firstOffset = 0;
  Offset lastOffset = 0;
  std::vector<GroupView> groups;
  int64_t createdMs = 0;
  uint64_t publishedTotal = 0;
  uint64_t publishedBytes = 0;
  double publishRate = 0;
  uint64_t expired = 0;
  uint64_t scheduled = 0, keyBlocked = 0;  // Over its groups.
  // In a cluster: the broker that leads the topic's shard, the brokers replicating it (the
  // leader first) and those in sync. Empty for a standalone broker.
  std::string leader;
  std::vector<std::string> replicas, inSync;
};

struct StatsView {
  int64_t uptimeMs = 0;
  uint64_t topics = 0, messages = 0, bytes = 0, storageUsed = 0, storageLimit = 0;
  uint64_t connections = 0, consumers = 0, publishedTotal = 0, deliveredTotal = 0, commits = 0;
  double publishRate = 0, deliveryRate = 0;
};

class Views {
 public:
  explicit Views(Context& ctx) : ctx_(ctx) {}

  std::vector<TopicView> listTopics();
  // Errors: kInvalidArgument, kTopicNotFound.
  Result<TopicView> describeTopic(std::string_view name);
  ClusterView cluster() const;
  Result<std::vector<GroupView>> listGroups(std::string_view topic);
  // Errors: kInvalidArgument, kTopicNotFound, kGroupNotFound.
  Result<GroupView> describeGroup(std::string_view topic, std::string_view group);
  // Up to `count` committed messages from `from`. Errors: kInvalidArgument, kTopicNotFound.
  Result<std::vector<StoredMessageData>> peek(std::string_view topic, Offset from, uint32_t count);
  StatsView stats();

 private:
  GroupView viewOf(const Group& group, const StoreSnapshot& snapshot, int64_t nowMs) const;
  // A filtered group's lag: matching messages from `from` on, and the oldest one's age.
  void filteredLag(const Group& group, const StoreSnapshot& snapshot, Offset from, int64_t nowMs,
                   GroupView& view) const;
  TopicView viewOf(const Topic& topic, const StoreSnapshot& snapshot, int64_t nowMs) const;

  Context& ctx_;
};

}  // namespace sluice::core
