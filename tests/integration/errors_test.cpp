// Bad input gets a typed error with a readable message and changes nothing. (Garbage on the
// socket, which must close only that connection, is in hostile_test.cpp.)

#include <string>

#include "integration/broker_fixture.h"

namespace sluice::test {
namespace {

using Catch::Matchers::Contains;

TEST_CASE("invalid topic and group names are rejected with a message that states the rule",
          "[integration]") {
  Broker broker;
  createTopic(broker.admin(), "valid");

  SECTION("topic names") {
    const std::vector<std::string> badNames = {
        "", std::string(201, 'a'), "orders/eu", "has space", "caf\xc3\xa9", "tab\there", "star*"};
    for (const auto& name : badNames) {
      INFO("topic name \"" << name << "\" (" << name.size() << " bytes)");
      auto created = broker.admin().createTopic(name);
      CHECK_THAT(outcome(created), IsError(ErrorCode::kInvalidArgument));
      if (!created.ok()) CHECK_THAT(created.error().message, Contains("1-200 characters"));
      auto published = broker.producer().publish(name, "x");
      CHECK_THAT(outcome(published), IsError(ErrorCode::kInvalidArgument));
      if (!published.ok()) CHECK_THAT(published.error().message, Contains("1-200 characters"));
      CHECK_THAT(outcome(broker.client().subscribe(name, "g")),
                 IsError(ErrorCode::kInvalidArgument));
      CHECK_THAT(outcome(broker.admin().describeTopic(name)), IsError(ErrorCode::kInvalidArgument));
    }
    for (const char* name : {".leading", "trailing.", "double..dot"}) {
      INFO("topic name " << name);
      CHECK_THAT(outcome(broker.admin().createTopic(name)), IsError(ErrorCode::kInvalidArgument));
    }
    // Nothing was created by the rejected calls.
    auto topics = broker.admin().listTopics();
    REQUIRE(topics.ok());
    REQUIRE(topics.value().size() == 1);
    CHECK(topics.value()[0].name == "valid");

    // The edges of the rule are accepted.
    CHECK(broker.admin().createTopic(std::string(200, 'z')).ok());
    CHECK(broker.admin().createTopic("A-Z_a-z.0-9").ok());
    CHECK(broker.admin().createTopic("x").ok());
  }

  SECTION("group names") {
    const std::vector<std::string> badNames = {"", std::string(201, 'g'), "bad group", "g/1",
                                               "naïve"};
    for (const auto& name : badNames) {
      INFO("group name \"" << name << "\" (" << name.size() << " bytes)");
      auto subscribed = broker.client().subscribe("valid", name);
      CHECK_THAT(outcome(subscribed), IsError(ErrorCode::kInvalidArgument));
      if (!subscribed.ok()) CHECK_THAT(subscribed.error().message, Contains("1-200 characters"));
      auto created = broker.admin().createGroup("valid", name);
      CHECK_THAT(outcome(created), IsError(ErrorCode::kInvalidArgument));
      if (!created.ok()) CHECK_THAT(created.error().message, Contains("1-200 characters"));
    }
    auto groups = broker.admin().listGroups("valid");
    REQUIRE(groups.ok());
    CHECK(groups.value().empty());
    CHECK(broker.admin().createGroup("valid", std::string(200, 'g')).ok());
  }
}

TEST_CASE("an unknown topic or group is reported as not found by every call", "[integration]") {
  Broker broker;
  createTopic(broker.admin(), "known");
  Admin& admin = broker.admin();

  auto published = broker.producer().publish("missing.topic", "x");
  CHECK_THAT(outcome(published), IsError(ErrorCode::kTopicNotFound));
  if (!published.ok()) CHECK_THAT(published.error().message, Contains("missing.topic"));
  OutgoingMessage message;
  message.payload = "x";
  CHECK_THAT(outcome(broker.producer().publishBatch("missing.topic", {message})),
             IsError(ErrorCode::kTopicNotFound));
  CHECK_THAT(outcome(broker.producer().publishAsync("missing.topic", message).get()),
             IsError(ErrorCode::kTopicNotFound));
  CHECK_THAT(outcome(broker.client().subscribe("missing.topic", "g")),
             IsError(ErrorCode::kTopicNotFound));
  CHECK_THAT(outcome(admin.describeTopic("missing.topic")), IsError(ErrorCode::kTopicNotFound));
  CHECK_THAT(outcome(admin.deleteTopic("missing.topic")), IsError(ErrorCode::kTopicNotFound));
  CHECK_THAT(outcome(admin.purgeTopic("missing.topic")), IsError(ErrorCode::kTopicNotFound));
  CHECK_THAT(outcome(admin.createGroup("missing.topic", "g")), IsError(ErrorCode::kTopicNotFound));
  CHECK_THAT(outcome(admin.listGroups("missing.topic")), IsError(ErrorCode::kTopicNotFound));
  CHECK_THAT(outcome(admin.describeGroup("missing.topic", "g")),
             IsError(ErrorCode::kTopicNotFound));
  CHECK_THAT(outcome(admin.resetGroup("missing.topic", "g", StartPosition::earliest())),
             IsError(ErrorCode::kTopicNotFound));
  CHECK_THAT(outcome(admin.deleteGroup("missing.topic", "g")), IsError(ErrorCode::kTopicNotFound));
  CHECK_THAT(outcome(admin.peek("missing.topic", 1, 10)), IsError(ErrorCode::kTopicNotFound));

  CHECK_THAT(outcome(admin.describeGroup("known", "nobody")), IsError(ErrorCode::kGroupNotFound));
  CHECK_THAT(outcome(admin.resetGroup("known", "nobody", StartPosition::earliest())),
             IsError(ErrorCode::kGroupNotFound));
  CHECK_THAT(outcome(admin.deleteGroup("known", "nobody")), IsError(ErrorCode::kGroupNotFound));

  // Nothing was created on the way.
  auto topics = admin.listTopics();
  REQUIRE(topics.ok());
  CHECK(topics.value().size() == 1);
  CHECK(describeTopic(admin, "known").groups.empty());
}

TEST_CASE("acknowledging an earlier delivery of a message fails with staleDelivery",
          "[integration]") {
  Broker broker;
  createTopic(broker.admin(), "tasks");
  publishPayloads(broker.producer(), "tasks", 1);
  SubscribeOptions options;
  options.prefetch = 1;
  auto consumer = subscribe(broker.client(), "tasks", "workers", options);
  auto first = receiveMessages(consumer, 1);
  REQUIRE(first.size() == 1);
  CHECK(first[0].deliveryId() != 0);
  REQUIRE(first[0].nack().ok());
  auto again = receiveMessages(consumer, 1);
  REQUIRE(again.size() == 1);
  CHECK(again[0].offset() == first[0].offset());
  CHECK(again[0].deliveries() == 2);
  CHECK(again[0].deliveryId() != first[0].deliveryId());

  auto stale = first[0].ack();
  CHECK_THAT(outcome(stale), IsError(ErrorCode::kStaleDelivery));
  if (!stale.ok()) CHECK_THAT(stale.error().message, Contains("is not the current one"));
  CHECK_THAT(outcome(first[0].nackAsync().get()), IsError(ErrorCode::kStaleDelivery));
  // Both handles at once (likely one ack call): the stale one fails, the current one succeeds.
  auto staleAgain = first[0].ackAsync();
  auto current = again[0].ackAsync();
  CHECK_THAT(outcome(staleAgain.get()), IsError(ErrorCode::kStaleDelivery));
  CHECK(current.get().ok());
  CHECK(describeGroup(broker.admin(), "tasks", "workers").pending == 0);
}

TEST_CASE("acknowledging a message that is not pending fails with notPending", "[integration]") {
  Broker broker;
  createTopic(broker.admin(), "tasks");
  publishPayloads(broker.producer(), "tasks", 2);
  auto consumer = subscribe(broker.client(), "tasks", "workers");
  auto received = receiveMessages(consumer, 2);
  REQUIRE(received.size() == 2);

  REQUIRE(received[0].ack().ok());
  auto again = received[0].ack();
  CHECK_THAT(outcome(again), IsError(ErrorCode::kNotPending));
  if (!again.ok()) CHECK_FALSE(again.error().message.empty());
  CHECK_THAT(outcome(received[0].nack()), IsError(ErrorCode::kNotPending));
  CHECK_THAT(outcome(received[0].ackAsync().get()), IsError(ErrorCode::kNotPending));

  // A peeked message belongs to no group.
  auto peeked = broker.admin().peek("tasks", 2, 1);
  REQUIRE(peeked.ok());
  REQUIRE(peeked.value().size() == 1);
  CHECK(peeked.value()[0].deliveries() == 0);
  CHECK_THAT(outcome(peeked.value()[0].ack()), IsError(ErrorCode::kInvalidArgument));

  // The failed calls changed nothing: offset 2 is still pending and acknowledgeable.
  auto group = describeGroup(broker.admin(), "tasks", "workers");
  CHECK(group.pending == 1);
  CHECK(received[1].ack().ok());
}

TEST_CASE("a subscribe with prefetch above 65536 is rejected; 0 makes a fetch consumer",
          "[integration]") {
  Broker broker;
  createTopic(broker.admin(), "tasks");
  SubscribeOptions options;
  options.prefetch = 65537;
  auto tooMany = broker.client().subscribe("tasks", "workers", options);
  CHECK_THAT(outcome(tooMany), IsError(ErrorCode::kInvalidArgument));
  CHECK_THAT(outcome(tooMany), Contains("prefetch must be 1-65536 (or 0 for a fetch consumer)"));
  // A fetch consumer cannot take a handler, which would wait for pushes that never come.
  options.prefetch = 0;
  auto handled = broker.client().subscribe("tasks", "workers", options, [](Message) {});
  CHECK_THAT(outcome(handled), IsError(ErrorCode::kInvalidArgument));
  // A rejected subscribe creates no group.
  CHECK(describeTopic(broker.admin(), "tasks").groups.empty());
  auto fetcher = broker.client().subscribe("tasks", "workers", options);
  REQUIRE(fetcher.ok());
  checkNothingArrives(fetcher.value());
  options.prefetch = 1;
  CHECK(broker.client().subscribe("tasks", "workers", options).ok());
}

TEST_CASE("a payload over the size limit is rejected and nothing of its batch is stored",
          "[integration]") {
  Broker broker;

  SECTION("the default limit of 1 MiB") {
    auto created = createTopic(broker.admin(), "blobs");
    CHECK(created.settings.maxMessageSize == 1024 * 1024);
    auto tooLarge = broker.producer().publish("blobs", std::string(1024 * 1024 + 1, 'b'));
    CHECK_THAT(outcome(tooLarge), IsError(ErrorCode::kMessageTooLarge));
    if (!tooLarge.ok()) CHECK_FALSE(tooLarge.error().message.empty());
    CHECK(describeTopic(broker.admin(), "blobs").lastOffset == 0);
    auto atLimit = broker.producer().publish("blobs", std::string(1024 * 1024, 'b'));
    INFO(outcome(atLimit));
    REQUIRE(atLimit.ok());
    CHECK(atLimit.value().offset == 1);
  }

  SECTION("a topic's own limit, in a batch") {
    TopicSettings settings;
    settings.maxMessageSize = 1024;
    auto created = createTopic(broker.admin(), "small", settings);
    CHECK(created.settings.maxMessageSize == 1024);
    std::vector<OutgoingMessage> batch(3);
    batch[0].payload = "fine";
    batch[1].payload = std::string(1025, 's');
    batch[2].payload = "also fine";
    auto rejected = broker.producer().publishBatch("small", batch);
    CHECK_THAT(outcome(rejected), IsError(ErrorCode::kMessageTooLarge));
    auto topic = describeTopic(broker.admin(), "small");
    CHECK(topic.messages == 0);
    CHECK(topic.lastOffset == 0);
    CHECK(peekAll(broker.admin(), "small").empty());

    batch[1].payload = std::string(1024, 's');
    auto accepted = broker.producer().publishBatch("small", batch);
    INFO(outcome(accepted));
    REQUIRE(accepted.ok());
    REQUIRE(accepted.value().size() == 3);
    CHECK(accepted.value()[0].offset == 1);
    CHECK(accepted.value()[2].offset == 3);
  }
}

TEST_CASE("malformed messages and topic settings are rejected and change nothing",
          "[integration]") {
  Broker broker;
  createTopic(broker.admin(), "orders");
  auto rejected = [&](OutgoingMessage message) {
    return outcome(broker.producer().publishBatch("orders", {textMessage("fine"), message}));
  };

  SECTION("a message id with a space") {
    OutgoingMessage message = textMessage("x");
    message.id = "has space";
    CHECK_THAT(rejected(message), IsError(ErrorCode::kInvalidArgument));
  }
  SECTION("a message id over 256 bytes") {
    OutgoingMessage message = textMessage("x");
    message.id = std::string(257, 'i');
    CHECK_THAT(rejected(message), IsError(ErrorCode::kInvalidArgument));
  }
  SECTION("more than 64 headers") {
    OutgoingMessage message = textMessage("x");
    for (int i = 0; i < 65; ++i)
      message.headers["h" + std::to_string(i)] = "v";
    CHECK_THAT(rejected(message), IsError(ErrorCode::kInvalidArgument));
  }
  SECTION("a batch over the broker's 10000 messages") {
    std::vector<OutgoingMessage> batch(10001, textMessage("x"));
    CHECK_THAT(outcome(broker.producer().publishBatch("orders", batch)),
               IsError(ErrorCode::kLimitExceeded));
  }
  SECTION("topic settings") {
    TopicSettings badDeadLetter;
    badDeadLetter.deadLetterTopic = "no such/name";
    CHECK_THAT(outcome(broker.admin().createTopic("t1", badDeadLetter)),
               IsError(ErrorCode::kInvalidArgument));
    TopicSettings tooSmall;
    tooSmall.maxBytes = 1000;  // Below the default max message size.
    CHECK_THAT(outcome(broker.admin().createTopic("t2", tooSmall)),
               IsError(ErrorCode::kInvalidArgument));
    auto topics = broker.admin().listTopics();
    REQUIRE(topics.ok());
    CHECK(topics.value().size() == 1);
  }
  auto topic = describeTopic(broker.admin(), "orders");
  CHECK(topic.messages == 0);
  CHECK(topic.lastOffset == 0);
}

TEST_CASE("publishing to a missing topic creates it only with --auto-create-topics",
          "[integration]") {
  SECTION("without the flag") {
    Broker broker;
    CHECK_THAT(outcome(broker.producer().publish("fresh.topic", "x")),
               IsError(ErrorCode::kTopicNotFound));
    CHECK_THAT(outcome(broker.admin().describeTopic("fresh.topic")),
               IsError(ErrorCode::kTopicNotFound));
  }
  SECTION("with the flag") {
    Broker broker({"--auto-create-topics"});
    auto first = broker.producer().publish("fresh.topic", "x");
    INFO(outcome(first));
    REQUIRE(first.ok());
    CHECK(first.value().offset == 1);
    CHECK(broker.producer().publish("fresh.topic", "y").value().offset == 2);
    auto topic = describeTopic(broker.admin(), "fresh.topic");
    CHECK(topic.messages == 2);
    // Names are still checked.
    CHECK_THAT(outcome(broker.producer().publish("bad name", "x")),
               IsError(ErrorCode::kInvalidArgument));
    auto topics = broker.admin().listTopics();
    REQUIRE(topics.ok());
    CHECK(topics.value().size() == 1);
  }
}

}  // namespace
}  // namespace sluice::test
