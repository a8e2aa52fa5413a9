#include "core/broker.h"

#include <catch2/catch.hpp>

#include "harness.h"

using namespace sluice;
using namespace sluice::core;
using namespace sluice::core::testing;
using Catch::Matchers::Contains;

TEST_CASE("publish assigns dense offsets from 1 and answers after commit", "[core]") {
  Harness h;
  h.createTopic("orders");
  auto first = h.publish("orders", 3);
  auto second = h.publish("orders", 2);
  REQUIRE(first.size() == 3);
  CHECK(first[0].offset == 1);
  CHECK(first[2].offset == 3);
  CHECK(second[0].offset == 4);
  CHECK(second[1].offset == 5);
  auto topic = h.broker().describeTopic("orders");
  REQUIRE(topic.ok());
  CHECK(topic.value().messages == 5);
  CHECK(topic.value().firstOffset == 1);
  CHECK(topic.value().lastOffset == 5);
}

TEST_CASE("publishing to a missing topic fails unless auto-create is on", "[core]") {
  SECTION("off") {
    Harness h;
    std::vector<MessageData> one(1);
    auto acks = h.wait(h.broker().publish("nope", one));
    REQUIRE_FALSE(acks.ok());
    CHECK(acks.status().code() == Code::kTopicNotFound);
    CHECK_THAT(acks.status().message(), Contains("\"nope\""));
  }
  SECTION("on") {
    BrokerOptions options;
    options.autoCreateTopics = true;
    Harness h(options);
    auto acks = h.publish("fresh.topic", 2);
    CHECK(acks[1].offset == 2);
    CHECK(h.broker().describeTopic("fresh.topic").ok());
  }
}

TEST_CASE("an oversized message rejects the whole batch and stores nothing", "[core]") {
  Harness h;
  RequestedSettings settings;
  settings.maxMessageSize = 1024;
  h.createTopic("small", settings);
  std::vector<MessageData> batch(3);
  batch[1].payload = std::string(1025, 'x');
  auto acks = h.wait(h.broker().publish("small", batch));
  REQUIRE_FALSE(acks.ok());
  CHECK(acks.status().code() == Code::kMessageTooLarge);
  CHECK_THAT(acks.status().message(), Contains("message 2 of 3") && Contains("1025"));
  CHECK(h.broker().describeTopic("small").value().messages == 0);
}

TEST_CASE("a repeated message id returns the original offset and stores nothing", "[core]") {
  Harness h;
  h.createTopic("orders");
  std::vector<MessageData> batch(1);
  batch[0].id = "order-1";
  auto first = h.wait(h.broker().publish("orders", batch)).value();
  auto again = h.wait(h.broker().publish("orders", batch)).value();
  CHECK_FALSE(first[0].duplicate);
  CHECK(again[0].duplicate);
  CHECK(again[0].offset == first[0].offset);
  CHECK(h.broker().describeTopic("orders").value().messages == 1);
}

TEST_CASE("topic create, duplicate create, purge and delete", "[core]") {
  Harness h;
  h.createTopic("orders");
  auto dup = h.wait(h.broker().createTopic("orders", {}));
  REQUIRE_FALSE(dup.ok());
  CHECK(dup.status().code() == Code::kTopicExists);

  h.publish("orders", 4);
  auto purged = h.wait(h.broker().purgeTopic("orders"));
  REQUIRE(purged.ok());
  CHECK(purged.value() == 4);
  auto after = h.publish("orders", 1);
  CHECK(after[0].offset == 5);  // Offsets keep counting after a purge.

  auto deleted = h.wait(h.broker().deleteTopic("orders"));
  REQUIRE(deleted.ok());
  CHECK(deleted.value() == 1);
  CHECK(h.broker().describeTopic("orders").status().code() == Code::kTopicNotFound);
  CHECK(h.broker().listTopics().value().empty());
}

TEST_CASE("a dead-letter topic is created with the topic that names it", "[core]") {
  Harness h;
  RequestedSettings settings;
  settings.maxDeliveries = 2;
  settings.deadLetterTopic = "orders.dlq";
  h.createTopic("orders", settings);
  CHECK(h.broker().describeTopic("orders.dlq").ok());
}

TEST_CASE("topics, offsets and groups survive a restart", "[core]") {
  Harness h;
  h.createTopic("orders");
  h.publish("orders", 3);
  auto group = h.wait(h.broker().createGroup("orders", "billing", StartAt{}));
  REQUIRE(group.ok());
  h.restart();
  auto topic = h.broker().describeTopic("orders");
  REQUIRE(topic.ok());
  CHECK(topic.value().lastOffset == 3);
  REQUIRE(topic.value().groups.size() == 1);
  CHECK(topic.value().groups[0].name == "billing");
  CHECK(h.publish("orders", 1)[0].offset == 4);
}

TEST_CASE("peek reads by offset without touching groups", "[core]") {
  Harness h;
  h.createTopic("orders");
  h.publish("orders", 5);
  auto messages = h.broker().peek("orders", 2, 2);
  REQUIRE(messages.ok());
  REQUIRE(messages.value().size() == 2);
  CHECK(messages.value()[0].offset == 2);
  CHECK(messages.value()[1].data.payload == "m2");
  CHECK(h.broker().peek("orders", 1, 0).status().code() == Code::kInvalidArgument);
}
