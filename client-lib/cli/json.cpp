#include "json.h"

#include "encoding.h"
#include "format.h"
#include "view_json.h"

namespace sluice::cli {

Json settingsToJson(const TopicSettings& settings) {
  return settingsJsonOf(settings, static_cast<uint64_t>(settings.maxAge.count()),
                        static_cast<uint64_t>(settings.dedupWindow.count()),
                        static_cast<uint64_t>(settings.defaultTtl.count()));
}

Json consumerToJson(const ConsumerInfo& consumer) {
  return consumerJsonOf(consumer);
}

Json groupToJson(const GroupInfo& group) {
  return groupJsonOf(group);
}

Json topicToJson(const TopicInfo& topic) {
  return topicJsonOf(topic, settingsToJson(topic.settings));
}

Json clusterToJson(const ClusterStatus& cluster) {
  return clusterJsonOf(cluster);
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
  addMessageBody(out, message.key(), message.headers(), message.payload());
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
