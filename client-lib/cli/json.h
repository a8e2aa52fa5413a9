#pragma once

// The `--json` documents. Field names are a stable interface for scripts: they are listed in
// README.md, and changing one is a breaking change.

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "sluice/client.h"

namespace sluice::cli {

// Keys keep the order in which the code adds them, so documents read in a natural order.
using Json = nlohmann::ordered_json;

Json settingsToJson(const TopicSettings& settings);
Json consumerToJson(const ConsumerInfo& consumer);
Json groupToJson(const GroupInfo& group);
Json topicToJson(const TopicInfo& topic);
Json statsToJson(const BrokerStats& stats);
// cluster (null: standalone), leader, epoch, min_insync, last_seq, in_sync, brokers [{id, rpc,
// replication, role, alive, in_sync, acked_seq, lag, caught_up_ago_ms}].
Json clusterToJson(const ClusterStatus& cluster);
// offset, timestamp, timestamp_ms, subject, key (or key_base64), headers, payload (or
// payload_base64), deliveries, id.
Json messageToJson(const Message& message);
Json publishAckToJson(const PublishAck& ack);
// Message `index` of a routed publish: {"subject", "topics": {TOPIC: {"offset", "duplicate"}}},
// the topics in the broker's order. Precondition: every topic has an ack at `index`.
Json routedAckToJson(const std::string& subject, const RoutedAcks& acks, size_t index);

// {"allow", "actions": [ACTION...], "pattern"}.
Json ruleToJson(const Rule& rule);
// id, principal, kind ("token" or "grant"), issuer (null for 0), scope [Rule...], expires
// (null: never), created, note (null when empty).
Json credentialToJson(const CredentialInfo& credential);
// name, rules [Rule...], credentials, created.
Json principalToJson(const PrincipalInfo& principal);
// principal (null when the connection holds no credential for a broker with authentication
// on), authenticated, credential (null when the connection holds none), rules.
Json identityToJson(const Identity& identity);
// The credential's fields with `secret` after them.
Json secretToJson(const Secret& secret);

// One line of compact JSON (no trailing newline). Invalid UTF-8 in strings is replaced with
// U+FFFD instead of throwing; payloads and keys never reach here unless valid.
std::string dumpLine(const Json& document);
// Indented, for single documents (list/describe/stats); no trailing newline.
std::string dumpDocument(const Json& document);

}  // namespace sluice::cli
