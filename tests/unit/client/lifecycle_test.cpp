#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

#include "client_test_support.h"

using namespace sluice;
using namespace std::chrono_literals;

TEST_CASE("admin calls convert the broker's answers", "[client]") {
  FakeBroker broker;
  Client client = connectTo(broker);
  Admin admin = client.admin();

  TopicSettings settings;
  settings.maxAge = 60000ms;
  settings.maxMessages = 10;
  settings.deadLetterTopic = "orders.dead";
  auto created = admin.createTopic("orders", settings);
  REQUIRE(created.ok());
  CHECK(created.value().name == "orders");
  CHECK(created.value().settings.maxAge == 60000ms);
  CHECK(created.value().settings.maxMessages == 10);
  CHECK(created.value().settings.deadLetterTopic == "orders.dead");

  auto exists = admin.createTopic("exists");
  REQUIRE_FALSE(exists.ok());
  CHECK(exists.error().code == ErrorCode::kTopicExists);

  settings.maxAge = -1ms;
  CHECK(admin.createTopic("orders", settings).error().code == ErrorCode::kInvalidArgument);

  client.producer().publish("orders", OutgoingMessage{"p", "k", {}, "id"}).value();
  auto peeked = admin.peek("orders", 1, 10);
  REQUIRE(peeked.ok());
  REQUIRE(peeked.value().size() == 1);
  CHECK(peeked.value()[0].payload() == "p");
  CHECK(peeked.value()[0].key() == std::optional<std::string>("k"));
  CHECK(peeked.value()[0].topic() == "orders");
  CHECK(peeked.value()[0].ack().error().code == ErrorCode::kInvalidArgument);

  auto stats = admin.stats();
  REQUIRE(stats.ok());
  CHECK(stats.value().version == "fake");

  SECTION("an exception from the broker becomes an internal error") {
    auto unimplemented = admin.listTopics();
    REQUIRE_FALSE(unimplemented.ok());
    CHECK(unimplemented.error().code == ErrorCode::kInternal);
  }
}

TEST_CASE("close() makes every handle answer disconnected", "[client]") {
  FakeBroker broker;
  Client client = connectTo(broker);
  Producer producer = client.producer();
  Admin admin = client.admin();
  Consumer consumer = client.subscribe("orders", "billing").value();
  broker.holdPublishes(true);
  auto pending = producer.publishAsync("orders", OutgoingMessage{"m", {}, {}, ""});

  client.close();
  CHECK_FALSE(client.connected());
  client.close();  // Idempotent.

  CHECK(pending.get().error().code == ErrorCode::kDisconnected);
  CHECK(producer.publish("orders", "m").error().code == ErrorCode::kDisconnected);
  CHECK(producer.publishAsync("orders", OutgoingMessage{}).get().error().code ==
        ErrorCode::kDisconnected);
  std::promise<Result<PublishAck>> callback;
  producer.publishAsync("orders", OutgoingMessage{},
                        [&](Result<PublishAck> ack) { callback.set_value(std::move(ack)); });
  CHECK(callback.get_future().get().error().code == ErrorCode::kDisconnected);
  CHECK(producer.flush().error().code == ErrorCode::kDisconnected);
  CHECK(admin.stats().error().code == ErrorCode::kDisconnected);
  CHECK(client.subscribe("orders", "other").error().code == ErrorCode::kDisconnected);
  auto received = consumer.receive(10s);
  REQUIRE_FALSE(received.ok());
  CHECK(received.error().code == ErrorCode::kDisconnected);
}

TEST_CASE("a lost connection fails outstanding and later calls with disconnected", "[client]") {
  FakeBroker broker;
  Client client = connectTo(broker);
  Producer producer = client.producer();
  Consumer consumer = client.subscribe("orders", "billing").value();
  broker.holdPublishes(true);
  auto pending = producer.publishAsync("orders", OutgoingMessage{"m", {}, {}, ""});
  std::this_thread::sleep_for(20ms);

  broker.disconnectAll();
  auto lost = pending.get();
  REQUIRE_FALSE(lost.ok());
  CHECK(lost.error().code == ErrorCode::kDisconnected);
  auto received = consumer.receive(10s);
  REQUIRE_FALSE(received.ok());
  CHECK(received.error().code == ErrorCode::kDisconnected);
  CHECK_THAT(received.error().message, Catch::Matchers::Contains("was lost"));
  for (int i = 0; i < 1000 && client.connected(); ++i)
    std::this_thread::sleep_for(10ms);
  CHECK_FALSE(client.connected());
  CHECK(producer.publish("orders", "m").error().code == ErrorCode::kDisconnected);
}

TEST_CASE("blocking calls give up with timeout after callTimeout", "[client]") {
  FakeBroker broker;
  Client client = connectTo(broker, Options{10000ms, 100ms});
  broker.holdPublishes(true);
  auto started = std::chrono::steady_clock::now();
  auto result = client.producer().publish("orders", "m");
  CHECK(std::chrono::steady_clock::now() - started >= 100ms);
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().code == ErrorCode::kTimeout);
  CHECK_THAT(result.error().message, Catch::Matchers::Contains("100 ms"));
  broker.holdPublishes(false);
}

TEST_CASE("handles keep the connection open after the Client is gone", "[client]") {
  FakeBroker broker;
  Producer producer;
  {
    Client client = connectTo(broker);
    producer = client.producer();
  }
  CHECK(producer.publish("orders", "m").ok());
}

TEST_CASE("the last handle may be dropped on the I/O thread", "[client]") {
  FakeBroker broker;
  std::promise<void> done;
  {
    Client client = connectTo(broker);
    auto producer = std::make_shared<Producer>(client.producer());
    broker.holdPublishes(true);
    // The callback owns the last handle; it runs, and is destroyed, on the I/O thread.
    producer->publishAsync("orders", OutgoingMessage{"m", {}, {}, ""},
                           [producer, &done](Result<PublishAck>) { done.set_value(); });
    producer.reset();
  }
  broker.holdPublishes(false);
  CHECK(done.get_future().wait_for(10s) == std::future_status::ready);
  // The I/O thread now deletes the connection itself; give it a moment before the broker goes.
  std::this_thread::sleep_for(50ms);
}

TEST_CASE("a moved Client hands its connection over", "[client]") {
  FakeBroker broker;
  Client first = connectTo(broker);
  Client second = std::move(first);
  CHECK(second.connected());
  CHECK_FALSE(first.connected());  // NOLINT(bugprone-use-after-move): testing the moved-from state
  CHECK(first.admin().stats().error().code == ErrorCode::kDisconnected);
  CHECK(first.producer().publish("t", "m").error().code == ErrorCode::kDisconnected);
  CHECK(first.subscribe("t", "g").error().code == ErrorCode::kDisconnected);
  first.close();
  CHECK(second.admin().stats().ok());
}
