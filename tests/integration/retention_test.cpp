// Deduplication, retention limits, work queues and the storage limit against a real sluiced.

#include "integration/broker_fixture.h"

namespace sluice::test {
namespace {

OutgoingMessage withId(std::string payload, std::string id) {
  OutgoingMessage message;
  message.payload = std::move(payload);
  message.id = std::move(id);
  return message;
}

TEST_CASE(
    "a repeated message id within the dedup window returns the original offset and "
    "stores nothing",
    "[integration]") {
  Broker broker;
  auto created = createTopic(broker.admin(), "orders");
  CHECK(created.settings.dedupWindow == std::chrono::minutes(2));  // The broker default.

  auto first = broker.producer().publish("orders", withId("one", "a"));
  REQUIRE(first.ok());
  CHECK(first.value().offset == 1);
  CHECK_FALSE(first.value().duplicate);

  auto repeat = broker.producer().publish("orders", withId("one, resent", "a"));
  REQUIRE(repeat.ok());
  CHECK(repeat.value().duplicate);
  CHECK(repeat.value().offset == 1);

  auto other = broker.producer().publish("orders", withId("two", "b"));
  REQUIRE(other.ok());
  CHECK_FALSE(other.value().duplicate);
  CHECK(other.value().offset == 2);

  // In a batch: a repeat of a stored id and a repeat inside the batch itself.
  auto batch = broker.producer().publishBatch(
      "orders", {withId("three", "c"), withId("one, third time", "a"), withId("three again", "c")});
  INFO(outcome(batch));
  REQUIRE(batch.ok());
  REQUIRE(batch.value().size() == 3);
  CHECK(batch.value()[0].offset == 3);
  CHECK_FALSE(batch.value()[0].duplicate);
  CHECK(batch.value()[1].offset == 1);
  CHECK(batch.value()[1].duplicate);
  CHECK(batch.value()[2].offset == 3);
  CHECK(batch.value()[2].duplicate);

  // Messages without an id are never deduplicated.
  CHECK(broker.producer().publish("orders", "same").value().offset == 4);
  CHECK(broker.producer().publish("orders", "same").value().offset == 5);

  auto topic = describeTopic(broker.admin(), "orders");
  CHECK(topic.messages == 5);
  CHECK(topic.lastOffset == 5);
  auto stored = peekAll(broker.admin(), "orders");
  REQUIRE(stored.size() == 5);
  CHECK(stored[0].payload() == "one");
  CHECK(stored[2].payload() == "three");
}

TEST_CASE("a message id is accepted again once the dedup window has passed", "[integration]") {
  constexpr auto kWindow = 1000ms;
  Broker broker;
  TopicSettings settings;
  settings.dedupWindow = kWindow;
  auto created = createTopic(broker.admin(), "orders", settings);
  CHECK(created.settings.dedupWindow == kWindow);
  auto publishedAt = std::chrono::steady_clock::now();
  REQUIRE(broker.producer().publish("orders", withId("x", "x")).value().offset == 1);
  auto repeat = broker.producer().publish("orders", withId("x", "x"));
  REQUIRE(repeat.ok());
  CHECK(repeat.value().duplicate);

  PublishAck last;
  auto answeredAt = publishedAt;
  CHECK(eventually([&] {
    auto ack = broker.producer().publish("orders", withId("x", "x"));
    answeredAt = std::chrono::steady_clock::now();
    if (!ack.ok()) return false;
    last = ack.value();
    return !last.duplicate;
  }));
  // Not forgotten early: the accepted repeat was answered a full window after the original.
  CHECK(answeredAt - publishedAt >= kWindow);
  CHECK(last.offset == 2);
  CHECK(describeTopic(broker.admin(), "orders").messages == 2);
}

TEST_CASE("maxMessages keeps only the newest messages", "[integration]") {
  Broker broker;
  TopicSettings settings;
  settings.maxMessages = 5;
  createTopic(broker.admin(), "recent", settings);
  publishPayloads(broker.producer(), "recent", 12);

  auto topic = describeTopic(broker.admin(), "recent");
  CHECK(topic.messages == 5);
  CHECK(topic.firstOffset == 8);
  CHECK(topic.lastOffset == 12);
  CHECK(offsetsOf(peekAll(broker.admin(), "recent")) == offsetRange(8, 12));

  // A group created now starts at the oldest retained message.
  auto consumer = subscribe(broker.client(), "recent", "late");
  auto received = receiveMessages(consumer, 5);
  CHECK(offsetsOf(received) == offsetRange(8, 12));
}

TEST_CASE("maxBytes keeps the retained bytes under the limit", "[integration]") {
  Broker broker;
  TopicSettings settings;
  settings.maxBytes = 1000;
  settings.maxMessageSize = 200;  // maxBytes may not be below it.
  createTopic(broker.admin(), "sized", settings);
  for (int i = 0; i < 10; ++i) {
    REQUIRE(broker.producer().publish("sized", std::string(200, static_cast<char>('a' + i))).ok());
  }
  auto topic = describeTopic(broker.admin(), "sized");
  CHECK(topic.bytes <= 1000);
  CHECK(topic.messages == 5);
  CHECK(topic.firstOffset == 6);
  CHECK(topic.lastOffset == 10);
  auto stored = peekAll(broker.admin(), "sized");
  REQUIRE(stored.size() == 5);
  CHECK(stored.front().payload() == std::string(200, 'f'));
}

TEST_CASE("maxAge drops messages older than the limit", "[integration]") {
  Broker broker;
  TopicSettings settings;
  settings.maxAge = 1000ms;
  createTopic(broker.admin(), "ephemeral", settings);
  publishPayloads(broker.producer(), "ephemeral", 3);
  CHECK(describeTopic(broker.admin(), "ephemeral").messages == 3);

  // Removed by the periodic sweep.
  TopicInfo topic;
  CHECK(eventually([&] {
    topic = describeTopic(broker.admin(), "ephemeral");
    return topic.messages == 0;
  }));
  CHECK(topic.bytes == 0);
  CHECK(topic.firstOffset == 0);
  CHECK(topic.lastOffset == 3);
  CHECK(peekAll(broker.admin(), "ephemeral").empty());

  auto fresh = broker.producer().publish("ephemeral", "fresh");
  REQUIRE(fresh.ok());
  CHECK(fresh.value().offset == 4);
  CHECK(describeTopic(broker.admin(), "ephemeral").messages == 1);
}

TEST_CASE("a work-queue topic drops messages once every group acknowledged them", "[integration]") {
  Broker broker;
  TopicSettings settings;
  settings.workQueue = true;
  auto created = createTopic(broker.admin(), "tasks", settings);
  CHECK(created.settings.workQueue);
  REQUIRE(broker.admin().createGroup("tasks", "fast").ok());
  REQUIRE(broker.admin().createGroup("tasks", "slow").ok());
  publishPayloads(broker.producer(), "tasks", 4);

  auto fast = subscribe(broker.client(), "tasks", "fast");
  auto slow = subscribe(broker.client(), "tasks", "slow");
  auto fastGot = receiveMessages(fast, 4);
  auto slowGot = receiveMessages(slow, 4);
  REQUIRE(fastGot.size() == 4);
  REQUIRE(slowGot.size() == 4);
  ackAll(fastGot);
  ackAll({slowGot[0], slowGot[1]});

  // Only what both groups acknowledged goes (if "fast" alone sufficed, 0 would remain).
  TopicInfo topic;
  CHECK(eventually([&] {
    topic = describeTopic(broker.admin(), "tasks");
    return topic.messages == 2;
  }));
  CHECK(topic.firstOffset == 3);
  CHECK(offsetsOf(peekAll(broker.admin(), "tasks")) == offsetRange(3, 4));

  ackAll({slowGot[2], slowGot[3]});
  CHECK(eventually([&] {
    topic = describeTopic(broker.admin(), "tasks");
    return topic.messages == 0;
  }));
  CHECK(topic.lastOffset == 4);
}

TEST_CASE(
    "at the storage limit publishes fail while consumers acks deletes and purges work and "
    "a purge makes room",
    "[integration]") {
  Broker broker({"--max-storage", "16MiB"});  // The smallest limit sluiced accepts.
  createTopic(broker.admin(), "bulk");
  createTopic(broker.admin(), "side");
  publishPayloads(broker.producer(), "side", 10);
  SubscribeOptions options;
  options.prefetch = 1;
  auto consumer = subscribe(broker.client(), "bulk", "readers", options);

  const std::string chunk(64 * 1024, 'x');
  Result<PublishAck> last = Error{};
  size_t stored = 0;
  for (int i = 0; i < 600; ++i) {  // 37.5 MiB: far past the limit.
    last = broker.producer().publish("bulk", chunk);
    if (!last.ok()) break;
    ++stored;
  }
  INFO(stored << " messages of 64 KiB were stored");
  CHECK_THAT(outcome(last), IsError(ErrorCode::kStorageFull));
  CHECK(stored >= 10);
  CHECK(stored < 16 * 16);
  if (!last.ok()) CHECK_FALSE(last.error().message.empty());
  // Still full: a further publish is refused too, and nothing half-stored is visible.
  CHECK_THAT(outcome(broker.producer().publish("bulk", chunk)), IsError(ErrorCode::kStorageFull));
  CHECK(describeTopic(broker.admin(), "bulk").messages == stored);

  // Consuming and acknowledging keep working.
  auto message = consumer.receive(10s);
  INFO(outcome(message));
  REQUIRE(message.ok());
  CHECK(message.value().payload() == chunk);
  CHECK(message.value().ack().ok());
  // So do peeks, deletes and purges.
  CHECK(peekAll(broker.admin(), "side").size() == 10);
  auto deleted = broker.admin().deleteTopic("side");
  INFO(outcome(deleted));
  CHECK(deleted.ok());
  auto purged = broker.admin().purgeTopic("bulk");
  INFO(outcome(purged));
  REQUIRE(purged.ok());
  CHECK(purged.value() == stored);

  // Without a restart, publishing works again.
  Result<PublishAck> after = Error{};
  CHECK(eventually([&] {
    after = broker.producer().publish("bulk", chunk);
    return after.ok();
  }));
  INFO(outcome(after));
  CHECK((after.ok() && after.value().offset == stored + 1));
  CHECK(broker.process().running());
}

}  // namespace
}  // namespace sluice::test
