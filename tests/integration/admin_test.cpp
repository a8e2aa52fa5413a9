// Topic and group administration against a real sluiced: describe, purge, delete, reset.

#include <algorithm>

#include "integration/broker_fixture.h"

namespace sluice::test {
namespace {

bool hasNoConsumers(Admin admin, std::string_view topic, std::string_view group) {
  auto info = admin.describeGroup(topic, group);
  return info.ok() && info.value().consumers.empty();
}

TEST_CASE("describe reports a topic's messages bytes offsets settings and groups",
          "[integration]") {
  Broker broker;
  int64_t before = nowMs();
  auto created = createTopic(broker.admin(), "metrics");
  CHECK(created.name == "metrics");
  CHECK(created.messages == 0);
  CHECK(created.bytes == 0);
  CHECK(created.firstOffset == 0);
  CHECK(created.lastOffset == 0);
  CHECK(created.groups.empty());
  CHECK(created.settings.maxMessageSize == 1024 * 1024);
  CHECK(created.settings.dedupWindow == std::chrono::minutes(2));
  CHECK(created.settings.maxMessages == 0);
  CHECK_FALSE(created.settings.workQueue);
  CHECK(created.createdMs >= before - 1);
  CHECK(created.createdMs <= nowMs() + 1);
  CHECK_THAT(outcome(broker.admin().createTopic("metrics")), IsError(ErrorCode::kTopicExists));

  publishPayloads(broker.producer(), "metrics", 3, "ten bytes");  // "ten bytes0".."ten bytes2"
  REQUIRE(broker.admin().createGroup("metrics", "alpha").ok());
  REQUIRE(broker.admin().createGroup("metrics", "beta", StartPosition::latest()).ok());

  auto topic = describeTopic(broker.admin(), "metrics");
  CHECK(topic.messages == 3);
  CHECK(topic.bytes == 30);
  CHECK(topic.firstOffset == 1);
  CHECK(topic.lastOffset == 3);
  CHECK(topic.publishedTotal == 3);
  std::vector<std::string> names;
  for (const auto& group : topic.groups)
    names.push_back(group.name);
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"alpha", "beta"});

  // Group state follows deliveries and acks.
  SubscribeOptions options;
  options.prefetch = 3;
  auto consumer = subscribe(broker.client(), "metrics", "alpha", options);
  auto received = receiveMessages(consumer, 3);
  REQUIRE(received.size() == 3);
  REQUIRE(received[0].ack().ok());
  auto alpha = describeGroup(broker.admin(), "metrics", "alpha");
  CHECK(alpha.topic == "metrics");
  CHECK(alpha.position == 4);
  CHECK(alpha.ackFloor == 2);
  CHECK(alpha.pending == 2);
  CHECK(alpha.lagMessages == 0);
  CHECK(alpha.delivered == 3);
  CHECK(alpha.acked == 1);
  REQUIRE(alpha.consumers.size() == 1);
  CHECK(alpha.consumers[0].id == consumer.id());
  CHECK(alpha.consumers[0].prefetch == 3);
  CHECK(alpha.consumers[0].inFlight == 2);
  auto beta = describeGroup(broker.admin(), "metrics", "beta");
  CHECK(beta.position == 4);
  CHECK(beta.lagMessages == 0);
  CHECK(beta.consumers.empty());

  auto groups = broker.admin().listGroups("metrics");
  REQUIRE(groups.ok());
  CHECK(groups.value().size() == 2);
  auto topics = broker.admin().listTopics();
  REQUIRE(topics.ok());
  REQUIRE(topics.value().size() == 1);
  CHECK(topics.value()[0].messages == 3);

  auto stats = broker.admin().stats();
  INFO(outcome(stats));
  REQUIRE(stats.ok());
  CHECK(stats.value().topics == 1);
  CHECK(stats.value().messages == 3);
  CHECK(stats.value().consumers == 1);
  CHECK(stats.value().publishedTotal == 3);
  CHECK_FALSE(stats.value().version.empty());

  // A purge empties the topic; offsets keep counting.
  auto purged = broker.admin().purgeTopic("metrics");
  REQUIRE(purged.ok());
  CHECK(purged.value() == 3);
  topic = describeTopic(broker.admin(), "metrics");
  CHECK(topic.messages == 0);
  CHECK(topic.bytes == 0);
  CHECK(topic.firstOffset == 0);
  CHECK(topic.lastOffset == 3);
  CHECK(broker.producer().publish("metrics", "next").value().offset == 4);
}

TEST_CASE("deleting a topic removes its messages and groups and ends its consumers",
          "[integration]") {
  Broker broker;
  createTopic(broker.admin(), "doomed");
  createTopic(broker.admin(), "kept");
  publishPayloads(broker.producer(), "doomed", 5);
  publishPayloads(broker.producer(), "kept", 2);
  auto consumer = subscribe(broker.client(), "doomed", "g");
  REQUIRE(receiveMessages(consumer, 5).size() == 5);

  auto deleted = broker.admin().deleteTopic("doomed");
  INFO(outcome(deleted));
  REQUIRE(deleted.ok());
  CHECK(deleted.value() == 5);
  CHECK_THAT(outcome(broker.admin().describeTopic("doomed")), IsError(ErrorCode::kTopicNotFound));
  CHECK_THAT(outcome(consumer.receive(10s)), IsError(ErrorCode::kTopicNotFound));
  CHECK_THAT(outcome(broker.producer().publish("doomed", "x")), IsError(ErrorCode::kTopicNotFound));
  auto topics = broker.admin().listTopics();
  REQUIRE(topics.ok());
  REQUIRE(topics.value().size() == 1);
  CHECK(topics.value()[0].name == "kept");
  CHECK(describeTopic(broker.admin(), "kept").messages == 2);
}

TEST_CASE("a group with connected consumers can be neither reset nor deleted", "[integration]") {
  Broker broker;
  createTopic(broker.admin(), "tasks");
  publishPayloads(broker.producer(), "tasks", 3);
  auto consumer = subscribe(broker.client(), "tasks", "workers");
  auto received = receiveMessages(consumer, 3);
  REQUIRE(received.size() == 3);
  REQUIRE(received[0].ack().ok());

  auto reset = broker.admin().resetGroup("tasks", "workers", StartPosition::earliest());
  CHECK_THAT(outcome(reset), IsError(ErrorCode::kGroupBusy));
  if (!reset.ok()) CHECK_FALSE(reset.error().message.empty());
  CHECK_THAT(outcome(broker.admin().deleteGroup("tasks", "workers")),
             IsError(ErrorCode::kGroupBusy));

  // Nothing changed: the consumer keeps its messages and can acknowledge them.
  auto group = describeGroup(broker.admin(), "tasks", "workers");
  CHECK(group.ackFloor == 2);
  CHECK(group.pending == 2);
  CHECK(group.consumers.size() == 1);
  CHECK(received[1].ack().ok());
  CHECK(received[2].ack().ok());

  // Once the consumer is gone, both work.
  consumer.close();
  REQUIRE(eventually([&] { return hasNoConsumers(broker.admin(), "tasks", "workers"); }));
  CHECK(broker.admin().resetGroup("tasks", "workers", StartPosition::earliest()).ok());
  CHECK(broker.admin().deleteGroup("tasks", "workers").ok());
}

TEST_CASE("an idle group can be reset to replay messages and deleted with its pending ones",
          "[integration]") {
  Broker broker;
  createTopic(broker.admin(), "tasks");
  publishPayloads(broker.producer(), "tasks", 5);
  {
    auto consumer = subscribe(broker.client(), "tasks", "workers");
    auto received = receiveMessages(consumer, 5);
    REQUIRE(received.size() == 5);
    ackAll({received[0], received[1], received[2]});  // 4 and 5 stay pending.
    consumer.close();
  }
  REQUIRE(eventually([&] { return hasNoConsumers(broker.admin(), "tasks", "workers"); }));

  SECTION("reset to the earliest message") {
    auto reset = broker.admin().resetGroup("tasks", "workers", StartPosition::earliest());
    INFO(outcome(reset));
    REQUIRE(reset.ok());
    CHECK(reset.value().position == 1);
    CHECK(reset.value().pending == 0);
    auto consumer = subscribe(broker.client(), "tasks", "workers");
    CHECK(offsetsOf(receiveMessages(consumer, 5)) == offsetRange(1, 5));
    checkNothingArrives(consumer, 100ms);
  }
  SECTION("reset to an offset") {
    auto reset = broker.admin().resetGroup("tasks", "workers", StartPosition::atOffset(2));
    REQUIRE(reset.ok());
    CHECK(reset.value().position == 2);
    auto consumer = subscribe(broker.client(), "tasks", "workers");
    CHECK(offsetsOf(receiveMessages(consumer, 4)) == offsetRange(2, 5));
    checkNothingArrives(consumer, 100ms);
  }
  SECTION("reset to the latest message forgets the pending ones") {
    auto reset = broker.admin().resetGroup("tasks", "workers", StartPosition::latest());
    REQUIRE(reset.ok());
    CHECK(reset.value().position == 6);
    CHECK(reset.value().pending == 0);
    auto consumer = subscribe(broker.client(), "tasks", "workers");
    checkNothingArrives(consumer);
    publishPayloads(broker.producer(), "tasks", 1);
    CHECK(offsetsOf(receiveMessages(consumer, 1)) == offsetRange(6, 6));
  }
  SECTION("delete") {
    auto deleted = broker.admin().deleteGroup("tasks", "workers");
    INFO(outcome(deleted));
    REQUIRE(deleted.ok());
    CHECK(deleted.value() == 2);
    CHECK_THAT(outcome(broker.admin().describeGroup("tasks", "workers")),
               IsError(ErrorCode::kGroupNotFound));
    auto groups = broker.admin().listGroups("tasks");
    REQUIRE(groups.ok());
    CHECK(groups.value().empty());
    // The topic's messages are untouched.
    CHECK(describeTopic(broker.admin(), "tasks").messages == 5);
  }
}

}  // namespace
}  // namespace sluice::test
