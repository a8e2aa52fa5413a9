#include "views.h"

#include "format.h"

namespace sluice::cli {
namespace {

using Align = Table::Align;

std::string limit(uint64_t value, const std::string& formatted) {
  return value == 0 ? "unlimited" : formatted;
}

std::string offset(uint64_t value) {
  return orDash(std::to_string(value), value == 0);
}

// A topic's patterns as `sluice topics create --subjects` takes them; `-`: its own name only.
std::string subjects(const TopicInfo& topic) {
  return orDash(joinPatterns(topic.settings.subjects), topic.settings.subjects.empty());
}

std::string joinList(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items)
    out += (out.empty() ? "" : ", ") + item;
  return orDash(out, out.empty());
}

std::string filter(const GroupInfo& group) {
  return orDash(joinPatterns(group.filter), group.filter.empty());
}

}  // namespace

std::string topicsTable(const std::vector<TopicInfo>& topics) {
  Table table({{"TOPIC"},
               {"MESSAGES", Align::kRight},
               {"BYTES", Align::kRight},
               {"FIRST", Align::kRight},
               {"LAST", Align::kRight},
               {"GROUPS", Align::kRight},
               {"PUBLISH RATE", Align::kRight},
               {"SUBJECTS"}});
  for (const auto& topic : topics) {
    table.addRow({topic.name, std::to_string(topic.messages), formatBytes(topic.bytes),
                  offset(topic.firstOffset), offset(topic.lastOffset),
                  std::to_string(topic.groups.size()), formatRate(topic.publishRate),
                  subjects(topic)});
  }
  return table.render();
}

std::string topicView(const TopicInfo& topic) {
  const TopicSettings& s = topic.settings;
  std::string out = renderFields({
      {"Topic", topic.name},
      {"Created", formatTimestamp(topic.createdMs)},
      {"Messages", std::to_string(topic.messages)},
      {"Bytes", formatBytes(topic.bytes)},
      {"First offset", offset(topic.firstOffset)},
      {"Last offset", offset(topic.lastOffset)},
      {"Publish rate", formatRate(topic.publishRate)},
      {"Published", std::to_string(topic.publishedTotal) + " since broker start"},
      {"Expired", std::to_string(topic.expired) + " removed since broker start"},
      {"Scheduled", std::to_string(topic.scheduled) + " delayed, not yet delivered (all groups)"},
      {"Key-blocked", std::to_string(topic.keyBlocked) + " (all groups)"},
      {"Max age", limit(static_cast<uint64_t>(s.maxAge.count()), formatDuration(s.maxAge.count()))},
      {"Max bytes", limit(s.maxBytes, formatBytes(s.maxBytes))},
      {"Max messages", limit(s.maxMessages, std::to_string(s.maxMessages))},
      {"Max message size", formatBytes(s.maxMessageSize)},
      {"Work queue", s.workQueue ? "yes" : "no"},
      {"Max deliveries", limit(s.maxDeliveries, std::to_string(s.maxDeliveries))},
      {"Dead-letter topic", orDash(s.deadLetterTopic, s.deadLetterTopic.empty())},
      {"Dedup window", formatDuration(s.dedupWindow.count())},
      {"Default TTL", s.defaultTtl.count() == 0 ? "none" : formatDuration(s.defaultTtl.count())},
      {"Expired messages", s.deadLetterExpired ? "dead-lettered" : "dropped"},
      {"Subjects",
       s.subjects.empty() ? topic.name + " (its own name only)" : joinPatterns(s.subjects)},
  });
  if (!topic.leader.empty()) {
    out += renderFields({{"Leader", topic.leader},
                         {"Replicas", joinList(topic.replicas)},
                         {"In sync", joinList(topic.inSync)}});
  }
  out += "\n";
  out += topic.groups.empty() ? "No consumer groups.\n" : groupsTable(topic.groups);
  return out;
}

std::string groupsTable(const std::vector<GroupInfo>& groups) {
  Table table({{"GROUP"},
               {"POSITION", Align::kRight},
               {"PENDING", Align::kRight},
               {"LAG", Align::kRight},
               {"LAG TIME", Align::kRight},
               {"REDELIVERED", Align::kRight},
               {"DEAD-LETTERED", Align::kRight},
               {"CONSUMERS", Align::kRight},
               {"FILTER"}});
  for (const auto& group : groups) {
    table.addRow({group.name, std::to_string(group.position), std::to_string(group.pending),
                  std::to_string(group.lagMessages), formatDuration(group.lagMs),
                  std::to_string(group.redelivered), std::to_string(group.deadLettered),
                  std::to_string(group.consumers.size()), filter(group)});
  }
  return table.render();
}

std::string groupView(const GroupInfo& group) {
  std::string out = renderFields({
      {"Topic", group.topic},
      {"Group", group.name},
      {"Created", formatTimestamp(group.createdMs)},
      {"Position", std::to_string(group.position)},
      {"Ack floor", std::to_string(group.ackFloor)},
      {"Pending", std::to_string(group.pending)},
      {"Lag", std::to_string(group.lagMessages) + " messages, " + formatDuration(group.lagMs) +
                  (group.filter.empty() ? "" : " (matching the filter)")},
      {"Delivered", std::to_string(group.delivered) + " since broker start"},
      {"Acked", std::to_string(group.acked) + " since broker start"},
      {"Nacked", std::to_string(group.nacked) + " since broker start"},
      {"Redelivered", std::to_string(group.redelivered)},
      {"Dead-lettered", std::to_string(group.deadLettered)},
      {"Expired", std::to_string(group.expired) + " passed over since broker start"},
      {"Ordering", group.keyOrdered ? "by key" : "none"},
      {"Filter", group.filter.empty() ? "none (every message)" : joinPatterns(group.filter)},
      {"Key-blocked", std::to_string(group.keyBlocked)},
      {"Scheduled", std::to_string(group.scheduled) + " delayed, not yet delivered"},
      {"Consumers", std::to_string(group.consumers.size())},
  });
  if (!group.consumers.empty()) out += "\n" + consumersTable(group.consumers);
  return out;
}

std::string consumersTable(const std::vector<ConsumerInfo>& consumers) {
  Table table({{"CONSUMER", Align::kRight},
               {"PEER"},
               {"IN FLIGHT", Align::kRight},
               {"PREFETCH", Align::kRight},
               {"CONNECTED"}});
  for (const auto& consumer : consumers) {
    // Prefetch 0: a fetch consumer, sent only what it fetches.
    std::string prefetch = consumer.prefetch == 0 ? "fetch" : std::to_string(consumer.prefetch);
    table.addRow({std::to_string(consumer.id), consumer.peer, std::to_string(consumer.inFlight),
                  prefetch, formatTimestamp(consumer.connectedMs)});
  }
  return table.render();
}

std::string statsView(const BrokerStats& stats) {
  std::string storage = formatBytes(stats.storageUsed);
  if (stats.storageLimit > 0) {
    storage += " of " + formatBytes(stats.storageLimit) + " (" +
               std::to_string(stats.storageUsed * 100 / stats.storageLimit) + "%)";
  }
  return renderFields({
      {"Version", stats.version},
      {"Uptime", formatDuration(stats.uptimeMs)},
      {"Topics", std::to_string(stats.topics)},
      {"Messages", std::to_string(stats.messages)},
      {"Bytes", formatBytes(stats.bytes)},
      {"Storage", storage},
      {"Connections", std::to_string(stats.connections)},
      {"Consumers", std::to_string(stats.consumers)},
      {"Publish rate", formatRate(stats.publishRate)},
      {"Delivery rate", formatRate(stats.deliveryRate)},
      {"Published", std::to_string(stats.publishedTotal) + " since broker start"},
      {"Delivered", std::to_string(stats.deliveredTotal) + " since broker start"},
      {"Commits", std::to_string(stats.commits) + " since broker start"},
  });
}

std::string clusterView(const ClusterStatus& cluster) {
  if (cluster.clusterId.empty()) {
    return "Standalone broker: not in a cluster, nothing is replicated.\n";
  }
  std::string out = renderFields({
      {"Cluster", cluster.clusterId},
      {"Leader",
       cluster.leader + (cluster.epoch > 0 ? " (epoch " + std::to_string(cluster.epoch) + ")"
                                           : " (static roles)")},
      {"In sync",
       joinList(cluster.inSync) + " (min_insync " + std::to_string(cluster.minInsync) + ")"},
      {"Last batch", std::to_string(cluster.lastSeq)},
  });
  Table table({{"BROKER"},
               {"ROLE"},
               {"ALIVE"},
               {"IN SYNC"},
               {"ACKED", Align::kRight},
               {"LAG", Align::kRight},
               {"CAUGHT UP", Align::kRight},
               {"RPC"},
               {"REPLICATION"}});
  for (const auto& broker : cluster.brokers) {
    uint64_t lag = cluster.lastSeq > broker.ackedSeq ? cluster.lastSeq - broker.ackedSeq : 0;
    std::string caughtUp = broker.caughtUpAgoMs < 0 ? "never"
                           : broker.caughtUpAgoMs == 0
                               ? "now"
                               : formatDuration(broker.caughtUpAgoMs) + " ago";
    table.addRow({broker.id, broker.id == cluster.leader ? "leader" : "follower",
                  broker.alive ? "yes" : "no", broker.inSync ? "yes" : "no",
                  std::to_string(broker.ackedSeq), std::to_string(lag), caughtUp,
                  orDash(broker.rpcAddress, broker.rpcAddress.empty()),
                  orDash(broker.replicationAddress, broker.replicationAddress.empty())});
  }
  return out + "\n" + table.render();
}

std::string identityView(const Identity& identity) {
  const CredentialInfo& credential = identity.credential;
  if (!identity.authenticated && identity.principal.empty()) {
    return renderFields({
        {"Principal", "none"},
        {"Authenticated",
         "no: the broker has authentication on and this connection gave no credential "
         "(--token-file FILE or $SLUICE_TOKEN)"},
    });
  }
  std::vector<std::pair<std::string, std::string>> fields = {
      {"Principal", identity.principal},
      {"Authenticated",
       identity.authenticated ? "yes" : "no (the broker has authentication off; all allowed)"},
  };
  if (credential.id != 0) {
    std::string kind = credential.scoped ? "grant" : "token";
    if (credential.issuer != 0) kind += ", minted from " + std::to_string(credential.issuer);
    fields.push_back({"Credential", std::to_string(credential.id) + " (" + kind + ")"});
    fields.push_back({"Expires", formatExpiry(credential.expiresAtMs)});
    if (!credential.note.empty()) fields.push_back({"Note", credential.note});
  } else if (identity.authenticated) {
    fields.push_back({"Credential", "none (TLS client certificate)"});
  }
  fields.push_back({"Rules", formatRules(identity.rules)});
  if (credential.scoped) fields.push_back({"Scope", formatRules(credential.scope)});
  return renderFields(fields);
}

std::string principalsTable(const std::vector<PrincipalInfo>& principals) {
  Table table({{"PRINCIPAL"}, {"CREDENTIALS", Align::kRight}, {"CREATED"}, {"RULES"}});
  for (const auto& principal : principals) {
    table.addRow({principal.name, std::to_string(principal.credentials),
                  formatTimestamp(principal.createdMs), formatRules(principal.rules)});
  }
  return table.render();
}

std::string credentialsTable(const std::vector<CredentialInfo>& credentials) {
  Table table({{"ID", Align::kRight},
               {"PRINCIPAL"},
               {"KIND"},
               {"ISSUER", Align::kRight},
               {"EXPIRES"},
               {"CREATED"},
               {"NOTE"},
               {"SCOPE"}});
  for (const auto& credential : credentials) {
    table.addRow({std::to_string(credential.id), credential.principal,
                  credential.scoped ? "grant" : "token",
                  orDash(std::to_string(credential.issuer), credential.issuer == 0),
                  formatExpiry(credential.expiresAtMs), formatTimestamp(credential.createdMs),
                  orDash(credential.note, credential.note.empty()),
                  credential.scoped ? formatRules(credential.scope) : "-"});
  }
  return table.render();
}

std::string credentialSummary(const CredentialInfo& credential) {
  std::string out = std::string(credential.scoped ? "grant " : "token ") +
                    std::to_string(credential.id) + " of principal \"" + credential.principal +
                    "\"";
  if (credential.issuer != 0) out += " (from credential " + std::to_string(credential.issuer) + ")";
  if (credential.scoped) out += ", scope " + formatRules(credential.scope);
  out += ", expires " + formatExpiry(credential.expiresAtMs);
  return out;
}

}  // namespace sluice::cli
