// Subject routing through the client library and a real sluiced: routed publishes stored in
// every capturing topic, subjects on deliveries and peeks, pattern changes, filtered groups,
// and bad input refused with typed errors.

#include <signal.h>

#include <future>
#include <map>
#include <set>

#include "integration/broker_fixture.h"

namespace sluice::test {
namespace {

using Catch::Matchers::Contains;
using Names = std::vector<std::string>;

TopicSettings capturing(Names patterns) {
  TopicSettings settings;
  settings.subjects = std::move(patterns);
  return settings;
}

std::vector<OutgoingMessage> texts(int count, const std::string& prefix) {
  std::vector<OutgoingMessage> out;
  for (int i = 0; i < count; ++i)
    out.push_back(textMessage(prefix + std::to_string(i)));
  return out;
}

TEST_CASE("a publish to a subject lands in every capturing topic, with its subject",
          "[integration][routing]") {
  Broker broker;
  CHECK(createTopic(broker.admin(), "orders", capturing({"orders.>"})).settings.subjects ==
        Names{"orders.>"});
  createTopic(broker.admin(), "audit", capturing({">"}));
  createTopic(broker.admin(), "payments");

  auto routed = broker.producer().publishSubject("orders.eu.created", texts(3, "o"));
  REQUIRE(outcome(routed) == "ok");
  REQUIRE(routed.value().size() == 2);
  CHECK(routed.value()[0].first == "audit");
  CHECK(routed.value()[1].first == "orders");
  CHECK(routed.value()[1].second[2].offset == 3);

  auto route = broker.admin().route("payments");
  REQUIRE(outcome(route) == "ok");
  CHECK(route.value() == Names{"audit", "payments"});

  auto consumer = subscribe(broker.client(), "audit", "log");
  auto received = receiveMessages(consumer, 3);
  REQUIRE(received.size() == 3);
  CHECK(received[0].subject() == "orders.eu.created");
  CHECK(received[0].topic() == "audit");
  ackAll(received);

  // Published to a topic directly, a message's subject is its topic's name.
  publishPayloads(broker.producer(), "payments", 1);
  auto peeked = peekAll(broker.admin(), "payments");
  REQUIRE(peeked.size() == 1);
  CHECK(peeked[0].subject() == "payments");
  auto orders = peekAll(broker.admin(), "orders");
  REQUIRE(orders.size() == 3);
  CHECK(orders[1].subject() == "orders.eu.created");

  SECTION("nothing captures it: noRoute, nothing stored") {
    REQUIRE(outcome(broker.admin().changeSubjects("audit", {}, {">"})) == "ok");
    CHECK_THAT(outcome(broker.producer().publishSubject("invoices.paid", texts(1, "x"))),
               IsError(ErrorCode::kNoRoute));
    CHECK(describeTopic(broker.admin(), "orders").messages == 3);
    CHECK(describeTopic(broker.admin(), "audit").messages == 3);
  }
  SECTION("bad subjects are refused naming the rule") {
    auto wild = broker.producer().publishSubject("orders.*", texts(1, "x"));
    CHECK_THAT(outcome(wild), IsError(ErrorCode::kInvalidArgument));
    CHECK_THAT(outcome(wild), Contains("wildcard"));
    CHECK_THAT(outcome(broker.producer().publishSubject("orders..x", texts(1, "x"))),
               IsError(ErrorCode::kInvalidArgument));
    CHECK_THAT(outcome(broker.producer().publishSubject(std::string(201, 'a'), texts(1, "x"))),
               Contains("201 characters"));
    CHECK_THAT(outcome(broker.admin().route("a b")), IsError(ErrorCode::kInvalidArgument));
    CHECK(describeTopic(broker.admin(), "audit").messages == 3);
  }
}

TEST_CASE("patterns change on a live topic and persist; bad patterns are refused",
          "[integration][routing]") {
  Broker broker;
  createTopic(broker.admin(), "eu");
  auto changed = broker.admin().changeSubjects("eu", {"*.eu.>"});
  REQUIRE(outcome(changed) == "ok");
  CHECK(changed.value().settings.subjects == Names{"*.eu.>"});
  REQUIRE(outcome(broker.producer().publishSubject("orders.eu.paid", texts(1, "a"))) == "ok");

  CHECK_THAT(outcome(broker.admin().changeSubjects("eu", {"eu.a*"})),
             IsError(ErrorCode::kInvalidArgument));
  CHECK_THAT(outcome(broker.admin().changeSubjects("eu", {">.eu"})), Contains("before its last"));
  CHECK_THAT(outcome(broker.admin().changeSubjects("eu", {}, {"missing"})),
             IsError(ErrorCode::kInvalidArgument));
  CHECK_THAT(outcome(broker.admin().changeSubjects("nope", {"x"})),
             IsError(ErrorCode::kTopicNotFound));
  Names many;
  for (int i = 0; i < 40; ++i)
    many.push_back("p" + std::to_string(i));
  CHECK_THAT(outcome(broker.admin().changeSubjects("eu", many)),
             IsError(ErrorCode::kLimitExceeded));
  TopicSettings tooMany = capturing(many);
  CHECK_THAT(outcome(broker.admin().createTopic("crowded", tooMany)),
             IsError(ErrorCode::kLimitExceeded));

  broker.restart(SIGKILL);
  CHECK(describeTopic(broker.admin(), "eu").settings.subjects == Names{"*.eu.>"});
  auto route = broker.admin().route("orders.eu.paid");
  REQUIRE(outcome(route) == "ok");
  CHECK(route.value() == Names{"eu"});
  auto stored = peekAll(broker.admin(), "eu");
  REQUIRE(stored.size() == 1);
  CHECK(stored[0].subject() == "orders.eu.paid");
}

TEST_CASE("a filtered group receives only matching messages and its lag counts only them",
          "[integration][routing]") {
  Broker broker;
  createTopic(broker.admin(), "orders", capturing({"orders.>"}));
  auto group =
      broker.admin().createGroup("orders", "eu", StartPosition::earliest(), false, {"orders.eu.*"});
  REQUIRE(outcome(group) == "ok");
  CHECK(group.value().filter == Names{"orders.eu.*"});
  for (int i = 0; i < 5; ++i) {
    REQUIRE(outcome(broker.producer().publishSubject("orders.eu.created", texts(2, "eu"))) == "ok");
    REQUIRE(outcome(broker.producer().publishSubject("orders.us.created", texts(3, "us"))) == "ok");
  }
  CHECK(describeGroup(broker.admin(), "orders", "eu").lagMessages == 10);
  CHECK(describeTopic(broker.admin(), "orders").messages == 25);

  SubscribeOptions options;
  options.filter = {"orders.eu.*"};
  auto consumer = subscribe(broker.client(), "orders", "eu", options);
  auto received = receiveMessages(consumer, 10);
  REQUIRE(received.size() == 10);
  for (const Message& message : received) {
    CHECK(message.subject() == "orders.eu.created");
    CHECK(message.payload().rfind("eu", 0) == 0);
  }
  checkNothingArrives(consumer);
  ackAll(received);
  GroupInfo after = describeGroup(broker.admin(), "orders", "eu");
  CHECK(after.lagMessages == 0);
  CHECK(after.pending == 0);

  SubscribeOptions other;
  other.filter = {"orders.us.*"};
  auto mismatch = broker.client().subscribe("orders", "eu", other);
  CHECK_THAT(outcome(mismatch), IsError(ErrorCode::kInvalidArgument));
  CHECK_THAT(outcome(mismatch), Contains("orders.eu.*"));

  broker.restart(SIGKILL);
  REQUIRE(outcome(broker.producer().publishSubject("orders.eu.paid", texts(1, "eu"))) == "ok");
  REQUIRE(outcome(broker.producer().publishSubject("orders.us.paid", texts(1, "us"))) == "ok");
  GroupInfo restarted = describeGroup(broker.admin(), "orders", "eu");
  CHECK(restarted.filter == Names{"orders.eu.*"});
  CHECK(restarted.lagMessages == 1);
}

TEST_CASE("routed publishes queued asynchronously are batched and answered per message",
          "[integration][routing]") {
  Broker broker;
  createTopic(broker.admin(), "orders", capturing({"orders.>"}));
  createTopic(broker.admin(), "audit", capturing({">"}));
  createTopic(broker.admin(), "orders.eu");  // Its own name: a topic queue of the same name.
  std::vector<std::future<Result<RoutedAck>>> routed;
  std::vector<std::future<Result<PublishAck>>> direct;
  for (int i = 0; i < 500; ++i) {
    routed.push_back(broker.producer().publishSubjectAsync("orders.eu", textMessage("r")));
    if (i % 5 == 0) direct.push_back(broker.producer().publishAsync("orders.eu", textMessage("d")));
  }
  REQUIRE(outcome(broker.producer().flush()) == "ok");
  std::map<std::string, std::set<uint64_t>> offsets;
  for (auto& future : routed) {
    auto ack = future.get();
    REQUIRE(outcome(ack) == "ok");
    REQUIRE(ack.value().size() == 3);
    for (const auto& [topic, one] : ack.value()) {
      CHECK_FALSE(one.duplicate);
      offsets[topic].insert(one.offset);
    }
  }
  for (auto& future : direct)
    REQUIRE(outcome(future.get()) == "ok");
  CHECK(offsets["orders"].size() == 500);
  CHECK(*offsets["orders"].rbegin() == 500);
  CHECK(offsets["audit"].size() == 500);
  CHECK(offsets["orders.eu"].size() == 500);
  CHECK(describeTopic(broker.admin(), "orders.eu").messages == 600);

  REQUIRE(outcome(broker.admin().changeSubjects("audit", {}, {">"})) == "ok");
  auto none = broker.producer().publishSubjectAsync("invoices", textMessage("x"));
  CHECK_THAT(outcome(none.get()), IsError(ErrorCode::kNoRoute));
}

}  // namespace
}  // namespace sluice::test
