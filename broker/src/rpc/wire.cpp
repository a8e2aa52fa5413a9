#include "rpc/wire.h"

namespace sluice::rpc {

wire::ErrorCode toWire(Code code) {
  return static_cast<wire::ErrorCode>(code);  // Code's values are the schema's (status.h).
}

void setError(wire::Error::Builder out, const Status& status) {
  out.setCode(toWire(status.code()));
  out.setMessage(status.message());
}

core::StartAt fromWire(wire::StartPosition::Reader start) {
  core::StartAt at;
  switch (start.which()) {
    case wire::StartPosition::EARLIEST:
      at.kind = core::StartAt::Kind::kEarliest;
      break;
    case wire::StartPosition::LATEST:
      at.kind = core::StartAt::Kind::kLatest;
      break;
    case wire::StartPosition::OFFSET:
      at.kind = core::StartAt::Kind::kOffset;
      at.offset = start.getOffset();
      break;
    case wire::StartPosition::TIMESTAMP_MS:
      at.kind = core::StartAt::Kind::kTimestamp;
      at.timestampMs = start.getTimestampMs();
      break;
  }
  return at;
}

core::RequestedSettings fromWire(wire::TopicSettings::Reader in) {
  core::RequestedSettings out;
  out.maxAgeMs = in.getMaxAgeMs();
  out.maxBytes = in.getMaxBytes();
  out.maxMessages = in.getMaxMessages();
  out.maxMessageSize = in.getMaxMessageSize();
  out.workQueue = in.getWorkQueue();
  out.maxDeliveries = in.getMaxDeliveries();
  out.deadLetterTopic = toString(in.getDeadLetterTopic());
  out.dedupWindowMs = in.getDedupWindowMs();
  out.defaultTtlMs = in.getDefaultTtlMs();
  out.deadLetterExpired = in.getDeadLetterExpired();
  for (auto subject : in.getSubjects())  // Counted by the caller (patternsOf) first.
    out.subjects.push_back(toString(subject));
  return out;
}

MessageData fromWire(wire::PublishMessage::Reader in) {
  MessageData out;
  out.payload = toString(in.getPayload());
  if (in.getHasKey()) out.key = toString(in.getKey());
  auto headers = in.getHeaders();
  out.headers.reserve(headers.size());
  for (auto header : headers) {
    out.headers.emplace_back(toString(header.getKey()), toString(header.getValue()));
  }
  out.id = toString(in.getId());
  out.deliverAtMs = in.getDeliverAtMs();
  out.delayMs = in.getDelayMs();
  out.hasTtl = in.getHasTtl();
  out.ttlMs = in.getTtlMs();
  return out;
}

void toWire(const TopicConfig& in, wire::TopicSettings::Builder out) {
  out.setMaxAgeMs(in.maxAgeMs);
  out.setMaxBytes(in.maxBytes);
  out.setMaxMessages(in.maxMessages);
  out.setMaxMessageSize(in.maxMessageSize);
  out.setWorkQueue(in.workQueue);
  out.setMaxDeliveries(in.maxDeliveries);
  out.setDeadLetterTopic(in.deadLetterTopic);
  out.setDedupWindowMs(in.dedupWindowMs);
  out.setDefaultTtlMs(in.defaultTtlMs);
  out.setDeadLetterExpired(in.deadLetterExpired);
  toWire(in.subjects, out.initSubjects(static_cast<unsigned>(in.subjects.size())));
}

void toWire(const core::GroupView& in, wire::GroupInfo::Builder out) {
  out.setTopic(in.topic);
  out.setName(in.name);
  out.setPosition(in.position);
  out.setAckFloor(in.ackFloor);
  out.setPending(in.pending);
  out.setLagMessages(in.lagMessages);
  out.setLagMs(in.lagMs);
  out.setDelivered(in.delivered);
  out.setAcked(in.acked);
  out.setNacked(in.nacked);
  out.setRedelivered(in.redelivered);
  out.setDeadLettered(in.deadLettered);
  out.setExpired(in.expired);
  out.setKeyOrdered(in.keyOrdered);
  out.setKeyBlocked(in.keyBlocked);
  out.setScheduled(in.scheduled);
  out.setCreatedMs(in.createdMs);
  toWire(in.filter, out.initFilter(static_cast<unsigned>(in.filter.size())));
  auto consumers = out.initConsumers(static_cast<unsigned>(in.consumers.size()));
  for (unsigned i = 0; i < in.consumers.size(); ++i) {
    const core::ConsumerView& c = in.consumers[i];
    consumers[i].setId(c.id);
    consumers[i].setPeer(c.peer);
    consumers[i].setPrefetch(c.prefetch);
    consumers[i].setInFlight(c.inFlight);
    consumers[i].setConnectedMs(c.connectedMs);
  }
}

void toWire(const core::TopicView& in, wire::TopicInfo::Builder out) {
  out.setName(in.name);
  toWire(in.settings, out.initSettings());
  out.setMessages(in.messages);
  out.setBytes(in.bytes);
  out.setFirstOffset(in.firstOffset);
  out.setLastOffset(in.lastOffset);
  out.setCreatedMs(in.createdMs);
  out.setPublishedTotal(in.publishedTotal);
  out.setPublishRate(in.publishRate);
  out.setExpired(in.expired);
  out.setScheduled(in.scheduled);
  out.setKeyBlocked(in.keyBlocked);
  auto groups = out.initGroups(static_cast<unsigned>(in.groups.size()));
  for (unsigned i = 0; i < in.groups.size(); ++i)
    toWire(in.groups[i], groups[i]);
  out.setLeader(in.leader);
  toWire(in.replicas, out.initReplicas(static_cast<unsigned>(in.replicas.size())));
  toWire(in.inSync, out.initInSync(static_cast<unsigned>(in.inSync.size())));
}

void toWire(const core::ClusterView& in, wire::ClusterStatus::Builder out) {
  out.setClusterId(in.clusterId);
  out.setLeader(in.leader);
  out.setEpoch(in.epoch);
  out.setMinInsync(in.minInsync);
  out.setLastSeq(in.lastSeq);
  toWire(in.inSync, out.initInSync(static_cast<unsigned>(in.inSync.size())));
  auto brokers = out.initBrokers(static_cast<unsigned>(in.brokers.size()));
  for (unsigned i = 0; i < in.brokers.size(); ++i) {
    const core::ReplicaView& b = in.brokers[i];
    brokers[i].setId(b.id);
    brokers[i].setRpcAddress(b.rpcAddress);
    brokers[i].setReplicationAddress(b.replicationAddress);
    brokers[i].setAlive(b.alive);
    brokers[i].setInSync(b.inSync);
    brokers[i].setAckedSeq(b.ackedSeq);
    brokers[i].setCaughtUpAgoMs(b.caughtUpAgoMs);
  }
}

void toWire(const core::ClusterView& in, std::string_view self, bool serves, std::string_view why,
            wire::Hello::Builder out) {
  out.setClusterId(in.clusterId);
  out.setBrokerId(std::string(self));
  out.setServes(serves);
  out.setLeader(in.leader);
  out.setEpoch(in.epoch);
  out.setWhy(std::string(why));
  std::vector<const core::ReplicaView*> live;
  for (const core::ReplicaView& b : in.brokers) {
    if (b.id == in.leader) {
      out.setLeaderRpc(b.rpcAddress);
      out.setLeaderTls(b.tlsAddress);
    }
    if (b.alive && !b.rpcAddress.empty()) live.push_back(&b);
  }
  auto brokers = out.initBrokers(static_cast<unsigned>(live.size()));
  for (unsigned i = 0; i < live.size(); ++i) {
    brokers[i].setId(live[i]->id);
    brokers[i].setRpc(live[i]->rpcAddress);
    brokers[i].setTls(live[i]->tlsAddress);
  }
}

void toWire(const core::StatsView& in, wire::BrokerStats::Builder out) {
  out.setUptimeMs(in.uptimeMs);
  out.setTopics(in.topics);
  out.setMessages(in.messages);
  out.setBytes(in.bytes);
  out.setStorageUsed(in.storageUsed);
  out.setStorageLimit(in.storageLimit);
  out.setConnections(in.connections);
  out.setConsumers(in.consumers);
  out.setPublishedTotal(in.publishedTotal);
  out.setDeliveredTotal(in.deliveredTotal);
  out.setPublishRate(in.publishRate);
  out.setDeliveryRate(in.deliveryRate);
  out.setCommits(in.commits);
}

void toWire(const StoredMessageData& in, uint32_t deliveries, std::string_view topic,
            wire::Delivery::Builder out) {
  out.setOffset(in.offset);
  out.setTimestampMs(in.timestampMs);
  if (in.data.key) {
    out.setHasKey(true);
    out.setKey(asData(*in.data.key));
  }
  auto headers = out.initHeaders(static_cast<unsigned>(in.data.headers.size()));
  for (unsigned i = 0; i < in.data.headers.size(); ++i) {
    headers[i].setKey(in.data.headers[i].first);
    headers[i].setValue(in.data.headers[i].second);
  }
  out.setPayload(asData(in.data.payload));
  out.setDeliveries(deliveries);
  out.setId(in.data.id);
  out.setDeliverAtMs(in.data.deliverAtMs);
  out.setExpiresAtMs(in.expiresAtMs());
  const std::string& subject = in.data.subject;
  out.setSubject(subject.empty() ? capnp::Text::Reader(topic.data(), topic.size())
                                 : capnp::Text::Reader(subject.data(), subject.size()));
}

void toWire(const core::Delivery& delivery, std::string_view topic, wire::Delivery::Builder out) {
  toWire(delivery.message, delivery.deliveries, topic, out);
  out.setDeliveryId(delivery.deliveryId);
}

void toWire(const std::vector<core::Delivery>& deliveries, std::string_view topic,
            capnp::List<wire::Delivery>::Builder out) {
  for (unsigned i = 0; i < deliveries.size(); ++i)
    toWire(deliveries[i], topic, out[i]);
}

Result<std::vector<std::string>> patternsOf(capnp::List<capnp::Text>::Reader list, size_t limit,
                                            std::string_view what) {
  if (list.size() > limit) {
    return Status(Code::kLimitExceeded, std::string(what) + ": at most " + std::to_string(limit) +
                                            " subject patterns, got " +
                                            std::to_string(list.size()));
  }
  std::vector<std::string> out;
  out.reserve(list.size());
  for (auto text : list)
    out.push_back(toString(text));
  return out;
}

void toWire(const std::vector<std::string>& texts, capnp::List<capnp::Text>::Builder out) {
  for (unsigned i = 0; i < texts.size(); ++i)
    out.set(i, capnp::Text::Reader(texts[i].data(), texts[i].size()));
}

}  // namespace sluice::rpc
