#include "json.h"

#include "encoding.h"
#include "format.h"

namespace sluice::cli {

namespace {

Json nullIfEmpty(const std::string& text) {
  return text.empty() ? Json(nullptr) : Json(text);
}

}  // namespace

Json settingsToJson(const TopicSettings& settings) {
  return Json{
      {"max_age_ms", settings.maxAge.count()},
      {"max_bytes", settings.maxBytes},
      {"max_messages", settings.maxMessages},
      {"max_message_size", settings.maxMessageSize},
      {"work_queue", settings.workQueue},
      {"max_deliveries", settings.maxDeliveries},
      {"dead_letter_topic", nullIfEmpty(settings.deadLetterTopic)},
      {"dedup_window_ms", settings.dedupWindow.count()},
      {"default_ttl_ms", settings.defaultTtl.count()},
      {"dead_letter_expired", settings.deadLetterExpired},
      {"subjects", settings.subjects},
  };
}

Json consumerToJson(const ConsumerInfo& consumer) {
  return Json{
      {"id", consumer.id},
      {"peer", consumer.peer},
      {"prefetch", consumer.prefetch},
      {"in_flight", consumer.inFlight},
      {"connected", formatTimestamp(consumer.connectedMs)},
  };
}

Json groupToJson(const GroupInfo& group) {
  Json consumers = Json::array();
  for (const auto& consumer : group.consumers)
    consumers.push_back(consumerToJson(consumer));
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

Json topicToJson(const TopicInfo& topic) {
  Json groups = Json::array();
  for (const auto& group : topic.groups)
    groups.push_back(groupToJson(group));
  return Json{
      {"name", topic.name},
      {"settings", settingsToJson(topic.settings)},
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
  };
}

Json statsToJson(const BrokerStats& stats) {
  return Json{
      {"version", stats.version},
      {"uptime_ms", stats.uptimeMs},
      {"topics", stats.topics},
      {"messages", stats.messages},
      {"bytes", stats.bytes},
      {"storage_used", stats.storageUsed},
      {"storage_limit", stats.storageLimit},
      {"connections", stats.connections},
      {"consumers", stats.consumers},
      {"published_total", stats.publishedTotal},
      {"delivered_total", stats.deliveredTotal},
      {"publish_rate", stats.publishRate},
      {"delivery_rate", stats.deliveryRate},
      {"commits", stats.commits},
  };
}

Json messageToJson(const Message& message) {
  Json out{
      {"offset", message.offset()},
      {"timestamp", formatTimestamp(message.timestampMs())},
      {"timestamp_ms", message.timestampMs()},
      {"subject", nullIfEmpty(message.subject())},
  };
  if (!message.key()) {
    out["key"] = nullptr;
  } else if (isValidUtf8(*message.key())) {
    out["key"] = *message.key();
  } else {
    out["key"] = nullptr;
    out["key_base64"] = base64Encode(*message.key());
  }
  Json headers = Json::object();
  for (const auto& [name, value] : message.headers())
    headers[name] = value;
  out["headers"] = headers;
  if (isValidUtf8(message.payload())) {
    out["payload"] = message.payload();
  } else {
    out["payload_base64"] = base64Encode(message.payload());
  }
  out["deliveries"] = message.deliveries();
  out["id"] = nullIfEmpty(message.id());
  if (message.deliverAtMs() != 0) out["deliver_at_ms"] = message.deliverAtMs();
  if (message.expiresAtMs() != 0) out["expires_at_ms"] = message.expiresAtMs();
  return out;
}

Json publishAckToJson(const PublishAck& ack) {
  return Json{{"offset", ack.offset}, {"duplicate", ack.duplicate}};
}

Json routedAckToJson(const std::string& subject, const RoutedAcks& acks, size_t index) {
  Json topics = Json::object();
  for (const auto& [topic, topicAcks] : acks)
    topics[topic] = publishAckToJson(topicAcks.at(index));
  return Json{{"subject", subject}, {"topics", topics}};
}

Json ruleToJson(const Rule& rule) {
  Json actions = Json::array();
  for (Action action : rule.actions)
    actions.push_back(actionName(action));
  return Json{{"allow", rule.allow}, {"actions", actions}, {"pattern", rule.pattern}};
}

namespace {

Json rulesToJson(const std::vector<Rule>& rules) {
  Json out = Json::array();
  for (const auto& rule : rules)
    out.push_back(ruleToJson(rule));
  return out;
}

}  // namespace

Json credentialToJson(const CredentialInfo& credential) {
  return Json{
      {"id", credential.id},
      {"principal", credential.principal},
      {"kind", credential.scoped ? "grant" : "token"},
      {"issuer", credential.issuer == 0 ? Json(nullptr) : Json(credential.issuer)},
      {"scope", rulesToJson(credential.scope)},
      {"expires",
       credential.expiresAtMs == 0 ? Json(nullptr) : Json(formatTimestamp(credential.expiresAtMs))},
      {"created", formatTimestamp(credential.createdMs)},
      {"note", nullIfEmpty(credential.note)},
  };
}

Json principalToJson(const PrincipalInfo& principal) {
  return Json{
      {"name", principal.name},
      {"rules", rulesToJson(principal.rules)},
      {"credentials", principal.credentials},
      {"created", formatTimestamp(principal.createdMs)},
  };
}

Json identityToJson(const Identity& identity) {
  return Json{
      {"principal", nullIfEmpty(identity.principal)},
      {"authenticated", identity.authenticated},
      {"credential",
       identity.credential.id == 0 ? Json(nullptr) : credentialToJson(identity.credential)},
      {"rules", rulesToJson(identity.rules)},
  };
}

Json secretToJson(const Secret& secret) {
  Json out = credentialToJson(secret.credential);
  out["secret"] = secret.secret;
  return out;
}

std::string dumpLine(const Json& document) {
  return document.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string dumpDocument(const Json& document) {
  return document.dump(2, ' ', false, Json::error_handler_t::replace);
}

}  // namespace sluice::cli
