#include <catch2/catch.hpp>

#include <capnp/message.h>
#include <capnp/schema.h>

#include "convert.h"

using namespace sluice;
using namespace std::chrono_literals;

namespace {

template <typename T>
typename T::Builder newRoot(capnp::MallocMessageBuilder& message) {
  return message.initRoot<T>();
}

}  // namespace

TEST_CASE("topic settings survive a round trip through the wire", "[client]") {
  TopicSettings settings;
  settings.maxAge = 3600000ms;
  settings.maxBytes = 1ull << 40;
  settings.maxMessages = 12345;
  settings.maxMessageSize = 65536;
  settings.workQueue = true;
  settings.maxDeliveries = 5;
  settings.deadLetterTopic = "orders.dead";
  settings.dedupWindow = 120000ms;

  capnp::MallocMessageBuilder message;
  auto wire = newRoot<wire::TopicSettings>(message);
  detail::toWire(settings, wire);
  CHECK(wire.getMaxAgeMs() == 3600000);
  TopicSettings back = detail::fromWire(wire.asReader());
  CHECK(back.maxAge == settings.maxAge);
  CHECK(back.maxBytes == settings.maxBytes);
  CHECK(back.maxMessages == settings.maxMessages);
  CHECK(back.maxMessageSize == settings.maxMessageSize);
  CHECK(back.workQueue == settings.workQueue);
  CHECK(back.maxDeliveries == settings.maxDeliveries);
  CHECK(back.deadLetterTopic == settings.deadLetterTopic);
  CHECK(back.dedupWindow == settings.dedupWindow);
}

TEST_CASE("negative durations in topic settings are refused before reaching the wire", "[client]") {
  TopicSettings settings;
  CHECK_FALSE(detail::checkWireable(settings).has_value());
  settings.maxAge = -1ms;
  auto problem = detail::checkWireable(settings);
  REQUIRE(problem.has_value());
  CHECK(problem->code == ErrorCode::kInvalidArgument);
  CHECK_THAT(problem->message, Catch::Matchers::Contains("maxAge must not be negative"));
  settings.maxAge = 0ms;
  settings.dedupWindow = -5ms;
  REQUIRE(detail::checkWireable(settings).has_value());
  CHECK_THAT(detail::checkWireable(settings)->message, Catch::Matchers::Contains("dedupWindow"));
}

TEST_CASE("a wire duration beyond int64 milliseconds saturates instead of wrapping", "[client]") {
  capnp::MallocMessageBuilder message;
  auto wire = newRoot<wire::TopicSettings>(message);
  wire.setMaxAgeMs(UINT64_MAX);
  CHECK(detail::fromWire(wire.asReader()).maxAge == std::chrono::milliseconds::max());
}

TEST_CASE("every start position kind survives a round trip", "[client]") {
  const StartPosition positions[] = {StartPosition::earliest(), StartPosition::latest(),
                                     StartPosition::atOffset(77),
                                     StartPosition::atTime(1700000000123)};
  for (const auto& position : positions) {
    capnp::MallocMessageBuilder message;
    auto wire = newRoot<wire::StartPosition>(message);
    detail::toWire(position, wire);
    StartPosition back = detail::fromWire(wire.asReader());
    CHECK(back.kind == position.kind);
    CHECK(back.offset == position.offset);
    CHECK(back.timestampMs == position.timestampMs);
  }
}

TEST_CASE("an outgoing message keeps key presence, headers, id and binary payload", "[client]") {
  OutgoingMessage out;
  out.payload = std::string("bin\0ary", 7);
  out.key = std::string();  // Present but empty.
  out.headers = {{"content-type", "json"}, {"trace", ""}};
  out.id = "order-17";

  capnp::MallocMessageBuilder message;
  auto wire = newRoot<wire::PublishMessage>(message);
  detail::toWire(out, wire);
  auto reader = wire.asReader();
  CHECK(detail::toStd(reader.getPayload()) == out.payload);
  CHECK(reader.getHasKey());
  CHECK(reader.getKey().size() == 0);
  CHECK(detail::fromWire(reader.getHeaders()) == out.headers);
  CHECK(detail::toStd(reader.getId()) == "order-17");

  SECTION("no key is not an empty key") {
    OutgoingMessage keyless;
    keyless.payload = "x";
    capnp::MallocMessageBuilder other;
    auto w = newRoot<wire::PublishMessage>(other);
    detail::toWire(keyless, w);
    CHECK_FALSE(w.asReader().getHasKey());
  }
}

TEST_CASE("a delivery becomes a peeked message with every field copied", "[client]") {
  capnp::MallocMessageBuilder message;
  auto result = newRoot<wire::PeekResult>(message);
  auto list = result.initMessages(2);
  list[0].setOffset(5);
  list[0].setTimestampMs(1700000000000);
  list[0].setKey(detail::asData("k"));
  list[0].setHasKey(true);
  auto headers = list[0].initHeaders(1);
  headers[0].setKey("a");
  headers[0].setValue("b");
  list[0].setPayload(detail::asData(std::string("p\0q", 3)));
  list[0].setDeliveries(0);
  list[0].setId("id-5");
  list[1].setOffset(6);

  auto messages = detail::fromWire(result.asReader(), "orders");
  REQUIRE(messages.ok());
  REQUIRE(messages.value().size() == 2);
  const Message& first = messages.value()[0];
  CHECK(first.offset() == 5);
  CHECK(first.timestampMs() == 1700000000000);
  CHECK(first.key() == std::optional<std::string>("k"));
  CHECK(first.headers() == Headers{{"a", "b"}});
  CHECK(first.payload() == std::string("p\0q", 3));
  CHECK(first.id() == "id-5");
  CHECK(first.deliveries() == 0);
  CHECK(first.topic() == "orders");
  CHECK_FALSE(messages.value()[1].key().has_value());

  SECTION("and cannot be acknowledged") {
    auto acked = first.ack();
    REQUIRE_FALSE(acked.ok());
    CHECK(acked.error().code == ErrorCode::kInvalidArgument);
    CHECK(acked.error().message ==
          "message was read by peek; only delivered messages can be acknowledged");
    CHECK(first.ackAsync().get().error().code == ErrorCode::kInvalidArgument);
    CHECK(first.nack(10ms).error().code == ErrorCode::kInvalidArgument);
  }
}

TEST_CASE("topic and group info are copied field by field", "[client]") {
  capnp::MallocMessageBuilder message;
  auto topic = newRoot<wire::TopicInfo>(message);
  topic.setName("orders");
  topic.initSettings().setMaxMessages(9);
  topic.setMessages(3);
  topic.setBytes(300);
  topic.setFirstOffset(2);
  topic.setLastOffset(4);
  topic.setCreatedMs(11);
  topic.setPublishedTotal(4);
  topic.setPublishRate(1.5);
  auto group = topic.initGroups(1)[0];
  group.setTopic("orders");
  group.setName("billing");
  group.setPosition(4);
  group.setAckFloor(3);
  group.setPending(1);
  group.setLagMessages(1);
  group.setLagMs(20);
  group.setDelivered(5);
  group.setAcked(2);
  group.setNacked(1);
  group.setRedelivered(1);
  group.setDeadLettered(0);
  group.setCreatedMs(12);
  auto consumer = group.initConsumers(1)[0];
  consumer.setId(99);
  consumer.setPeer("127.0.0.1:5555");
  consumer.setPrefetch(256);
  consumer.setInFlight(1);
  consumer.setConnectedMs(13);

  TopicInfo info = detail::fromWire(topic.asReader());
  CHECK(info.name == "orders");
  CHECK(info.settings.maxMessages == 9);
  CHECK(info.messages == 3);
  CHECK(info.bytes == 300);
  CHECK(info.firstOffset == 2);
  CHECK(info.lastOffset == 4);
  CHECK(info.createdMs == 11);
  CHECK(info.publishedTotal == 4);
  CHECK(info.publishRate == 1.5);
  REQUIRE(info.groups.size() == 1);
  const GroupInfo& g = info.groups[0];
  CHECK(g.topic == "orders");
  CHECK(g.name == "billing");
  CHECK(g.position == 4);
  CHECK(g.ackFloor == 3);
  CHECK(g.pending == 1);
  CHECK(g.lagMessages == 1);
  CHECK(g.lagMs == 20);
  CHECK(g.delivered == 5);
  CHECK(g.acked == 2);
  CHECK(g.nacked == 1);
  CHECK(g.redelivered == 1);
  CHECK(g.deadLettered == 0);
  CHECK(g.createdMs == 12);
  REQUIRE(g.consumers.size() == 1);
  CHECK(g.consumers[0].id == 99);
  CHECK(g.consumers[0].peer == "127.0.0.1:5555");
  CHECK(g.consumers[0].prefetch == 256);
  CHECK(g.consumers[0].inFlight == 1);
  CHECK(g.consumers[0].connectedMs == 13);
}

TEST_CASE("broker stats are copied field by field", "[client]") {
  capnp::MallocMessageBuilder message;
  auto stats = newRoot<wire::BrokerStats>(message);
  stats.setVersion("0.1.0");
  stats.setUptimeMs(1);
  stats.setTopics(2);
  stats.setMessages(3);
  stats.setBytes(4);
  stats.setStorageUsed(5);
  stats.setStorageLimit(6);
  stats.setConnections(7);
  stats.setConsumers(8);
  stats.setPublishedTotal(9);
  stats.setDeliveredTotal(10);
  stats.setPublishRate(11.5);
  stats.setDeliveryRate(12.5);
  stats.setCommits(13);
  BrokerStats s = detail::fromWire(stats.asReader());
  CHECK(s.version == "0.1.0");
  CHECK(s.uptimeMs == 1);
  CHECK(s.topics == 2);
  CHECK(s.messages == 3);
  CHECK(s.bytes == 4);
  CHECK(s.storageUsed == 5);
  CHECK(s.storageLimit == 6);
  CHECK(s.connections == 7);
  CHECK(s.consumers == 8);
  CHECK(s.publishedTotal == 9);
  CHECK(s.deliveredTotal == 10);
  CHECK(s.publishRate == 11.5);
  CHECK(s.deliveryRate == 12.5);
  CHECK(s.commits == 13);
}

TEST_CASE("wire error codes map one-to-one onto client codes", "[client]") {
  struct Row {
    wire::ErrorCode wire;
    ErrorCode client;
  };
  const Row rows[] = {
      {wire::ErrorCode::INVALID_ARGUMENT, ErrorCode::kInvalidArgument},
      {wire::ErrorCode::TOPIC_NOT_FOUND, ErrorCode::kTopicNotFound},
      {wire::ErrorCode::GROUP_NOT_FOUND, ErrorCode::kGroupNotFound},
      {wire::ErrorCode::MESSAGE_TOO_LARGE, ErrorCode::kMessageTooLarge},
      {wire::ErrorCode::STORAGE_FULL, ErrorCode::kStorageFull},
      {wire::ErrorCode::STORAGE_FAILED, ErrorCode::kStorageFailed},
      {wire::ErrorCode::TOPIC_EXISTS, ErrorCode::kTopicExists},
      {wire::ErrorCode::NOT_PENDING, ErrorCode::kNotPending},
      {wire::ErrorCode::GROUP_BUSY, ErrorCode::kGroupBusy},
      {wire::ErrorCode::LIMIT_EXCEEDED, ErrorCode::kLimitExceeded},
      {wire::ErrorCode::SHUTTING_DOWN, ErrorCode::kShuttingDown},
      {wire::ErrorCode::STALE_DELIVERY, ErrorCode::kStaleDelivery},
      {wire::ErrorCode::TRANSACTION_CONFLICT, ErrorCode::kTransactionConflict},
  };
  for (const auto& row : rows) {
    capnp::MallocMessageBuilder message;
    auto error = newRoot<wire::Error>(message);
    error.setCode(row.wire);
    error.setMessage("the text");
    Error converted = detail::fromWire(error.asReader());
    CHECK(converted.code == row.client);
    CHECK(converted.message == "the text");
  }

  SECTION("unspecified and unknown codes become internal, keeping the text") {
    capnp::MallocMessageBuilder message;
    auto error = newRoot<wire::Error>(message);
    error.setCode(static_cast<wire::ErrorCode>(200));
    error.setMessage("from the future");
    Error converted = detail::fromWire(error.asReader());
    CHECK(converted.code == ErrorCode::kInternal);
    CHECK_THAT(converted.message, Catch::Matchers::Contains("from the future"));
    CHECK_THAT(converted.message, Catch::Matchers::Contains("200"));
  }
}

TEST_CASE("kj exceptions become disconnected or internal errors", "[client]") {
  kj::Exception lost(kj::Exception::Type::DISCONNECTED, __FILE__, __LINE__, kj::str("peer closed"));
  Error disconnected = detail::fromException(lost);
  CHECK(disconnected.code == ErrorCode::kDisconnected);
  CHECK_THAT(disconnected.message, Catch::Matchers::Contains("peer closed"));

  kj::Exception failed(kj::Exception::Type::FAILED, __FILE__, __LINE__,
                       kj::str("internal error in publish; see broker log"));
  Error internal = detail::fromException(failed);
  CHECK(internal.code == ErrorCode::kInternal);
  CHECK(internal.message == "internal error in publish; see broker log");
}

TEST_CASE("a publish reply with the wrong number of acks is an internal error", "[client]") {
  capnp::MallocMessageBuilder message;
  auto result = newRoot<wire::PublishResult>(message);
  auto acks = result.initAcks(2);
  acks[0].setOffset(1);
  acks[1].setOffset(2);
  acks[1].setDuplicate(true);
  auto ok = detail::fromWire(result.asReader(), 2);
  REQUIRE(ok.ok());
  CHECK(ok.value()[1].offset == 2);
  CHECK(ok.value()[1].duplicate);
  auto wrong = detail::fromWire(result.asReader(), 3);
  REQUIRE_FALSE(wrong.ok());
  CHECK(wrong.error().code == ErrorCode::kInternal);
}

TEST_CASE("every error code of the schema reaches the library under its schema name", "[client]") {
  auto enumerants = capnp::Schema::from<wire::ErrorCode>().getEnumerants();
  REQUIRE(enumerants.size() > 1);
  for (auto enumerant : enumerants) {
    std::string name = enumerant.getProto().getName().cStr();
    INFO(name);
    capnp::MallocMessageBuilder message;
    auto error = message.initRoot<wire::Error>();
    error.setCode(static_cast<wire::ErrorCode>(enumerant.getOrdinal()));
    error.setMessage("m");
    Error converted = detail::fromWire(error.asReader());
    if (enumerant.getOrdinal() == 0) {
      CHECK(converted.code == ErrorCode::kInternal);  // `unspecified`
    } else {
      CHECK(std::string(errorCodeName(converted.code)) == name);
      CHECK(converted.message == "m");
    }
  }
  // A code from a newer broker: internal, naming the number.
  capnp::MallocMessageBuilder message;
  auto error = message.initRoot<wire::Error>();
  error.setCode(static_cast<wire::ErrorCode>(enumerants.size()));
  Error newer = detail::fromWire(error.asReader());
  CHECK(newer.code == ErrorCode::kInternal);
  CHECK_THAT(newer.message,
             Catch::Matchers::Contains("broker error code " + std::to_string(enumerants.size())));
}
