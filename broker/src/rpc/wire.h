#pragma once

// Conversions between core's types and the wire structs of schemas/rpc.capnp. The one place
// where Status codes become wire ErrorCodes. Thread: kj.

#include <string>
#include <string_view>
#include <vector>

#include <capnp/blob.h>

#include "common/status.h"
#include "core/broker.h"
#include "sluice/schemas/rpc.capnp.h"

namespace sluice::rpc {

wire::ErrorCode toWire(Code code);
void setError(wire::Error::Builder out, const Status& status);

inline std::string toString(capnp::Text::Reader text) {
  return std::string(text.cStr(), text.size());
}
inline std::string toString(capnp::Data::Reader data) {
  return std::string(reinterpret_cast<const char*>(data.begin()), data.size());
}
inline capnp::Data::Reader asData(const std::string& bytes) {
  return capnp::Data::Reader(reinterpret_cast<const capnp::byte*>(bytes.data()), bytes.size());
}

core::StartAt fromWire(wire::StartPosition::Reader start);
core::RequestedSettings fromWire(wire::TopicSettings::Reader settings);
MessageData fromWire(wire::PublishMessage::Reader message);

void toWire(const TopicConfig& settings, wire::TopicSettings::Builder out);
void toWire(const core::GroupView& view, wire::GroupInfo::Builder out);
void toWire(const core::TopicView& view, wire::TopicInfo::Builder out);
void toWire(const core::ClusterView& view, wire::ClusterStatus::Builder out);
// Broker.hello's answer from broker `self` of `view` (a standalone broker: empty clusterId);
// serves: it serves clients; why: when it does not.
void toWire(const core::ClusterView& view, std::string_view self, bool serves, std::string_view why,
            wire::Hello::Builder out);
void toWire(const core::StatsView& view, wire::BrokerStats::Builder out);
// A message of `topic` (its subject when it has none of its own).
void toWire(const StoredMessageData& message, uint32_t deliveries, std::string_view topic,
            wire::Delivery::Builder out);
// A delivery to a consumer: the message, its delivery count and its deliveryId.
void toWire(const core::Delivery& delivery, std::string_view topic, wire::Delivery::Builder out);
void toWire(const std::vector<core::Delivery>& deliveries, std::string_view topic,
            capnp::List<wire::Delivery>::Builder out);
// A list of subject patterns, refused (kLimitExceeded, naming `what`) past `limit` before
// anything is copied.
Result<std::vector<std::string>> patternsOf(capnp::List<capnp::Text>::Reader list, size_t limit,
                                            std::string_view what);
void toWire(const std::vector<std::string>& texts, capnp::List<capnp::Text>::Builder out);

}  // namespace sluice::rpc
