#pragma once

// The `--json` documents of topics, groups, consumers, settings and messages, written once for
// both sides that show them: the CLI over the client library's types (json.cpp) and the
// broker's HTTP API over core's views (broker/src/admin/api.cpp). Both kinds of view name their
// fields alike, so one template serves each document; the field names are a stable interface
// (README.md, docs/http-api.md).

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "encoding.h"

namespace sluice::cli {

using Json = nlohmann::ordered_json;

inline Json nullIfEmpty(const std::string& text) {
  return text.empty() ? Json(nullptr) : Json(text);
}

// Durations in ms are passed in: the client holds std::chrono durations, core holds counts.
template <class Settings>
Json settingsJsonOf(const Settings& settings, uint64_t maxAgeMs, uint64_t dedupWindowMs,
                    uint64_t defaultTtlMs) {
  return Json{
      {"max_age_ms", maxAgeMs},
      {"max_bytes", settings.maxBytes},
      {"max_messages", settings.maxMessages},
      {"max_message_size", settings.maxMessageSize},
      {"work_queue", settings.workQueue},
      {"max_deliveries", settings.maxDeliveries},
      {"dead_letter_topic", nullIfEmpty(settings.deadLetterTopic)},
      {"dedup_window_ms", dedupWindowMs},
      {"default_ttl_ms", defaultTtlMs},
      {"dead_letter_expired", settings.deadLetterExpired},
      {"subjects", settings.subjects},
  };
}

template <class Consumer>
Json consumerJsonOf(const Consumer& consumer) {
  return Json{
      {"id", consumer.id},
      {"peer", consumer.peer},
      {"prefetch", consumer.prefetch},
      {"in_flight", consumer.inFlight},
      {"connected", formatTimestamp(consumer.connectedMs)},
  };
}

template <class Group>
Json groupJsonOf(const Group& group) {
  Json consumers = Json::array();
  for (const auto& consumer : group.consumers)
    consumers.push_back(consumerJsonOf(consumer));
  return Json{
      {"topic", group.topic},
      {"name", group.name},
      {"position", group.position},
      {"ack_floor", group.ackFloor},
      {"pending", group.pending},
      {"lag_messages", group.lagMessages},
      {"lag_ms", group.lagMs},
      {"delivered", group.delivered},
      {"acked", group.acked},
      {"nacked", group.nacked},
      {"redelivered", group.redelivered},
      {"dead_lettered", group.deadLettered},
      {"expired", group.expired},
      {"ordering", group.keyOrdered ? "key" : "none"},
      {"key_blocked", group.keyBlocked},
      {"scheduled", group.scheduled},
      {"filter", group.filter},
      {"consumers", consumers},
      {"created", formatTimestamp(group.createdMs)},
  };
}

// `settings` is the topic's settings as settingsJsonOf wrote them.
template <class Topic>
Json topicJsonOf(const Topic& topic, Json settings) {
  Json groups = Json::array();
  for (const auto& group : topic.groups)
    groups.push_back(groupJsonOf(group));
  return Json{
      {"name", topic.name},
      {"settings", std::move(settings)},
      {"messages", topic.messages},
      {"bytes", topic.bytes},
      {"first_offset", topic.firstOffset},
      {"last_offset", topic.lastOffset},
      {"published_total", topic.publishedTotal},
      {"publish_rate", topic.publishRate},
      {"expired", topic.expired},
      {"scheduled", topic.scheduled},
      {"key_blocked", topic.keyBlocked},
      {"groups", groups},
      {"created", formatTimestamp(topic.createdMs)},
      {"leader", nullIfEmpty(topic.leader)},
      {"replicas", topic.replicas},
      {"in_sync", topic.inSync},
  };
}

// A cluster's replication state; "cluster" is null for a standalone broker. A broker's lag is
// in write-log batches behind the leader's last commit.
template <class Cluster>
Json clusterJsonOf(const Cluster& cluster) {
  Json brokers = Json::array();
  for (const auto& broker : cluster.brokers) {
    brokers.push_back(Json{
        {"id", broker.id},
        {"rpc", nullIfEmpty(broker.rpcAddress)},
        {"replication", nullIfEmpty(broker.replicationAddress)},
        {"role", broker.id == cluster.leader ? "leader" : "follower"},
        {"alive", broker.alive},
        {"in_sync", broker.inSync},
        {"acked_seq", broker.ackedSeq},
        {"lag", cluster.lastSeq > broker.ackedSeq ? cluster.lastSeq - broker.ackedSeq : 0},
        {"caught_up_ago_ms", broker.caughtUpAgoMs < 0 ? Json(nullptr) : Json(broker.caughtUpAgoMs)},
    });
  }
  return Json{
      {"cluster", nullIfEmpty(cluster.clusterId)},
      {"leader", nullIfEmpty(cluster.leader)},
      {"epoch", cluster.epoch},
      {"min_insync", cluster.minInsync},
      {"last_seq", cluster.lastSeq},
      {"in_sync", cluster.inSync},
      {"brokers", brokers},
  };
}

// A message's key, headers and payload: text where it is UTF-8, base64 where it is not.
template <class OptionalKey, class Headers>
void addMessageBody(Json& out, const OptionalKey& key, const Headers& headers,
                    const std::string& payload) {
  if (!key) {
    out["key"] = nullptr;
  } else if (isValidUtf8(*key)) {
    out["key"] = *key;
  } else {
    out["key"] = nullptr;
    out["key_base64"] = base64Encode(*key);
  }
  Json names = Json::object();
  for (const auto& [name, value] : headers)
    names[name] = value;
  out["headers"] = names;
  if (isValidUtf8(payload)) {
    out["payload"] = payload;
  } else {
    out["payload_base64"] = base64Encode(payload);
  }
}

}  // namespace sluice::cli
