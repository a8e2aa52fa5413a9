#include <catch2/catch.hpp>

#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include "client_test_support.h"

using namespace sluice;
using namespace std::chrono_literals;

namespace {

// Polls `condition` for up to 10 s.
template <typename Condition>
bool eventually(Condition condition) {
  for (int i = 0; i < 1000; ++i) {
    if (condition()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return condition();
}

}  // namespace

TEST_CASE("a pull consumer receives delivered messages with every field", "[client]") {
  FakeBroker broker;
  Client client = connectTo(broker);
  Producer producer = client.producer();
  producer.publish("orders", OutgoingMessage{"first", "key", {{"h", "v"}}, "id-1"}).value();

  Consumer consumer = client.subscribe("orders", "billing").value();
  CHECK(consumer.id() == 1001);
  auto message = consumer.receive(10s);
  REQUIRE(message.ok());
  CHECK(message.value().offset() == 1);
  CHECK(message.value().payload() == "first");
  CHECK(message.value().key() == std::optional<std::string>("key"));
  CHECK(message.value().headers() == Headers{{"h", "v"}});
  CHECK(message.value().id() == "id-1");
  CHECK(message.value().deliveries() == 1);
  CHECK(message.value().topic() == "orders");
  CHECK(message.value().timestampMs() == 1700000000001);

  producer.publish("orders", "second").value();
  auto second = consumer.receive(10s);
  REQUIRE(second.ok());
  CHECK(second.value().offset() == 2);
  CHECK(second.value().key() == std::nullopt);

  auto none = consumer.receive(20ms);
  REQUIRE_FALSE(none.ok());
  CHECK(none.error().code == ErrorCode::kTimeout);
}

TEST_CASE("ack answers once the broker did, and reports its failures", "[client]") {
  FakeBroker broker;
  Client client = connectTo(broker);
  client.producer().publish("orders", "m").value();
  Consumer consumer = client.subscribe("orders", "billing").value();
  Message message = consumer.receive(10s).value();
  CHECK(message.ack().ok());
  auto again = message.ack();
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().code == ErrorCode::kNotPending);
  CHECK(again.error().message == "offset 1 is not pending");
}

TEST_CASE("acks queued in one wakeup go out in one call", "[client]") {
  FakeBroker broker;
  Client client = connectTo(broker);
  Producer producer = client.producer();
  std::vector<OutgoingMessage> batch(20, OutgoingMessage{"m", {}, {}, ""});
  producer.publishBatch("orders", batch).value();
  Consumer consumer = client.subscribe("orders", "billing").value();
  std::vector<Message> messages;
  for (int i = 0; i < 20; ++i)
    messages.push_back(consumer.receive(10s).value());

  std::vector<std::future<Result<void>>> acks;
  {
    IoThreadStall stall(producer);
    for (const auto& message : messages)
      acks.push_back(message.ackAsync());
    acks.push_back(messages[0].ackAsync());  // A repeat shares the answer.
  }
  for (auto& ack : acks)
    CHECK(ack.get().ok());
  auto calls = broker.ackCalls();
  REQUIRE(calls.size() == 1);
  CHECK(calls[0].size() == 20);
}

TEST_CASE("nack asks for redelivery with its delay", "[client]") {
  FakeBroker broker;
  Client client = connectTo(broker);
  client.producer().publish("orders", "m").value();
  Consumer consumer = client.subscribe("orders", "billing").value();
  Message message = consumer.receive(10s).value();
  REQUIRE(message.nack(1500ms).ok());
  auto redelivered = consumer.receive(10s);
  REQUIRE(redelivered.ok());
  CHECK(redelivered.value().offset() == 1);
  CHECK(redelivered.value().deliveries() == 2);
  auto nacks = broker.nackCalls();
  REQUIRE(nacks.size() == 1);
  CHECK(nacks[0].first == std::vector<uint64_t>{1});
  CHECK(nacks[0].second == 1500);

  SECTION("a negative delay is sent as zero") {
    REQUIRE(redelivered.value().nack(-5ms).ok());
    CHECK(broker.nackCalls().back().second == 0);
  }
}

TEST_CASE("subscribe reports the broker's error and invalid ack timeouts", "[client]") {
  FakeBroker broker;
  Client client = connectTo(broker);
  auto missing = client.subscribe("missing", "billing");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().code == ErrorCode::kTopicNotFound);

  SubscribeOptions options;
  options.ackTimeout = 0ms;
  auto zero = client.subscribe("orders", "billing", options);
  REQUIRE_FALSE(zero.ok());
  CHECK(zero.error().code == ErrorCode::kInvalidArgument);
  CHECK_THAT(zero.error().message, Catch::Matchers::Contains("ackTimeout"));

  auto noHandler = client.subscribe("orders", "billing", {}, nullptr);
  REQUIRE_FALSE(noHandler.ok());
  CHECK(noHandler.error().code == ErrorCode::kInvalidArgument);
  CHECK(broker.subscriptionsCreated() == 0);
}

TEST_CASE("closing a consumer releases its subscription on the broker", "[client]") {
  FakeBroker broker;
  Client client = connectTo(broker);
  client.producer().publish("orders", "m").value();

  SECTION("by close()") {
    Consumer consumer = client.subscribe("orders", "billing").value();
    Message message = consumer.receive(10s).value();
    consumer.close();
    consumer.close();  // Idempotent.
    CHECK(eventually([&] { return broker.subscriptionsReleased() == 1; }));

    auto received = consumer.receive(0ms);
    REQUIRE_FALSE(received.ok());
    CHECK(received.error().code == ErrorCode::kDisconnected);
    auto acked = message.ack();
    REQUIRE_FALSE(acked.ok());
    CHECK(acked.error().code == ErrorCode::kNotPending);
    CHECK_THAT(acked.error().message,
               Catch::Matchers::Contains("consumer that received it was closed"));
  }

  SECTION("by dropping the last handle, even while a message is still held") {
    Message held;
    {
      Consumer consumer = client.subscribe("orders", "billing").value();
      Consumer copy = consumer;
      held = consumer.receive(10s).value();
    }
    CHECK(eventually([&] { return broker.subscriptionsReleased() == 1; }));
    CHECK(held.ack().error().code == ErrorCode::kNotPending);
  }
}

TEST_CASE("an ack queued just before close() is still sent", "[client]") {
  FakeBroker broker;
  Client client = connectTo(broker);
  Producer producer = client.producer();
  producer.publish("orders", "m").value();
  Consumer consumer = client.subscribe("orders", "billing").value();
  Message message = consumer.receive(10s).value();
  std::future<Result<void>> ack;
  {
    IoThreadStall stall(producer);
    ack = message.ackAsync();
    consumer.close();
  }
  CHECK(ack.get().ok());
  CHECK(broker.ackCalls().size() == 1);
}

TEST_CASE("when the broker ends a subscription, receive drains then returns its error",
          "[client]") {
  FakeBroker broker;
  Client client = connectTo(broker);
  client.producer().publish("orders", "m").value();
  Consumer consumer = client.subscribe("orders", "billing").value();
  REQUIRE(eventually([&] { return broker.subscriptionsCreated() == 1; }));
  // The delivery was sent while subscribing, so it reaches the handler before closed() does
  // (calls on one capability arrive in order).
  broker.closeSubscriptions("topic \"orders\" was deleted");
  auto message = consumer.receive(10s);
  REQUIRE(message.ok());
  CHECK(message.value().payload() == "m");
  auto ended = consumer.receive(10s);
  REQUIRE_FALSE(ended.ok());
  CHECK(ended.error().code == ErrorCode::kTopicNotFound);
  CHECK(ended.error().message == "topic \"orders\" was deleted");
}

TEST_CASE("a callback consumer hands every message to its handler thread", "[client]") {
  FakeBroker broker;
  Client client = connectTo(broker);
  Producer producer = client.producer();
  for (int i = 0; i < 10; ++i)
    producer.publish("orders", "m").value();

  std::mutex mu;
  std::set<uint64_t> offsets;
  std::atomic<int> ackFailures{0};
  std::set<std::thread::id> threads;
  Consumer consumer = client
                          .subscribe("orders", "billing", {},
                                     [&](Message message) {
                                       if (!message.ack().ok()) ++ackFailures;
                                       std::lock_guard<std::mutex> lock(mu);
                                       offsets.insert(message.offset());
                                       threads.insert(std::this_thread::get_id());
                                     })
                          .value();
  CHECK(eventually([&] {
    std::lock_guard<std::mutex> lock(mu);
    return offsets.size() == 10;
  }));
  auto pulled = consumer.receive(0ms);
  REQUIRE_FALSE(pulled.ok());
  CHECK(pulled.error().code == ErrorCode::kInvalidArgument);
  consumer.close();
  CHECK(ackFailures.load() == 0);
  std::lock_guard<std::mutex> lock(mu);
  CHECK(threads.size() == 1);
  CHECK(threads.count(std::this_thread::get_id()) == 0);
}

TEST_CASE("a handler may close its own consumer", "[client]") {
  FakeBroker broker;
  Client client = connectTo(broker);
  client.producer().publish("orders", "m").value();
  auto consumer = std::make_shared<Consumer>();
  std::promise<void> assigned;
  std::shared_future<void> ready = assigned.get_future().share();
  std::promise<void> closed;
  *consumer = client
                  .subscribe("orders", "billing", {},
                             [consumer, ready, &closed](Message) {
                               ready.wait();
                               consumer->close();
                               closed.set_value();
                             })
                  .value();
  assigned.set_value();
  CHECK(closed.get_future().wait_for(10s) == std::future_status::ready);
  CHECK(eventually([&] { return broker.subscriptionsReleased() == 1; }));
  // The handler owns a copy of the consumer: close() broke that cycle, so nothing leaks.
}

TEST_CASE("a subscribe that times out does not leave a subscription behind", "[client]") {
  FakeBroker broker;
  Client client = connectTo(broker, Options{10000ms, 100ms});
  broker.holdSubscribes(true);
  auto late = client.subscribe("orders", "billing");
  REQUIRE_FALSE(late.ok());
  CHECK(late.error().code == ErrorCode::kTimeout);
  broker.holdSubscribes(false);
  CHECK(eventually(
      [&] { return broker.subscriptionsCreated() == 1 && broker.subscriptionsReleased() == 1; }));
}
