#pragma once

// Translation between the wire schema (sluice::wire, schemas/rpc.capnp) and the public std
// types. Every wire <-> std conversion of the client library lives here, so a schema change
// touches one file. Readers are copied out completely: nothing returned points into a capnp
// message.
//
// Thread: any. These are pure functions over capnp readers and builders.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <capnp/list.h>
#include <kj/exception.h>

#include "sluice/client.h"
#include "sluice/error.h"
#include "sluice/schemas/rpc.capnp.h"
#include "sluice/types.h"

namespace sluice::detail {

// --- Errors ---------------------------------------------------------------------------------

// One-to-one by name; `unspecified` and codes newer than this library become kInternal.
Error fromWire(wire::Error::Reader error);
// DISCONNECTED -> kDisconnected; a broker's refusal thrown as "unauthenticated: <message>" or
// "permissionDenied: <message>" -> that code with the message; anything else -> kInternal
// with the description.
Error fromException(const kj::Exception& exception);

// --- Bytes and text --------------------------------------------------------------------------

std::string toStd(capnp::Text::Reader text);
std::string toStd(capnp::Data::Reader data);
// Borrows `bytes`; the reader is valid while `bytes` is.
capnp::Data::Reader asData(std::string_view bytes);
// Borrows `text`, which must be NUL-terminated (a std::string is); valid while `text` is.
capnp::Text::Reader asText(const std::string& text);

Headers fromWire(capnp::List<wire::Header>::Reader headers);
// Fills `out`, which the caller initialized with headers.size() elements.
void toWire(const Headers& headers, capnp::List<wire::Header>::Builder out);

// --- Publishing ------------------------------------------------------------------------------

void toWire(const OutgoingMessage& message, wire::PublishMessage::Builder out);
PublishAck fromWire(wire::PublishAck::Reader ack);
// The acks of one publish call, or its error. A reply whose ack count differs from
// `expected` (the number of messages sent) is a broker bug and becomes kInternal.
Result<std::vector<PublishAck>> fromWire(wire::PublishResult::Reader result, size_t expected);
// A routed publish's answer: per capturing topic, `expected` acks (else kInternal).
Result<RoutedAcks> fromWire(wire::RoutedPublishResult::Reader result, size_t expected);
// Bytes a message adds to a batch, as counted against ProducerOptions::maxBatchBytes.
size_t batchBytes(const OutgoingMessage& message);

// --- Delivered messages ----------------------------------------------------------------------

// Everything a Message carries except its subscription; see SubscriptionState::makeMessage.
struct DeliveryFields {
  uint64_t offset = 0;
  int64_t timestampMs = 0;
  std::optional<std::string> key;
  Headers headers;
  std::string payload;
  std::string id;
  uint32_t deliveries = 0;
  uint64_t deliveryId = 0;
  int64_t deliverAtMs = 0;
  int64_t expiresAtMs = 0;
  std::string subject;
};
DeliveryFields fromWire(wire::Delivery::Reader delivery);
// A message read by peek: it has no subscription, so it cannot be acknowledged.
Message peekedMessage(wire::Delivery::Reader delivery, const std::string& topic);

// --- Administration --------------------------------------------------------------------------

// Lists of texts (subject patterns).
std::vector<std::string> fromWire(capnp::List<capnp::Text>::Reader texts);
void toWire(const std::vector<std::string>& texts, capnp::List<capnp::Text>::Builder out);
TopicSettings fromWire(wire::TopicSettings::Reader settings);
// Error when a field cannot be expressed on the wire (a negative duration).
std::optional<Error> checkWireable(const TopicSettings& settings);
// Precondition: checkWireable(settings) returned nothing.
void toWire(const TopicSettings& settings, wire::TopicSettings::Builder out);

StartPosition fromWire(wire::StartPosition::Reader start);
void toWire(const StartPosition& start, wire::StartPosition::Builder out);

ConsumerInfo fromWire(wire::ConsumerInfo::Reader consumer);
GroupInfo fromWire(wire::GroupInfo::Reader group);
TopicInfo fromWire(wire::TopicInfo::Reader topic);
BrokerStats fromWire(wire::BrokerStats::Reader stats);
Result<ClusterStatus> fromWire(wire::ClusterStatusResult::Reader result);

Result<TopicInfo> fromWire(wire::TopicResult::Reader result);
Result<std::vector<TopicInfo>> fromWire(wire::TopicListResult::Reader result);
Result<GroupInfo> fromWire(wire::GroupResult::Reader result);
Result<std::vector<GroupInfo>> fromWire(wire::GroupListResult::Reader result);
Result<uint64_t> fromWire(wire::CountResult::Reader result);
Result<std::vector<Message>> fromWire(wire::PeekResult::Reader result, const std::string& topic);

// --- Authentication --------------------------------------------------------------------------

// Actions newer than this library are left out (they cannot be named in the public enum).
std::vector<Action> fromWire(capnp::List<wire::Action>::Reader actions);
Rule fromWire(wire::Rule::Reader rule);
std::vector<Rule> fromWire(capnp::List<wire::Rule>::Reader rules);
// Error when a rule cannot be expressed on the wire (an Action outside the enum).
std::optional<Error> checkWireable(const std::vector<Rule>& rules);
// Precondition: checkWireable(rules) returned nothing. Fills `out`, which the caller
// initialized with rules.size() elements.
void toWire(const std::vector<Rule>& rules, capnp::List<wire::Rule>::Builder out);
// Error when `ttl` is negative; `what` names it.
std::optional<Error> checkTtl(const char* what, std::chrono::milliseconds ttl);

CredentialInfo fromWire(wire::CredentialInfo::Reader credential);
PrincipalInfo fromWire(wire::PrincipalInfo::Reader principal);
Identity fromWire(wire::Auth::WhoamiResults::Reader whoami);

Result<PrincipalInfo> fromWire(wire::PrincipalResult::Reader result);
Result<std::vector<PrincipalInfo>> fromWire(wire::PrincipalListResult::Reader result);
Result<Secret> fromWire(wire::SecretResult::Reader result);
Result<std::vector<CredentialInfo>> fromWire(wire::CredentialListResult::Reader result);

}  // namespace sluice::detail
