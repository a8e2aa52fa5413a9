#include <catch2/catch.hpp>

#include <atomic>
#include <thread>
#include <vector>

#include "client_test_support.h"

using namespace sluice;
using namespace std::chrono_literals;

TEST_CASE("publish returns the broker's offsets and its typed errors", "[client]") {
  FakeBroker broker;
  Client client = connectTo(broker);
  CHECK(client.connected());
  Producer producer = client.producer();

  auto first = producer.publish("orders", "a");
  REQUIRE(first.ok());
  CHECK(first.value().offset == 1);
  CHECK_FALSE(first.value().duplicate);

  auto batch = producer.publishBatch(
      "orders", {OutgoingMessage{"b", {}, {}, ""}, OutgoingMessage{"c", "k", {{"h", "v"}}, "id"}});
  REQUIRE(batch.ok());
  REQUIRE(batch.value().size() == 2);
  CHECK(batch.value()[0].offset == 2);
  CHECK(batch.value()[1].offset == 3);
  CHECK(broker.publishBatchSizes() == std::vector<size_t>{1, 2});

  auto refused = producer.publish("missing.topic", "x");
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == ErrorCode::kTopicNotFound);
  CHECK(refused.error().message == "no topic named that");

  SECTION("an empty batch is sent as is; the broker decides") {
    auto empty = producer.publishBatch("orders", {});
    REQUIRE(empty.ok());
    CHECK(empty.value().empty());
  }
}

TEST_CASE("publishAsync keeps queueing order and honours the in-flight limit", "[client]") {
  FakeBroker broker;
  Client client = connectTo(broker);
  ProducerOptions options;
  options.maxBatchMessages = 10;
  options.maxInFlightBatches = 2;
  Producer producer = client.producer(options);

  broker.holdPublishes(true);
  std::vector<std::future<Result<PublishAck>>> futures;
  for (int i = 0; i < 100; ++i) {
    futures.push_back(producer.publishAsync("orders", OutgoingMessage{"m", {}, {}, ""}));
  }
  // Two batches reach the broker; the other messages wait in the client.
  for (int i = 0; i < 5000 && broker.publishBatchSizes().size() < 2; ++i) {
    std::this_thread::sleep_for(2ms);
  }
  std::this_thread::sleep_for(50ms);
  CHECK(broker.publishBatchSizes().size() == 2);
  CHECK(futures.back().wait_for(0ms) == std::future_status::timeout);

  broker.holdPublishes(false);
  REQUIRE(producer.flush().ok());
  for (int i = 0; i < 100; ++i) {
    auto ack = futures[i].get();
    REQUIRE(ack.ok());
    CHECK(ack.value().offset == static_cast<uint64_t>(i + 1));
  }
  auto sizes = broker.publishBatchSizes();
  size_t total = 0;
  for (size_t size : sizes) {
    CHECK(size <= 10);
    total += size;
  }
  CHECK(total == 100);
  CHECK(broker.maxPublishesInFlight() <= 2);
}

TEST_CASE("messages queued in one wakeup share one publish call", "[client]") {
  FakeBroker broker;
  Client client = connectTo(broker);
  Producer producer = client.producer();
  std::vector<std::future<Result<PublishAck>>> futures;
  {
    IoThreadStall stall(producer);
    for (int i = 0; i < 50; ++i) {
      futures.push_back(producer.publishAsync("orders", OutgoingMessage{"m", {}, {}, ""}));
    }
  }
  REQUIRE(producer.flush().ok());
  for (auto& future : futures)
    CHECK(future.get().ok());
  // The stall's own message, then all 50 together.
  CHECK(broker.publishBatchSizes() == std::vector<size_t>{1, 50});
}

TEST_CASE("maxBatchBytes splits batches, and a larger message still goes alone", "[client]") {
  FakeBroker broker;
  Client client = connectTo(broker);
  ProducerOptions options;
  options.maxBatchBytes = 2500;
  Producer producer = client.producer(options);
  std::vector<std::future<Result<PublishAck>>> futures;
  {
    IoThreadStall stall(producer);
    for (int i = 0; i < 4; ++i) {
      futures.push_back(
          producer.publishAsync("orders", OutgoingMessage{std::string(1000, 'x'), {}, {}, ""}));
    }
    futures.push_back(
        producer.publishAsync("orders", OutgoingMessage{std::string(5000, 'y'), {}, {}, ""}));
  }
  REQUIRE(producer.flush().ok());
  for (auto& future : futures)
    CHECK(future.get().ok());
  CHECK(broker.publishBatchSizes() == std::vector<size_t>{1, 2, 2, 1});
}

TEST_CASE("a batch error fails every message of that batch", "[client]") {
  FakeBroker broker;
  Client client = connectTo(broker);
  Producer producer = client.producer();
  std::vector<std::future<Result<PublishAck>>> futures;
  {
    IoThreadStall stall(producer);
    for (int i = 0; i < 3; ++i) {
      futures.push_back(producer.publishAsync("missing", OutgoingMessage{"m", {}, {}, ""}));
    }
  }
  for (auto& future : futures) {
    auto result = future.get();
    REQUIRE_FALSE(result.ok());
    CHECK(result.error().code == ErrorCode::kTopicNotFound);
  }
}

TEST_CASE("publishAsync callbacks run on the I/O thread, which refuses blocking calls",
          "[client]") {
  FakeBroker broker;
  Client client = connectTo(broker);
  Producer producer = client.producer();
  std::promise<std::pair<Result<PublishAck>, Result<PublishAck>>> seen;
  auto result = seen.get_future();
  producer.publishAsync("orders", OutgoingMessage{"m", {}, {}, ""}, [&](Result<PublishAck> ack) {
    seen.set_value({std::move(ack), producer.publish("orders", "inner")});
  });
  REQUIRE(result.wait_for(10s) == std::future_status::ready);
  auto [outer, inner] = result.get();
  REQUIRE(outer.ok());
  CHECK(outer.value().offset == 1);
  REQUIRE_FALSE(inner.ok());
  CHECK(inner.error().code == ErrorCode::kInvalidArgument);
  CHECK_THAT(inner.error().message, Catch::Matchers::Contains("I/O thread"));
}

TEST_CASE("flush with nothing queued returns at once", "[client]") {
  FakeBroker broker;
  Client client = connectTo(broker);
  Producer producer = client.producer();
  CHECK(producer.flush().ok());
  producer.publishAsync("orders", OutgoingMessage{"m", {}, {}, ""}).get().value();
  CHECK(producer.flush().ok());
}

TEST_CASE("a producer dropped with messages queued still sends them", "[client]") {
  FakeBroker broker;
  Client client = connectTo(broker);
  std::future<Result<PublishAck>> future;
  {
    Producer producer = client.producer();
    broker.holdPublishes(true);
    future = producer.publishAsync("orders", OutgoingMessage{"m", {}, {}, ""});
  }
  broker.holdPublishes(false);
  REQUIRE(future.wait_for(10s) == std::future_status::ready);
  CHECK(future.get().ok());
}

TEST_CASE("publishAsync from many threads loses nothing", "[client]") {
  FakeBroker broker;
  Client client = connectTo(broker);
  Producer producer = client.producer();
  std::atomic<int> acked{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 500; ++i) {
        producer.publishAsync("orders", OutgoingMessage{"m", {}, {}, ""},
                              [&](Result<PublishAck> ack) {
                                if (ack.ok()) ++acked;
                              });
      }
    });
  }
  for (auto& thread : threads)
    thread.join();
  REQUIRE(producer.flush().ok());
  CHECK(acked.load() == 2000);
}
