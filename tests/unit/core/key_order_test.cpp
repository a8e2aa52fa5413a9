// Key-ordered groups: never two messages of one key in flight, each key in offset order.

#include <catch2/catch.hpp>

#include "core/broker.h"
#include "harness.h"

using namespace sluice;
using namespace sluice::core;
using namespace sluice::core::testing;
using Catch::Matchers::Contains;

namespace {

constexpr bool kKeyOrdered = true;

// Publishes one message per (key, payload); an empty key means none.
void publishKeyed(Harness& h, const std::string& topic,
                  const std::vector<std::pair<std::string, std::string>>& messages) {
  std::vector<MessageData> batch;
  for (const auto& [key, payload] : messages) {
    MessageData message;
    if (!key.empty()) message.key = key;
    message.payload = payload;
    batch.push_back(std::move(message));
  }
  REQUIRE(h.wait(h.broker().publish(topic, std::move(batch))).ok());
}

std::vector<std::string> payloads(const RecordingSink& sink) {
  std::vector<std::string> out;
  for (const Delivery& d : sink.received)
    out.push_back(d.message.data.payload);
  return out;
}

GroupView group(Harness& h, const std::string& topic, const std::string& name) {
  auto view = h.broker().describeGroup(topic, name);
  REQUIRE(view.ok());
  return view.value();
}

}  // namespace

TEST_CASE("a key-ordered group holds a key's next message until the last one is acked",
          "[core][order]") {
  Harness h;
  h.createTopic("orders");
  publishKeyed(h, "orders", {{"k1", "a"}, {"k2", "b"}, {"k1", "c"}, {"k1", "d"}, {"", "e"}});
  RecordingSink first, second;
  uint64_t one = h.subscribe("orders", "billing", first, 10, 30000, kKeyOrdered);
  uint64_t two = h.subscribe("orders", "billing", second, 10);  // Joins: the mode is the group's.
  REQUIRE(h.eventually([&] { return first.received.size() + second.received.size() == 3; }));
  h.settle();
  CHECK(payloads(first) == std::vector<std::string>{"a", "b", "e"});
  CHECK(second.received.empty());
  GroupView view = group(h, "orders", "billing");
  CHECK(view.keyOrdered);
  CHECK(view.keyBlocked == 2);
  CHECK(view.position == 6);  // Parked messages are passed, not lost: they wait on disk.

  // Settles `offset` with whichever consumer holds it.
  auto settle = [&](bool ack, Offset offset) {
    auto op = [&](uint64_t id) {
      return h.wait(ack ? h.broker().ack(id, {offset}) : h.broker().nack(id, {offset}, 0));
    };
    auto failures = op(one);
    if (!failures.empty()) failures = op(two);
    REQUIRE(failures.empty());
  };
  auto times = [&](Offset offset) {
    size_t n = 0;
    for (const RecordingSink* sink : {&first, &second})
      for (const Delivery& d : sink->received)
        n += d.message.offset == offset ? 1 : 0;
    return n;
  };
  auto total = [&] { return first.received.size() + second.received.size(); };
  settle(true, 1);  // a: now c may go, to either consumer.
  REQUIRE(h.eventually([&] { return total() == 4; }));
  CHECK(times(3) == 1);
  settle(false, 3);  // A nack keeps the key: c again, not d.
  REQUIRE(h.eventually([&] { return total() == 5; }));
  CHECK(times(3) == 2);
  CHECK(times(4) == 0);
  settle(true, 3);
  REQUIRE(h.eventually([&] { return total() == 6; }));
  CHECK(times(4) == 1);
  CHECK(group(h, "orders", "billing").keyBlocked == 0);
}

TEST_CASE("key order holds through ack timeouts, disconnects and a restart", "[core][order]") {
  Harness h;
  h.createTopic("orders");
  publishKeyed(h, "orders", {{"k", "1"}, {"k", "2"}, {"k", "3"}});
  {
    RecordingSink slow;
    uint64_t id = h.subscribe("orders", "app", slow, 10, /*ackTimeoutMs=*/50, kKeyOrdered);
    REQUIRE(h.eventually([&] { return slow.received.size() == 2; }));  // 1, timed out, 1 again.
    CHECK(payloads(slow) == std::vector<std::string>{"1", "1"});
    h.broker().unsubscribe(id);  // Left held: due again, still first.
  }
  h.restart();
  GroupView view = group(h, "orders", "app");
  CHECK(view.keyOrdered);
  CHECK(view.keyBlocked == 2);
  RecordingSink sink;
  uint64_t id = h.subscribe("orders", "app", sink, 10);
  REQUIRE(h.eventually([&] { return sink.received.size() == 1; }));
  h.settle();
  REQUIRE(sink.received.size() == 1);
  CHECK(sink.received[0].message.data.payload == "1");
  for (Offset next : {Offset{2}, Offset{3}}) {
    REQUIRE(h.wait(h.broker().ack(id, {next - 1})).empty());
    REQUIRE(h.eventually([&] { return sink.received.size() == next; }));
    CHECK(sink.received.back().message.offset == next);
  }
}

TEST_CASE("a key-ordered group parked at a restart keeps the key's next message parked",
          "[core][order]") {
  Harness h;
  h.createTopic("orders");
  publishKeyed(h, "orders", {{"k", "1"}, {"k", "2"}});
  {
    RecordingSink sink;
    uint64_t id = h.subscribe("orders", "app", sink, 10, 30000, kKeyOrdered);
    REQUIRE(sink.received.size() == 1);
    REQUIRE(h.wait(h.broker().ack(id, {1})).empty());  // 2 is woken once the ack commits.
    REQUIRE(h.eventually([&] { return sink.received.size() == 2; }));
    h.broker().unsubscribe(id);
  }
  publishKeyed(h, "orders", {{"k", "3"}});
  h.restart();
  RecordingSink sink;
  uint64_t id = h.subscribe("orders", "app", sink, 10);
  REQUIRE(h.eventually([&] { return sink.received.size() == 1; }));
  h.settle();
  REQUIRE(sink.received.size() == 1);
  CHECK(sink.received[0].message.data.payload == "2");
  REQUIRE(h.wait(h.broker().ack(id, {2})).empty());
  REQUIRE(h.eventually([&] { return sink.received.size() == 2; }));
  CHECK(sink.received[1].message.data.payload == "3");
}

TEST_CASE("a key's next message held at a stop is its key's first after the restart",
          "[core][order]") {
  // Delivered from memory, its entry parked all along: the restart finds it first of its key.
  Harness h;
  h.createTopic("orders");
  publishKeyed(h, "orders", {{"k", "1"}, {"k", "2"}, {"k", "3"}});
  {
    RecordingSink sink;
    uint64_t id = h.subscribe("orders", "app", sink, 10, 30000, kKeyOrdered);
    REQUIRE(sink.received.size() == 1);
    REQUIRE(h.wait(h.broker().ack(id, {1})).empty());
    REQUIRE(h.eventually([&] { return sink.received.size() == 2; }));
    CHECK(sink.received[1].message.offset == 2);
    h.settle();
  }
  h.restart();  // 2 still held, never acked.
  CHECK(group(h, "orders", "app").keyBlocked == 1);
  RecordingSink sink;
  uint64_t id = h.subscribe("orders", "app", sink, 10);
  REQUIRE(h.eventually([&] { return sink.received.size() == 1; }));
  h.settle();
  REQUIRE(sink.received.size() == 1);
  CHECK(sink.received[0].message.offset == 2);
  REQUIRE(h.wait(h.broker().ack(id, {2})).empty());
  REQUIRE(h.eventually([&] { return sink.received.size() == 2; }));
  CHECK(sink.received[1].message.offset == 3);
  REQUIRE(h.wait(h.broker().ack(id, {3})).empty());
  h.settle();
  CHECK(group(h, "orders", "app").pending == 0);
}

TEST_CASE("a dead-lettered message releases its key", "[core][order]") {
  Harness h;
  h.createTopic("jobs.dead");
  RequestedSettings settings;
  settings.maxDeliveries = 1;
  settings.deadLetterTopic = "jobs.dead";
  h.createTopic("jobs", settings);
  publishKeyed(h, "jobs", {{"k", "poison"}, {"k", "next"}});
  RecordingSink sink;
  uint64_t id = h.subscribe("jobs", "workers", sink, 10, 30000, kKeyOrdered);
  REQUIRE(sink.received.size() == 1);
  REQUIRE(h.wait(h.broker().nack(id, {1}, 0)).empty());
  REQUIRE(h.eventually([&] { return sink.received.size() == 2; }));
  CHECK(sink.received[1].message.data.payload == "next");
  CHECK(group(h, "jobs", "workers").deadLettered == 1);
}

TEST_CASE("retention removing a key's message in flight lets its next one go", "[core][order]") {
  Harness h;
  RequestedSettings settings;
  settings.maxMessages = 3;
  h.createTopic("orders", settings);
  publishKeyed(h, "orders", {{"k", "a"}, {"k", "b"}, {"k", "c"}});
  RecordingSink sink;
  uint64_t id = h.subscribe("orders", "app", sink, 10, 30000, kKeyOrdered);
  REQUIRE(sink.received.size() == 1);
  REQUIRE(h.wait(h.broker().nack(id, {1}, /*delayMs=*/3600 * 1000)).empty());  // a waits.
  publishKeyed(h, "orders", {{"", "x"}, {"", "y"}});  // Keeps c, x, y: a and b are gone.
  REQUIRE(h.eventually([&] { return sink.received.size() == 4; }));
  CHECK(payloads(sink) == std::vector<std::string>{"a", "c", "x", "y"});
  CHECK(group(h, "orders", "app").keyBlocked == 0);
}

TEST_CASE("key order is chosen at creation; asking it of an unordered group is refused",
          "[core][order]") {
  Harness h;
  h.createTopic("orders");
  auto created = h.wait(h.broker().createGroup("orders", "plain", StartAt{}));
  REQUIRE(created.ok());
  CHECK_FALSE(created.value().keyOrdered);
  RecordingSink sink;
  auto refused = h.broker().subscribe("orders", "plain", StartAt{}, 10, 30000, sink, "t", true);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == Code::kInvalidArgument);
  CHECK_THAT(refused.status().message(), Contains("exists without key ordering"));
  auto again = h.wait(h.broker().createGroup("orders", "plain", StartAt{}, true));
  REQUIRE_FALSE(again.ok());
  CHECK(again.status().code() == Code::kInvalidArgument);
  auto ordered = h.wait(h.broker().createGroup("orders", "ordered", StartAt{}, true));
  REQUIRE(ordered.ok());
  CHECK(ordered.value().keyOrdered);
  h.restart();
  CHECK(group(h, "orders", "ordered").keyOrdered);  // Durable.
}

TEST_CASE("a key-ordered group tracks a bounded number of messages", "[core][order]") {
  BrokerOptions options;
  options.limits.maxKeyedMessages = 3;
  Harness h(options);
  h.createTopic("orders");
  publishKeyed(h, "orders", {{"k", "1"}, {"k", "2"}, {"k", "3"}, {"k", "4"}, {"", "free"}});
  RecordingSink sink;
  uint64_t id = h.subscribe("orders", "app", sink, 10, 30000, kKeyOrdered);
  h.settle();
  CHECK(payloads(sink) == std::vector<std::string>{"1"});  // 2 and 3 parked; then full.
  GroupView view = group(h, "orders", "app");
  CHECK(view.keyBlocked == 2);
  CHECK(view.position == 4);
  REQUIRE(h.wait(h.broker().ack(id, {1})).empty());
  REQUIRE(h.eventually([&] { return sink.received.size() == 3; }));  // 2, and "free" past 4.
  auto got = payloads(sink);
  std::sort(got.begin(), got.end());
  CHECK(got == std::vector<std::string>{"1", "2", "free"});
  CHECK(group(h, "orders", "app").keyBlocked == 2);
}
