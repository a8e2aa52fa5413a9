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

TEST_CASE("a subscribe with prefetch above the limit is refused with the rule", "[core]") {
  Harness h;
  h.createTopic("orders");
  RecordingSink sink;
  auto id = h.broker().subscribe("orders", "billing", StartAt{}, 65537, 1000, sink, "test");
  REQUIRE_FALSE(id.ok());
  CHECK(id.status().code() == Code::kInvalidArgument);
  CHECK_THAT(id.status().message(),
             Contains("prefetch must be 1-65536 (or 0 for a fetch consumer), got 65537"));
}

TEST_CASE("a fetch consumer is sent exactly what it fetches", "[core]") {
  Harness h;
  h.createTopic("orders");
  h.publish("orders", 10);
  RecordingSink sink;
  uint64_t id = h.subscribe("orders", "billing", sink, /*prefetch=*/0);
  CHECK(sink.received.empty());  // Nothing is pushed.

  auto three = h.wait(h.broker().fetch(id, 3, 1000));
  REQUIRE(three.ok());
  REQUIRE(three.value().size() == 3);
  CHECK(three.value()[0].message.offset == 1);
  CHECK(three.value()[2].message.offset == 3);
  CHECK(three.value()[0].deliveryId != 0);
  h.settle();
  auto group = h.broker().describeGroup("orders", "billing").value();
  CHECK(group.consumers.at(0).inFlight == 3);  // Exactly the three answered; nothing else.
  CHECK(group.position == 4);
  CHECK(sink.received.empty());

  // More than is there: the answer comes at the timeout with what there was.
  auto start = std::chrono::steady_clock::now();
  auto rest = h.wait(h.broker().fetch(id, 20, 100));
  REQUIRE(rest.ok());
  CHECK(rest.value().size() == 7);
  CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(100));
  CHECK(h.wait(h.broker().ack(id, {1, 2, 3},
                              {three.value()[0].deliveryId, three.value()[1].deliveryId,
                               three.value()[2].deliveryId}))
            .empty());

  // A fetch waiting when a message is published answers as soon as it has all it asked for.
  auto waiting = h.broker().fetch(id, 2, 60000);
  h.publish("orders", 2);
  start = std::chrono::steady_clock::now();
  auto two = h.wait(std::move(waiting));
  REQUIRE(two.ok());
  CHECK(two.value().size() == 2);
  CHECK(two.value()[0].message.offset == 11);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(30));
}

TEST_CASE("fetch refuses what breaks its rules and changes nothing", "[core]") {
  Harness h;
  h.createTopic("orders");
  h.publish("orders", 2);
  RecordingSink pushed, pulled;
  uint64_t push = h.subscribe("orders", "billing", pushed, 10);
  uint64_t pull = h.subscribe("orders", "audit", pulled, 0);
  auto code = [&](uint64_t consumer, uint32_t max, uint32_t timeoutMs) {
    auto answer = h.wait(h.broker().fetch(consumer, max, timeoutMs));
    REQUIRE_FALSE(answer.ok());
    return answer.status();
  };
  CHECK_THAT(code(push, 1, 0).message(), Contains("this one has prefetch 10"));
  CHECK(code(pull, 0, 0).code() == Code::kInvalidArgument);
  CHECK_THAT(code(pull, 65537, 0).message(), Contains("fetch takes 1-65536 messages, got 65537"));
  CHECK_THAT(code(pull, 1, 300001).message(),
             Contains("fetch timeout must be at most 300000 ms, got 300001"));
  auto first = h.broker().fetch(pull, 5, 60000);
  h.settle();
  CHECK_THAT(code(pull, 1, 0).message(), Contains("a fetch is already waiting"));
  // Nothing was taken by the refused calls: the waiting fetch got both messages.
  h.publish("orders", 3);
  auto answer = h.wait(std::move(first));
  REQUIRE(answer.ok());
  CHECK(answer.value().size() == 5);
  CHECK(answer.value()[0].message.offset == 1);
  auto full = code(pull, 65532, 0);
  CHECK(full.code() == Code::kLimitExceeded);
  CHECK_THAT(full.message(), Contains("would hold 65537 unacknowledged messages"));
}

TEST_CASE("a fetch ends with the error when its topic is deleted", "[core]") {
  Harness h;
  h.createTopic("orders");
  RecordingSink sink;
  uint64_t id = h.subscribe("orders", "billing", sink, 0);
  auto waiting = h.broker().fetch(id, 1, 60000);
  REQUIRE(h.wait(h.broker().deleteTopic("orders")).ok());
  auto answer = h.wait(std::move(waiting));
  REQUIRE_FALSE(answer.ok());
  CHECK(answer.status().code() == Code::kTopicNotFound);
  h.broker().unsubscribe(id);
}

TEST_CASE("fetched messages count their ack timeout from the answer", "[core]") {
  Harness h;
  h.createTopic("orders");
  h.publish("orders", 1);
  RecordingSink sink;
  uint64_t id = h.subscribe("orders", "billing", sink, 0, /*ackTimeoutMs=*/100);
  // The fetch waits 300 ms for a second message; the first must not time out meanwhile.
  auto answer = h.wait(h.broker().fetch(id, 2, 300));
  REQUIRE(answer.ok());
  REQUIRE(answer.value().size() == 1);
  const Delivery& message = answer.value()[0];
  CHECK(message.deliveries == 1);
  CHECK(h.wait(h.broker().ack(id, {1}, {message.deliveryId})).empty());
}

TEST_CASE("inProgress keeps a held message from redelivery and follows the rules", "[core]") {
  Harness h;
  h.createTopic("orders");
  h.publish("orders", 1);
  RecordingSink sink;
  uint64_t id = h.subscribe("orders", "billing", sink, 10, /*ackTimeoutMs=*/150);
  REQUIRE(sink.received.size() == 1);
  uint64_t delivery = sink.received[0].deliveryId;
  // Renewed every 50 ms for 600 ms (four ack timeouts): never redelivered.
  auto& timer = h.timer();
  auto until = timer.now() + 600 * kj::MILLISECONDS;
  while (timer.now() < until) {
    REQUIRE(h.broker().inProgress(id, {1}, 0, {delivery}).empty());
    timer.afterDelay(50 * kj::MILLISECONDS).wait(h.waitScope());
    CHECK(sink.received.size() == 1);
  }
  // An explicit extension, then the rules: a stale id, an unknown offset, too long.
  CHECK(h.broker().inProgress(id, {1}, 1000, {delivery}).empty());
  auto stale = h.broker().inProgress(id, {1}, 0, {delivery + 1000});
  REQUIRE(stale.size() == 1);
  CHECK(stale[0].status.code() == Code::kStaleDelivery);
  auto unknown = h.broker().inProgress(id, {7}, 0, {});
  REQUIRE(unknown.size() == 1);
  CHECK(unknown[0].status.code() == Code::kNotPending);
  auto tooLong = h.broker().inProgress(id, {1}, 86400001, {delivery});
  REQUIRE(tooLong.size() == 1);
  CHECK_THAT(tooLong[0].status.message(), Contains("at most 86400000 ms (24h), got 86400001"));
  // Without renewal the ack timeout redelivers it.
  REQUIRE(h.eventually([&] { return sink.received.size() == 2; }));
  CHECK(sink.received[1].deliveries == 2);
}

namespace {

// Publishes `message` alone, REQUIREs an invalidArgument refusal and returns its text.
std::string refusedPublish(Harness& h, const std::string& topic, MessageData message) {
  std::vector<MessageData> batch;
  batch.push_back(std::move(message));
  auto answer = h.wait(h.broker().publish(topic, std::move(batch)));
  REQUIRE_FALSE(answer.ok());
  CHECK(answer.status().code() == Code::kInvalidArgument);
  return answer.status().message();
}

MessageData delayed(const std::string& payload, uint32_t delayMs, int64_t deliverAtMs = 0) {
  MessageData message;
  message.payload = payload;
  message.delayMs = delayMs;
  message.deliverAtMs = deliverAtMs;
  return message;
}

}  // namespace

TEST_CASE("a delayed message reaches no group before its time, and due messages come in due order",
          "[core]") {
  Harness h;
  h.createTopic("reminders");
  std::vector<MessageData> batch;
  batch.push_back(delayed("late", 300));
  batch.push_back(delayed("soon", 150));
  batch.push_back(delayed("now", 0));
  auto acks = h.wait(h.broker().publish("reminders", std::move(batch)));
  REQUIRE(acks.ok());  // Acknowledged (durable) at once.
  RecordingSink sink;
  h.subscribe("reminders", "app", sink, 10);
  std::vector<int64_t> receivedAt;
  REQUIRE(h.eventually([&] {
    while (receivedAt.size() < sink.received.size())
      receivedAt.push_back(wallClockMs());
    return sink.received.size() == 3;
  }));
  CHECK(sink.received[0].message.data.payload == "now");
  CHECK(sink.received[0].message.data.deliverAtMs == 0);
  CHECK(sink.received[1].message.data.payload == "soon");
  CHECK(sink.received[2].message.data.payload == "late");
  for (size_t i = 1; i < 3; ++i) {
    const Delivery& d = sink.received[i];
    CHECK(d.deliveries == 1);
    CHECK(d.message.data.deliverAtMs == d.message.timestampMs + (i == 1 ? 150 : 300));
    CHECK(receivedAt[i] >= d.message.data.deliverAtMs);  // Never early, to the millisecond.
  }
  auto group = h.broker().describeGroup("reminders", "app").value();
  CHECK(group.redelivered == 0);
}

TEST_CASE("delayed messages wait on disk and survive a restart", "[core]") {
  Harness h;
  h.createTopic("reminders");
  std::vector<MessageData> batch;
  batch.push_back(delayed("passed", 400));  // The group passes it before the restart.
  REQUIRE(h.wait(h.broker().publish("reminders", std::move(batch))).ok());
  {
    RecordingSink sink;
    uint64_t id = h.subscribe("reminders", "app", sink, 10);
    h.settle();
    CHECK(sink.received.empty());
    h.broker().unsubscribe(id);
  }
  std::vector<MessageData> later;
  later.push_back(delayed("unread", 200));  // Not yet read by the group at the restart.
  REQUIRE(h.wait(h.broker().publish("reminders", std::move(later))).ok());
  h.restart();
  RecordingSink sink;
  h.subscribe("reminders", "app", sink, 10);
  CHECK(sink.received.empty());
  REQUIRE(h.eventually([&] { return sink.received.size() == 2; }));
  CHECK(sink.received[0].message.data.payload == "unread");
  CHECK(sink.received[1].message.data.payload == "passed");
  for (const Delivery& d : sink.received)
    CHECK(wallClockMs() >= d.message.data.deliverAtMs);
}

TEST_CASE("a delivery time in the past is at once; beyond 30 days or with a delay is refused",
          "[core]") {
  Harness h;
  h.createTopic("reminders");
  auto refused = [&](MessageData message) {
    return refusedPublish(h, "reminders", std::move(message));
  };
  CHECK_THAT(refused(delayed("x", kMaxDeliveryDelayMs + 1)),
             Contains("the delivery delay must be at most 30 days (2592000000 ms)"));
  CHECK_THAT(refused(delayed("x", 0, wallClockMs() + kMaxDeliveryDelayMs + 60000)),
             Contains("the delivery time must be at most 30 days"));
  CHECK_THAT(refused(delayed("x", 10, wallClockMs() + 1000)), Contains("not both"));
  CHECK(h.broker().describeTopic("reminders").value().messages == 0);  // Nothing stored.

  std::vector<MessageData> past;
  past.push_back(delayed("past", 0, wallClockMs() - 60000));
  past.push_back(delayed("longest", kMaxDeliveryDelayMs));
  REQUIRE(h.wait(h.broker().publish("reminders", std::move(past))).ok());
  RecordingSink sink;
  h.subscribe("reminders", "app", sink, 10);
  REQUIRE(sink.received.size() == 1);
  CHECK(sink.received[0].message.data.payload == "past");
  CHECK(sink.received[0].message.data.deliverAtMs == 0);
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

// Time to live ----------------------------------------------------------------------------------

namespace {

MessageData living(const std::string& payload, std::optional<uint32_t> ttlMs,
                   uint32_t delayMs = 0) {
  MessageData message;
  message.payload = payload;
  message.delayMs = delayMs;
  if (ttlMs) {
    message.hasTtl = true;
    message.ttlMs = *ttlMs;
  }
  return message;
}

// Publishes `messages` and returns the newest expiry time among them (0: none expires).
int64_t publishLiving(Harness& h, const std::string& topic, std::vector<MessageData> messages) {
  auto acks = h.wait(h.broker().publish(topic, std::move(messages)));
  REQUIRE(acks.ok());
  int64_t latest = 0;
  for (const auto& ack : acks.value()) {
    auto stored = h.broker().peek(topic, ack.offset, 1);
    REQUIRE(stored.ok());
    REQUIRE(stored.value().size() == 1);
    latest = std::max(latest, stored.value()[0].expiresAtMs());
  }
  return latest;
}

}  // namespace

TEST_CASE("an expired message is never delivered and leaves the topic from the front", "[core]") {
  Harness h;
  h.createTopic("quotes");
  std::vector<MessageData> batch;
  batch.push_back(living("stale-1", 80));
  batch.push_back(living("stale-2", 80));
  batch.push_back(living("lasting", std::nullopt));
  batch.push_back(living("stale-behind", 80));  // Behind one that lives: stays, never delivered.
  int64_t expiresAt = publishLiving(h, "quotes", std::move(batch));
  REQUIRE(expiresAt > 0);
  REQUIRE(h.eventually([&] { return wallClockMs() >= expiresAt; }));

  RecordingSink sink;
  h.subscribe("quotes", "app", sink, 10);
  REQUIRE(
      h.eventually([&] { return h.broker().describeGroup("quotes", "app").value().expired == 3; }));
  h.settle();
  REQUIRE(sink.received.size() == 1);
  CHECK(sink.received[0].message.data.payload == "lasting");
  CHECK(sink.received[0].message.expiresAtMs() == 0);
  // Retention's pass removes the expired front, up to the first message that lives.
  REQUIRE(h.eventually([&] { return h.broker().describeTopic("quotes").value().messages == 2; }));
  auto topic = h.broker().describeTopic("quotes").value();
  CHECK(topic.firstOffset == 3);
  CHECK(topic.expired == 2);
}

TEST_CASE(
    "a topic's default time to live applies unless the message has its own, and a "
    "nacked message is not redelivered after it expired",
    "[core]") {
  Harness h;
  RequestedSettings settings;
  settings.defaultTtlMs = 150;
  h.createTopic("jobs", settings);
  REQUIRE(h.broker().describeTopic("jobs").value().settings.defaultTtlMs == 150);
  std::vector<MessageData> batch;
  batch.push_back(living("default", std::nullopt));
  batch.push_back(living("own", 60000));
  publishLiving(h, "jobs", std::move(batch));

  RecordingSink sink;
  uint64_t consumer = h.subscribe("jobs", "workers", sink, 10);
  REQUIRE(sink.received.size() == 2);
  const StoredMessageData& first = sink.received[0].message;
  CHECK(first.expiresAtMs() == first.timestampMs + 150);
  const StoredMessageData& second = sink.received[1].message;
  CHECK(second.expiresAtMs() == second.timestampMs + 60000);
  // A held message may still be acknowledged after its time; a nacked one due after it is not
  // delivered again.
  REQUIRE(h.wait(h.broker().nack(consumer, {1}, 300)).empty());
  // Its pending entry goes in the delivery state's commit, after the count.
  REQUIRE(h.eventually([&] {
    auto group = h.broker().describeGroup("jobs", "workers").value();
    return group.expired == 1 && group.pending == 1;  // Only "own" is left, still held.
  }));
  CHECK(sink.received.size() == 2);
  CHECK(h.wait(h.broker().ack(consumer, {2})).empty());
}

TEST_CASE("a delayed message's time to live starts at its delivery time", "[core]") {
  Harness h;
  h.createTopic("reminders");
  std::vector<MessageData> batch;
  batch.push_back(living("later", 200, /*delayMs=*/150));
  publishLiving(h, "reminders", std::move(batch));
  RecordingSink sink;
  h.subscribe("reminders", "app", sink, 10);
  REQUIRE(h.eventually([&] { return sink.received.size() == 1; }));
  const StoredMessageData& message = sink.received[0].message;
  CHECK(message.data.deliverAtMs == message.timestampMs + 150);
  CHECK(message.expiresAtMs() == message.data.deliverAtMs + 200);
}

TEST_CASE("expired messages go to the dead-letter topic with reason expired, once per group",
          "[core]") {
  Harness h;
  RequestedSettings settings;
  settings.defaultTtlMs = 60;
  settings.deadLetterTopic = "jobs.dead";
  settings.deadLetterExpired = true;
  h.createTopic("jobs", settings);
  RecordingSink late;
  uint64_t idle = h.subscribe("jobs", "workers", late, /*prefetch=*/1);
  h.broker().unsubscribe(idle);  // The group exists but nobody consumes.
  int64_t expiresAt = publishLiving(h, "jobs", {living("a", std::nullopt), living("b", 60)});
  REQUIRE(h.eventually([&] { return wallClockMs() >= expiresAt; }));
  // Until the group has passed them, they stay: each group dead-letters its own copy.
  h.broker().sweepRetentionForTest(wallClockMs());
  h.publish("jobs", 1);  // Committed after whatever that pass wrote.
  CHECK(h.broker().describeTopic("jobs").value().messages == 3);

  RecordingSink sink;
  h.subscribe("jobs", "workers", sink, 10);
  RecordingSink dead;
  h.subscribe("jobs.dead", "audit", dead, 10);
  REQUIRE(h.eventually([&] { return dead.received.size() == 2; }));
  REQUIRE(sink.received.size() == 1);  // Only the one published last, not yet expired.
  CHECK(sink.received[0].message.offset == 3);
  for (const Delivery& d : dead.received) {
    auto has = [&](const std::string& key, const std::string& value) {
      for (const auto& [k, v] : d.message.data.headers)
        if (k == key && v == value) return true;
      return false;
    };
    CHECK(has("sluice-reason", "expired"));
    CHECK(has("sluice-origin-group", "workers"));
    CHECK(d.message.expiresAtMs() == 0);  // The dead-letter topic has no time to live.
  }
  auto group = h.broker().describeGroup("jobs", "workers").value();
  CHECK(group.expired == 2);
  CHECK(group.deadLettered == 2);
  REQUIRE(h.eventually([&] { return h.broker().describeTopic("jobs").value().messages == 1; }));
  CHECK(h.broker().describeTopic("jobs").value().expired == 2);
}

TEST_CASE("a time to live of 0 or beyond 30 days, and bad TTL settings, are refused", "[core]") {
  Harness h;
  h.createTopic("quotes");
  auto refused = [&](MessageData message) {
    return refusedPublish(h, "quotes", std::move(message));
  };
  CHECK_THAT(refused(living("x", 0)),
             Contains("the time to live must be 1 ms to 30 days (2592000000 ms), got 0 ms"));
  CHECK_THAT(refused(living("x", kMaxTtlMs + 1)), Contains("got 2592000001 ms"));
  CHECK(h.broker().describeTopic("quotes").value().messages == 0);

  auto badTopic = [&](RequestedSettings settings) {
    auto answer = h.wait(h.broker().createTopic("other", settings));
    REQUIRE_FALSE(answer.ok());
    CHECK(answer.status().code() == Code::kInvalidArgument);
    return answer.status().message();
  };
  RequestedSettings tooLong;
  tooLong.defaultTtlMs = uint64_t{kMaxTtlMs} + 1;
  CHECK_THAT(badTopic(tooLong), Contains("default time to live must be at most 30 days"));
  RequestedSettings nowhere;
  nowhere.deadLetterExpired = true;
  CHECK_THAT(badTopic(nowhere), Contains("needs a dead-letter topic"));
  CHECK_FALSE(h.broker().describeTopic("other").ok());
}

TEST_CASE("groups and topics count their scheduled messages, across a restart", "[core]") {
  Harness h;
  h.createTopic("reminders");
  std::vector<MessageData> batch;
  batch.push_back(delayed("later", 60 * 60 * 1000));
  batch.push_back(delayed("soon", 150));
  batch.push_back(delayed("now", 0));
  REQUIRE(h.wait(h.broker().publish("reminders", std::move(batch))).ok());
  RecordingSink sink;
  uint64_t id = h.subscribe("reminders", "app", sink, 10);
  REQUIRE(sink.received.size() == 1);
  REQUIRE(h.wait(h.broker().ack(id, {3})).empty());  // Committed after the scheduling pass.
  CHECK(h.broker().describeGroup("reminders", "app").value().scheduled == 2);
  CHECK(h.broker().describeTopic("reminders").value().scheduled == 2);
  REQUIRE(h.eventually([&] { return sink.received.size() == 2; }));  // "soon" falls due.
  h.broker().unsubscribe(id);
  h.restart();
  CHECK(h.broker().describeGroup("reminders", "app").value().scheduled == 1);
}
