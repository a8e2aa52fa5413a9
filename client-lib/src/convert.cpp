#include "convert.h"

#include <algorithm>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "subscription_state.h"

namespace sluice::detail {

// --- Errors ---------------------------------------------------------------------------------

// The library's broker codes are the schema's values; these pin the ends of the range.
static_assert(static_cast<uint16_t>(wire::ErrorCode::INVALID_ARGUMENT) ==
              static_cast<uint16_t>(ErrorCode::kInvalidArgument));
static_assert(static_cast<uint16_t>(wire::ErrorCode::NO_ROUTE) ==
              static_cast<uint16_t>(ErrorCode::kNoRoute));
static_assert(static_cast<uint16_t>(wire::ErrorCode::UNAUTHENTICATED) ==
              static_cast<uint16_t>(ErrorCode::kUnauthenticated));
static_assert(static_cast<uint16_t>(wire::ErrorCode::PERMISSION_DENIED) ==
              static_cast<uint16_t>(ErrorCode::kPermissionDenied));
static_assert(static_cast<uint16_t>(wire::ErrorCode::NOT_ENOUGH_REPLICAS) ==
              static_cast<uint16_t>(ErrorCode::kNotEnoughReplicas));

Error fromWire(wire::Error::Reader error) {
  std::string message = toStd(error.getMessage());
  auto raw = static_cast<uint16_t>(error.getCode());
  // The library's broker codes have the schema's values (sluice/error.h).
  if (raw >= static_cast<uint16_t>(ErrorCode::kInvalidArgument) &&
      raw <= static_cast<uint16_t>(ErrorCode::kNotEnoughReplicas)) {
    return {static_cast<ErrorCode>(raw), std::move(message)};
  }
  // `unspecified`, or a code added to the schema after this library was built.
  return {ErrorCode::kInternal, message + " (broker error code " + std::to_string(raw) + ")"};
}

Error fromException(const kj::Exception& exception) {
  std::string description(exception.getDescription().cStr());
  if (exception.getType() == kj::Exception::Type::DISCONNECTED) {
    return {ErrorCode::kDisconnected, "the connection to the broker was lost: " + description};
  }
  // A call whose answer has no error field (Broker.admin, Admin.stats, Auth.whoami) can refuse
  // only by throwing: "unauthenticated: <message>" or "permissionDenied: <message>", which
  // capnp hands over as "remote exception: <that>".
  std::string_view text = description;
  constexpr std::string_view kRemote = "remote exception: ";
  if (text.substr(0, kRemote.size()) == kRemote) text.remove_prefix(kRemote.size());
  for (ErrorCode code : {ErrorCode::kUnauthenticated, ErrorCode::kPermissionDenied}) {
    std::string prefix = std::string(errorCodeName(code)) + ": ";
    if (text.substr(0, prefix.size()) == prefix) {
      return {code, std::string(text.substr(prefix.size()))};
    }
  }
  return {ErrorCode::kInternal, std::move(description)};
}

// --- Bytes and text --------------------------------------------------------------------------

std::string toStd(capnp::Text::Reader text) {
  return std::string(text.cStr(), text.size());
}

std::string toStd(capnp::Data::Reader data) {
  return std::string(reinterpret_cast<const char*>(data.begin()), data.size());
}

capnp::Data::Reader asData(std::string_view bytes) {
  return capnp::Data::Reader(reinterpret_cast<const capnp::byte*>(bytes.data()), bytes.size());
}

capnp::Text::Reader asText(const std::string& text) {
  return capnp::Text::Reader(text.c_str(), text.size());
}

Headers fromWire(capnp::List<wire::Header>::Reader headers) {
  Headers out;
  for (auto header : headers) {
    // A repeated key keeps its last value, as assigning into a map would.
    out[toStd(header.getKey())] = toStd(header.getValue());
  }
  return out;
}

void toWire(const Headers& headers, capnp::List<wire::Header>::Builder out) {
  unsigned i = 0;
  for (const auto& [key, value] : headers) {
    out[i].setKey(asText(key));
    out[i].setValue(asText(value));
    ++i;
  }
}

// --- Publishing ------------------------------------------------------------------------------

void toWire(const OutgoingMessage& message, wire::PublishMessage::Builder out) {
  out.setPayload(asData(message.payload));
  if (message.key) {
    out.setKey(asData(*message.key));
    out.setHasKey(true);
  }
  if (!message.headers.empty()) {
    toWire(message.headers, out.initHeaders(static_cast<unsigned>(message.headers.size())));
  }
  if (!message.id.empty()) out.setId(asText(message.id));
  out.setDeliverAtMs(message.deliverAtMs);
  // The broker refuses delays beyond its limit with its own rule; negative ones mean at once.
  out.setDelayMs(static_cast<uint32_t>(std::clamp<int64_t>(message.delay.count(), 0, UINT32_MAX)));
  if (message.ttl) {
    // 0 and too long are the broker's to refuse, with its rule; negative ones read as 0.
    out.setHasTtl(true);
    out.setTtlMs(static_cast<uint32_t>(std::clamp<int64_t>(message.ttl->count(), 0, UINT32_MAX)));
  }
}

PublishAck fromWire(wire::PublishAck::Reader ack) {
  return PublishAck{ack.getOffset(), ack.getDuplicate()};
}

Result<std::vector<PublishAck>> fromWire(wire::PublishResult::Reader result, size_t expected) {
  if (result.isError()) return fromWire(result.getError());
  auto acks = result.getAcks();
  if (acks.size() != expected) {
    return Error{ErrorCode::kInternal, "the broker answered " + std::to_string(acks.size()) +
                                           " acks for a batch of " + std::to_string(expected) +
                                           " messages"};
  }
  std::vector<PublishAck> out;
  out.reserve(acks.size());
  for (auto ack : acks)
    out.push_back(fromWire(ack));
  return out;
}

size_t batchBytes(const OutgoingMessage& message) {
  size_t bytes = message.payload.size() + message.id.size();
  if (message.key) bytes += message.key->size();
  for (const auto& [key, value] : message.headers)
    bytes += key.size() + value.size();
  return bytes;
}

// --- Delivered messages ----------------------------------------------------------------------

DeliveryFields fromWire(wire::Delivery::Reader delivery) {
  DeliveryFields out;
  out.offset = delivery.getOffset();
  out.timestampMs = delivery.getTimestampMs();
  if (delivery.getHasKey()) out.key = toStd(delivery.getKey());
  out.headers = fromWire(delivery.getHeaders());
  out.payload = toStd(delivery.getPayload());
  out.id = toStd(delivery.getId());
  out.deliveries = delivery.getDeliveries();
  out.deliveryId = delivery.getDeliveryId();
  out.deliverAtMs = delivery.getDeliverAtMs();
  out.expiresAtMs = delivery.getExpiresAtMs();
  out.subject = toStd(delivery.getSubject());
  return out;
}

Message peekedMessage(wire::Delivery::Reader delivery, const std::string& topic) {
  return SubscriptionState::makeMessage(fromWire(delivery), topic, nullptr);
}

// --- Administration --------------------------------------------------------------------------

std::vector<std::string> fromWire(capnp::List<capnp::Text>::Reader texts) {
  std::vector<std::string> out;
  out.reserve(texts.size());
  for (auto text : texts)
    out.push_back(toStd(text));
  return out;
}

void toWire(const std::vector<std::string>& texts, capnp::List<capnp::Text>::Builder out) {
  for (unsigned i = 0; i < texts.size(); ++i)
    out.set(i, asText(texts[i]));
}

TopicSettings fromWire(wire::TopicSettings::Reader settings) {
  // Durations beyond int64 milliseconds (292 million years) saturate rather than wrap.
  auto millis = [](uint64_t ms) {
    constexpr uint64_t kMax = static_cast<uint64_t>(std::chrono::milliseconds::max().count());
    return std::chrono::milliseconds(static_cast<int64_t>(ms > kMax ? kMax : ms));
  };
  TopicSettings out;
  out.maxAge = millis(settings.getMaxAgeMs());
  out.maxBytes = settings.getMaxBytes();
  out.maxMessages = settings.getMaxMessages();
  out.maxMessageSize = settings.getMaxMessageSize();
  out.workQueue = settings.getWorkQueue();
  out.maxDeliveries = settings.getMaxDeliveries();
  out.deadLetterTopic = toStd(settings.getDeadLetterTopic());
  out.dedupWindow = millis(settings.getDedupWindowMs());
  out.defaultTtl = millis(settings.getDefaultTtlMs());
  out.deadLetterExpired = settings.getDeadLetterExpired();
  out.subjects = fromWire(settings.getSubjects());
  return out;
}

std::optional<Error> checkWireable(const TopicSettings& settings) {
  if (settings.maxAge.count() < 0) {
    return Error{ErrorCode::kInvalidArgument,
                 "maxAge must not be negative (0 means unlimited), got " +
                     std::to_string(settings.maxAge.count()) + " ms"};
  }
  if (settings.dedupWindow.count() < 0) {
    return Error{ErrorCode::kInvalidArgument,
                 "dedupWindow must not be negative (0 means the broker default), got " +
                     std::to_string(settings.dedupWindow.count()) + " ms"};
  }
  if (settings.defaultTtl.count() < 0) {
    return Error{ErrorCode::kInvalidArgument,
                 "defaultTtl must not be negative (0 means none), got " +
                     std::to_string(settings.defaultTtl.count()) + " ms"};
  }
  return std::nullopt;
}

void toWire(const TopicSettings& settings, wire::TopicSettings::Builder out) {
  out.setMaxAgeMs(static_cast<uint64_t>(settings.maxAge.count()));
  out.setMaxBytes(settings.maxBytes);
  out.setMaxMessages(settings.maxMessages);
  out.setMaxMessageSize(settings.maxMessageSize);
  out.setWorkQueue(settings.workQueue);
  out.setMaxDeliveries(settings.maxDeliveries);
  out.setDeadLetterTopic(asText(settings.deadLetterTopic));
  out.setDedupWindowMs(static_cast<uint64_t>(settings.dedupWindow.count()));
  out.setDefaultTtlMs(static_cast<uint64_t>(settings.defaultTtl.count()));
  out.setDeadLetterExpired(settings.deadLetterExpired);
  toWire(settings.subjects, out.initSubjects(static_cast<unsigned>(settings.subjects.size())));
}

StartPosition fromWire(wire::StartPosition::Reader start) {
  switch (start.which()) {
    case wire::StartPosition::LATEST:
      return StartPosition::latest();
    case wire::StartPosition::OFFSET:
      return StartPosition::atOffset(start.getOffset());
    case wire::StartPosition::TIMESTAMP_MS:
      return StartPosition::atTime(start.getTimestampMs());
    case wire::StartPosition::EARLIEST:
      break;
  }
  return StartPosition::earliest();
}

void toWire(const StartPosition& start, wire::StartPosition::Builder out) {
  switch (start.kind) {
    case StartPosition::Kind::kLatest:
      out.setLatest();
      return;
    case StartPosition::Kind::kOffset:
      out.setOffset(start.offset);
      return;
    case StartPosition::Kind::kTimestamp:
      out.setTimestampMs(start.timestampMs);
      return;
    case StartPosition::Kind::kEarliest:
      break;
  }
  out.setEarliest();
}

ConsumerInfo fromWire(wire::ConsumerInfo::Reader consumer) {
  ConsumerInfo out;
  out.id = consumer.getId();
  out.peer = toStd(consumer.getPeer());
  out.prefetch = consumer.getPrefetch();
  out.inFlight = consumer.getInFlight();
  out.connectedMs = consumer.getConnectedMs();
  return out;
}

GroupInfo fromWire(wire::GroupInfo::Reader group) {
  GroupInfo out;
  out.topic = toStd(group.getTopic());
  out.name = toStd(group.getName());
  out.position = group.getPosition();
  out.ackFloor = group.getAckFloor();
  out.pending = group.getPending();
  out.lagMessages = group.getLagMessages();
  out.lagMs = group.getLagMs();
  out.delivered = group.getDelivered();
  out.acked = group.getAcked();
  out.nacked = group.getNacked();
  out.redelivered = group.getRedelivered();
  out.deadLettered = group.getDeadLettered();
  out.expired = group.getExpired();
  out.keyOrdered = group.getKeyOrdered();
  out.keyBlocked = group.getKeyBlocked();
  out.scheduled = group.getScheduled();
  out.filter = fromWire(group.getFilter());
  for (auto consumer : group.getConsumers())
    out.consumers.push_back(fromWire(consumer));
  out.createdMs = group.getCreatedMs();
  return out;
}

TopicInfo fromWire(wire::TopicInfo::Reader topic) {
  TopicInfo out;
  out.name = toStd(topic.getName());
  out.settings = fromWire(topic.getSettings());
  out.messages = topic.getMessages();
  out.bytes = topic.getBytes();
  out.firstOffset = topic.getFirstOffset();
  out.lastOffset = topic.getLastOffset();
  for (auto group : topic.getGroups())
    out.groups.push_back(fromWire(group));
  out.createdMs = topic.getCreatedMs();
  out.publishedTotal = topic.getPublishedTotal();
  out.publishRate = topic.getPublishRate();
  out.expired = topic.getExpired();
  out.scheduled = topic.getScheduled();
  out.keyBlocked = topic.getKeyBlocked();
  out.leader = toStd(topic.getLeader());
  out.replicas = fromWire(topic.getReplicas());
  out.inSync = fromWire(topic.getInSync());
  return out;
}

BrokerStats fromWire(wire::BrokerStats::Reader stats) {
  BrokerStats out;
  out.version = toStd(stats.getVersion());
  out.uptimeMs = stats.getUptimeMs();
  out.topics = stats.getTopics();
  out.messages = stats.getMessages();
  out.bytes = stats.getBytes();
  out.storageUsed = stats.getStorageUsed();
  out.storageLimit = stats.getStorageLimit();
  out.connections = stats.getConnections();
  out.consumers = stats.getConsumers();
  out.publishedTotal = stats.getPublishedTotal();
  out.deliveredTotal = stats.getDeliveredTotal();
  out.publishRate = stats.getPublishRate();
  out.deliveryRate = stats.getDeliveryRate();
  out.commits = stats.getCommits();
  return out;
}

Result<ClusterStatus> fromWire(wire::ClusterStatusResult::Reader result) {
  if (result.isError()) return fromWire(result.getError());
  auto status = result.getStatus();
  ClusterStatus out;
  out.clusterId = toStd(status.getClusterId());
  out.leader = toStd(status.getLeader());
  out.epoch = status.getEpoch();
  out.minInsync = status.getMinInsync();
  out.lastSeq = status.getLastSeq();
  out.inSync = fromWire(status.getInSync());
  for (auto broker : status.getBrokers()) {
    ReplicaInfo info;
    info.id = toStd(broker.getId());
    info.rpcAddress = toStd(broker.getRpcAddress());
    info.replicationAddress = toStd(broker.getReplicationAddress());
    info.alive = broker.getAlive();
    info.inSync = broker.getInSync();
    info.ackedSeq = broker.getAckedSeq();
    info.caughtUpAgoMs = broker.getCaughtUpAgoMs();
    out.brokers.push_back(std::move(info));
  }
  return out;
}

Result<TopicInfo> fromWire(wire::TopicResult::Reader result) {
  if (result.isError()) return fromWire(result.getError());
  return fromWire(result.getTopic());
}

Result<std::vector<TopicInfo>> fromWire(wire::TopicListResult::Reader result) {
  if (result.isError()) return fromWire(result.getError());
  std::vector<TopicInfo> out;
  for (auto topic : result.getTopics())
    out.push_back(fromWire(topic));
  return out;
}

Result<GroupInfo> fromWire(wire::GroupResult::Reader result) {
  if (result.isError()) return fromWire(result.getError());
  return fromWire(result.getGroup());
}

Result<std::vector<GroupInfo>> fromWire(wire::GroupListResult::Reader result) {
  if (result.isError()) return fromWire(result.getError());
  std::vector<GroupInfo> out;
  for (auto group : result.getGroups())
    out.push_back(fromWire(group));
  return out;
}

Result<uint64_t> fromWire(wire::CountResult::Reader result) {
  if (result.isError()) return fromWire(result.getError());
  return result.getCount();
}

Result<std::vector<Message>> fromWire(wire::PeekResult::Reader result, const std::string& topic) {
  if (result.isError()) return fromWire(result.getError());
  std::vector<Message> out;
  for (auto delivery : result.getMessages())
    out.push_back(peekedMessage(delivery, topic));
  return out;
}

Result<RoutedAcks> fromWire(wire::RoutedPublishResult::Reader result, size_t expected) {
  if (result.isError()) return fromWire(result.getError());
  RoutedAcks routed;
  for (auto topic : result.getOutputs()) {
    auto acks = topic.getAcks();
    if (acks.size() != expected) {
      return Error{ErrorCode::kInternal, "the broker answered " + std::to_string(acks.size()) +
                                             " acks for " + std::to_string(expected) + " messages"};
    }
    std::vector<PublishAck> out;
    out.reserve(acks.size());
    for (auto ack : acks)
      out.push_back(fromWire(ack));
    routed.emplace_back(toStd(topic.getTopic()), std::move(out));
  }
  return routed;
}

// --- Authentication --------------------------------------------------------------------------

// The public enum has the schema's values, so conversion is a cast.
static_assert(static_cast<uint16_t>(wire::Action::PUBLISH) ==
              static_cast<uint16_t>(Action::kPublish));
static_assert(static_cast<uint16_t>(wire::Action::CONSUME) ==
              static_cast<uint16_t>(Action::kConsume));
static_assert(static_cast<uint16_t>(wire::Action::MANAGE) ==
              static_cast<uint16_t>(Action::kManage));
static_assert(static_cast<uint16_t>(wire::Action::ADMIN) == static_cast<uint16_t>(Action::kAdmin));

std::vector<Action> fromWire(capnp::List<wire::Action>::Reader actions) {
  std::vector<Action> out;
  out.reserve(actions.size());
  for (wire::Action action : actions) {
    auto raw = static_cast<uint16_t>(action);
    if (raw <= static_cast<uint16_t>(Action::kAdmin)) out.push_back(static_cast<Action>(raw));
  }
  return out;
}

Rule fromWire(wire::Rule::Reader rule) {
  Rule out;
  out.allow = rule.getAllow();
  out.actions = fromWire(rule.getActions());
  out.pattern = toStd(rule.getPattern());
  return out;
}

std::vector<Rule> fromWire(capnp::List<wire::Rule>::Reader rules) {
  std::vector<Rule> out;
  out.reserve(rules.size());
  for (auto rule : rules)
    out.push_back(fromWire(rule));
  return out;
}

std::optional<Error> checkWireable(const std::vector<Rule>& rules) {
  for (size_t i = 0; i < rules.size(); ++i) {
    for (Action action : rules[i].actions) {
      auto raw = static_cast<int>(action);
      if (raw < 0 || raw > static_cast<int>(Action::kAdmin)) {
        return Error{ErrorCode::kInvalidArgument,
                     "rule " + std::to_string(i + 1) +
                         " has an action outside sluice::Action (publish, consume, manage, "
                         "admin): value " +
                         std::to_string(raw)};
      }
    }
  }
  return std::nullopt;
}

void toWire(const std::vector<Rule>& rules, capnp::List<wire::Rule>::Builder out) {
  for (unsigned i = 0; i < rules.size(); ++i) {
    const Rule& rule = rules[i];
    out[i].setAllow(rule.allow);
    auto actions = out[i].initActions(static_cast<unsigned>(rule.actions.size()));
    for (unsigned j = 0; j < rule.actions.size(); ++j)
      actions.set(j, static_cast<wire::Action>(static_cast<uint16_t>(rule.actions[j])));
    out[i].setPattern(asText(rule.pattern));
  }
}

std::optional<Error> checkTtl(const char* what, std::chrono::milliseconds ttl) {
  if (ttl.count() >= 0) return std::nullopt;
  return Error{ErrorCode::kInvalidArgument, std::string(what) + " must not be negative, got " +
                                                std::to_string(ttl.count()) + " ms"};
}

CredentialInfo fromWire(wire::CredentialInfo::Reader credential) {
  CredentialInfo out;
  out.id = credential.getId();
  out.principal = toStd(credential.getPrincipal());
  out.issuer = credential.getIssuer();
  out.scoped = credential.getScoped();
  out.scope = fromWire(credential.getScope());
  out.expiresAtMs = credential.getExpiresAtMs();
  out.createdMs = credential.getCreatedMs();
  out.note = toStd(credential.getNote());
  return out;
}

PrincipalInfo fromWire(wire::PrincipalInfo::Reader principal) {
  PrincipalInfo out;
  out.name = toStd(principal.getName());
  out.rules = fromWire(principal.getRules());
  out.createdMs = principal.getCreatedMs();
  out.credentials = principal.getCredentials();
  return out;
}

Identity fromWire(wire::Auth::WhoamiResults::Reader whoami) {
  Identity out;
  out.principal = toStd(whoami.getPrincipal());
  out.credential = fromWire(whoami.getCredential());
  out.rules = fromWire(whoami.getRules());
  out.authenticated = whoami.getAuthenticated();
  return out;
}

Result<PrincipalInfo> fromWire(wire::PrincipalResult::Reader result) {
  if (result.isError()) return fromWire(result.getError());
  return fromWire(result.getPrincipal());
}

Result<std::vector<PrincipalInfo>> fromWire(wire::PrincipalListResult::Reader result) {
  if (result.isError()) return fromWire(result.getError());
  std::vector<PrincipalInfo> out;
  for (auto principal : result.getPrincipals())
    out.push_back(fromWire(principal));
  return out;
}

Result<Secret> fromWire(wire::SecretResult::Reader result) {
  if (result.isError()) return fromWire(result.getError());
  return Secret{fromWire(result.getCredential()), toStd(result.getSecret())};
}

Result<std::vector<CredentialInfo>> fromWire(wire::CredentialListResult::Reader result) {
  if (result.isError()) return fromWire(result.getError());
  std::vector<CredentialInfo> out;
  for (auto credential : result.getCredentials())
    out.push_back(fromWire(credential));
  return out;
}

}  // namespace sluice::detail
