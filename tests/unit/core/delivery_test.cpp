#include <catch2/catch.hpp>

#include "core/broker.h"
#include "harness.h"

using namespace sluice;
using namespace sluice::core;
using namespace sluice::core::testing;
using Catch::Matchers::Contains;

TEST_CASE("deliveries stay within the prefetch window and acks open it", "[core]") {
  Harness h;
  h.createTopic("orders");
  h.publish("orders", 10);
  RecordingSink sink;
  uint64_t consumer = h.subscribe("orders", "billing", sink, /*prefetch=*/4);
  REQUIRE(sink.offsets() == std::vector<Offset>{1, 2, 3, 4});
  CHECK(sink.received[0].deliveries == 1);

  auto failures = h.wait(h.broker().ack(consumer, {1, 2}));
  CHECK(failures.empty());
  h.settle();
  CHECK(sink.offsets().size() == 6);
  CHECK(sink.offsets().back() == 6);
}

TEST_CASE("an ack of an offset that is not pending is refused", "[core]") {
  Harness h;
  h.createTopic("orders");
  h.publish("orders", 1);
  RecordingSink sink;
  uint64_t consumer = h.subscribe("orders", "billing", sink);
  auto failures = h.wait(h.broker().ack(consumer, {1, 1, 99}));
  REQUIRE(failures.size() == 2);  // The second 1 (already acked) and 99 (never delivered).
  CHECK(failures[0].status.code() == Code::kNotPending);
  CHECK(failures[1].offset == 99);
  CHECK_THAT(failures[1].status.message(), Contains("offset 99 is not pending"));
}

TEST_CASE("an ack or nack naming an earlier delivery fails with staleDelivery, changing nothing",
          "[core]") {
  Harness h;
  h.createTopic("orders");
  h.publish("orders", 1);
  RecordingSink sink;
  uint64_t consumer = h.subscribe("orders", "billing", sink, /*prefetch=*/1);
  REQUIRE(sink.received.size() == 1);
  uint64_t first = sink.received[0].deliveryId;
  CHECK(first != 0);
  REQUIRE(h.wait(h.broker().nack(consumer, {1}, 0, {first})).empty());
  REQUIRE(h.eventually([&] { return sink.received.size() == 2; }));
  const Delivery& again = sink.received[1];
  CHECK(again.message.offset == 1);
  CHECK(again.deliveries == 2);
  CHECK(again.deliveryId != first);

  for (bool nack : {false, true}) {
    auto stale = h.wait(nack ? h.broker().nack(consumer, {1}, 0, {first})
                             : h.broker().ack(consumer, {1}, {first}));
    REQUIRE(stale.size() == 1);
    CHECK(stale[0].status.code() == Code::kStaleDelivery);
    CHECK(stale[0].deliveryId == first);
    CHECK_THAT(stale[0].status.message(),
               Contains("delivery " + std::to_string(first) + " is not the current one"));
  }
  // deliveryIds must be absent or one per offset.
  auto mismatched = h.wait(h.broker().ack(consumer, {1, 2}, {again.deliveryId}));
  REQUIRE(mismatched.size() == 2);
  CHECK(mismatched[0].status.code() == Code::kInvalidArgument);
  // Nothing changed: the current delivery is still held, and its ack opens the window.
  h.publish("orders", 1);
  h.settle();
  CHECK(sink.received.size() == 2);
  CHECK(h.wait(h.broker().ack(consumer, {1}, {again.deliveryId})).empty());
  REQUIRE(h.eventually([&] { return sink.received.size() == 3; }));
  CHECK(sink.received[2].message.offset == 2);
}

TEST_CASE("a delivery is stale once the message went to another consumer", "[core]") {
  Harness h;
  h.createTopic("orders");
  h.publish("orders", 1);
  RecordingSink a;
  RecordingSink b;
  uint64_t first = h.subscribe("orders", "billing", a, /*prefetch=*/1);
  REQUIRE(a.received.size() == 1);
  uint64_t stale = a.received[0].deliveryId;
  // Offset 1 waits 100 ms; meanwhile `a` takes offset 2 and is full, so only `b` has room.
  REQUIRE(h.wait(h.broker().nack(first, {1}, 100, {stale})).empty());
  h.publish("orders", 1);
  REQUIRE(h.eventually([&] { return a.received.size() == 2; }));
  CHECK(a.received[1].message.offset == 2);
  uint64_t second = h.subscribe("orders", "billing", b, 1);
  REQUIRE(h.eventually([&] { return b.received.size() == 1; }));
  CHECK(b.received[0].message.offset == 1);

  auto refused = h.wait(h.broker().ack(first, {1}, {stale}));
  REQUIRE(refused.size() == 1);
  CHECK(refused[0].status.code() == Code::kStaleDelivery);
  CHECK_THAT(refused[0].status.message(),
             Contains("now as delivery " + std::to_string(b.received[0].deliveryId)));
  CHECK(h.wait(h.broker().ack(second, {1}, {b.received[0].deliveryId})).empty());
}

TEST_CASE("consumers in one group share messages; every group gets every message", "[core]") {
  Harness h;
  h.createTopic("orders");
  RecordingSink a, b, audit;
  h.subscribe("orders", "billing", a, 1000);
  h.subscribe("orders", "billing", b, 1000);
  h.subscribe("orders", "audit", audit, 1000);
  h.publish("orders", 300);
  REQUIRE(h.eventually([&] { return a.received.size() + b.received.size() == 300; }));
  h.settle();
  std::vector<Offset> all = a.offsets();
  for (Offset o : b.offsets())
    all.push_back(o);
  std::sort(all.begin(), all.end());
  CHECK(std::adjacent_find(all.begin(), all.end()) == all.end());  // None to both.
  CHECK(all.front() == 1);
  CHECK(all.back() == 300);
  CHECK(audit.received.size() == 300);
}

TEST_CASE("a consumer that leaves hands its unacked messages to the group", "[core]") {
  Harness h;
  h.createTopic("orders");
  h.publish("orders", 3);
  RecordingSink first;
  uint64_t id = h.subscribe("orders", "billing", first, 10);
  REQUIRE(first.received.size() == 3);
  h.wait(h.broker().ack(id, {1}));
  h.broker().unsubscribe(id);
  RecordingSink second;
  h.subscribe("orders", "billing", second, 10);
  REQUIRE(second.offsets() == std::vector<Offset>{2, 3});
  CHECK(second.received[0].deliveries == 2);
}

TEST_CASE("nack with a delay redelivers no earlier than the delay", "[core]") {
  Harness h;
  h.createTopic("orders");
  h.publish("orders", 1);
  RecordingSink sink;
  uint64_t id = h.subscribe("orders", "billing", sink);
  auto start = std::chrono::steady_clock::now();
  CHECK(h.wait(h.broker().nack(id, {1}, 150)).empty());
  REQUIRE(h.eventually([&] { return sink.received.size() == 2; }));
  CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(150));
  CHECK(sink.received[1].deliveries == 2);
}

TEST_CASE("an ack timeout redelivers the message", "[core]") {
  Harness h;
  h.createTopic("orders");
  h.publish("orders", 1);
  RecordingSink sink;
  h.subscribe("orders", "billing", sink, 10, /*ackTimeoutMs=*/50);
  REQUIRE(h.eventually([&] { return sink.received.size() == 2; }));
  CHECK(sink.received[1].message.offset == 1);
  CHECK(sink.received[1].deliveries == 2);
}

TEST_CASE("past max deliveries a message moves to the dead-letter topic with headers", "[core]") {
  Harness h;
  RequestedSettings settings;
  settings.maxDeliveries = 2;
  settings.deadLetterTopic = "orders.dlq";
  h.createTopic("orders", settings);
  h.publish("orders", 1);
  RecordingSink sink, dead;
  uint64_t id = h.subscribe("orders", "billing", sink);
  h.subscribe("orders.dlq", "ops", dead);
  h.wait(h.broker().nack(id, {1}, 0));
  REQUIRE(h.eventually([&] { return sink.received.size() == 2; }));
  h.wait(h.broker().nack(id, {1}, 0));
  REQUIRE(h.eventually([&] { return dead.received.size() == 1; }));
  const auto& headers = dead.received[0].message.data.headers;
  auto header = [&](const std::string& key) {
    for (const auto& [k, v] : headers)
      if (k == key) return v;
    return std::string("<missing>");
  };
  CHECK(header("sluice-origin-topic") == "orders");
  CHECK(header("sluice-origin-group") == "billing");
  CHECK(header("sluice-origin-offset") == "1");
  CHECK(header("sluice-deliveries") == "2");
  CHECK_THAT(header("sluice-reason"), Contains("max deliveries (2)") && Contains("nack"));
  auto group = h.broker().describeGroup("orders", "billing");
  CHECK(group.value().pending == 0);
  CHECK(group.value().deadLettered == 1);
}

TEST_CASE("positions and pending deliveries survive a restart", "[core]") {
  Harness h;
  h.createTopic("orders");
  h.publish("orders", 4);
  {
    RecordingSink sink;
    uint64_t id = h.subscribe("orders", "billing", sink, 2);
    REQUIRE(sink.received.size() == 2);
    h.wait(h.broker().ack(id, {1}));
    h.broker().unsubscribe(id);
  }
  h.restart();
  RecordingSink sink;
  h.subscribe("orders", "billing", sink, 10);
  // 1 was acked; 2 and 3 (the ack of 1 opened the window for 3) were delivered and not
  // acked; 4 was never delivered.
  REQUIRE(sink.offsets() == std::vector<Offset>{2, 3, 4});
  CHECK(sink.received[0].deliveries == 2);
  CHECK(sink.received[1].deliveries == 2);
  CHECK(sink.received[2].deliveries == 1);
}

TEST_CASE("group reset and delete refuse while consumers are connected", "[core]") {
  Harness h;
  h.createTopic("orders");
  h.publish("orders", 3);
  RecordingSink sink;
  uint64_t id = h.subscribe("orders", "billing", sink);
  auto busy = h.wait(h.broker().resetGroup("orders", "billing", StartAt{}));
  REQUIRE_FALSE(busy.ok());
  CHECK(busy.status().code() == Code::kGroupBusy);
  CHECK(h.wait(h.broker().deleteGroup("orders", "billing")).status().code() == Code::kGroupBusy);
  h.broker().unsubscribe(id);
  StartAt at;
  at.kind = StartAt::Kind::kOffset;
  at.offset = 2;
  auto reset = h.wait(h.broker().resetGroup("orders", "billing", at));
  REQUIRE(reset.ok());
  CHECK(reset.value().position == 2);
  CHECK(reset.value().pending == 0);
  CHECK(h.wait(h.broker().deleteGroup("orders", "nope")).status().code() == Code::kGroupNotFound);
}

TEST_CASE("a subscribe with prefetch 0 is refused with the rule", "[core]") {
  Harness h;
  h.createTopic("orders");
  RecordingSink sink;
  auto id = h.broker().subscribe("orders", "billing", StartAt{}, 0, 1000, sink, "test");
  REQUIRE_FALSE(id.ok());
  CHECK(id.status().code() == Code::kInvalidArgument);
  CHECK_THAT(id.status().message(), Contains("prefetch must be 1-65536, got 0"));
}

TEST_CASE("deleting a topic closes its consumers", "[core]") {
  Harness h;
  h.createTopic("orders");
  RecordingSink sink;
  uint64_t id = h.subscribe("orders", "billing", sink);
  REQUIRE(h.wait(h.broker().deleteTopic("orders")).ok());
  REQUIRE(sink.closedWith);
  CHECK(sink.closedWith->code() == Code::kTopicNotFound);
  auto failures = h.wait(h.broker().ack(id, {1}));
  CHECK(failures.size() == 1);
  h.broker().unsubscribe(id);
}

TEST_CASE("a work-queue topic drops what every group acknowledged", "[core]") {
  Harness h;
  RequestedSettings settings;
  settings.workQueue = true;
  h.createTopic("jobs", settings);
  h.publish("jobs", 3);
  RecordingSink a, b;
  uint64_t ida = h.subscribe("jobs", "workers", a);
  uint64_t idb = h.subscribe("jobs", "audit", b);
  h.wait(h.broker().ack(ida, {1, 2, 3}));
  h.wait(h.broker().ack(idb, {1, 2}));
  REQUIRE(h.eventually([&] { return h.broker().describeTopic("jobs").value().messages == 1; }));
  CHECK(h.broker().describeTopic("jobs").value().firstOffset == 3);
}
