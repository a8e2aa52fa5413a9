// Atomic ack-and-publish (GroupDelivery::transact) over a real store.

#include <catch2/catch.hpp>

#include "core/broker.h"
#include "harness.h"

using namespace sluice;
using namespace sluice::core;
using namespace sluice::core::testing;
using Catch::Matchers::Contains;

namespace {

MessageData text(std::string payload) {
  MessageData m;
  m.payload = std::move(payload);
  return m;
}

// Acks `offsets` (with the delivery ids the sink saw) and publishes one message to "out".
TransactionRequest step(const std::string& id, const RecordingSink& sink,
                        std::vector<Offset> offsets, std::string payload = "done") {
  TransactionRequest request;
  request.id = id;
  for (Offset offset : offsets) {
    request.offsets.push_back(offset);
    for (const Delivery& d : sink.received)
      if (d.message.offset == offset) request.deliveryIds.push_back(d.deliveryId);
  }
  request.publishes.push_back({"out", {text(std::move(payload))}});
  return request;
}

uint64_t messagesIn(Harness& h, const std::string& topic) {
  auto view = h.broker().describeTopic(topic);
  REQUIRE(view.ok());
  return view.value().messages;
}

uint64_t pendingIn(Harness& h, const std::string& topic, const std::string& group) {
  auto view = h.broker().describeGroup(topic, group);
  REQUIRE(view.ok());
  return view.value().pending;
}

}  // namespace

TEST_CASE("a transaction acks and publishes in one commit; its retry answers the same offsets",
          "[core][transaction]") {
  Harness h;
  h.createTopic("in");
  h.createTopic("out");
  h.createTopic("audit");
  h.publish("in", 2);
  RecordingSink sink;
  uint64_t consumer = h.subscribe("in", "work", sink, /*prefetch=*/2);
  REQUIRE(sink.received.size() == 2);

  TransactionRequest request = step("tx-1", sink, {1});
  request.publishes[0].messages.push_back(text("second"));
  request.publishes.push_back({"audit", {text("audited")}});
  auto first = h.wait(h.broker().transact(consumer, request));
  REQUIRE(first.status().toString() == "ok");
  CHECK_FALSE(first.value().replayed);
  REQUIRE(first.value().outputs.size() == 2);
  REQUIRE(first.value().outputs[0].size() == 2);
  CHECK(first.value().outputs[0][0].offset == 1);
  CHECK(first.value().outputs[0][1].offset == 2);
  CHECK(first.value().outputs[1][0].offset == 1);
  CHECK(messagesIn(h, "out") == 2);
  CHECK(messagesIn(h, "audit") == 1);
  CHECK(pendingIn(h, "in", "work") == 1);  // Offset 1 acked, 2 still held.

  // The same request again (its ack would now fail): answered from the record, nothing added.
  auto retry = h.wait(h.broker().transact(consumer, request));
  REQUIRE(retry.ok());
  CHECK(retry.value().replayed);
  CHECK(retry.value().outputs[0][1].offset == 2);
  CHECK(messagesIn(h, "out") == 2);

  SECTION("across a restart, from another consumer of the group") {
    h.restart();
    RecordingSink again;
    uint64_t next = h.subscribe("in", "work", again, 2);
    auto replayed = h.wait(h.broker().transact(next, request));
    REQUIRE(replayed.ok());
    CHECK(replayed.value().replayed);
    CHECK(replayed.value().outputs[1][0].offset == 1);
    CHECK(messagesIn(h, "out") == 2);
    // Only offset 2 comes back: offset 1's ack was in the transaction's commit.
    REQUIRE(h.eventually([&] { return again.received.size() == 1; }));
    CHECK(again.received[0].message.offset == 2);
  }
  SECTION("the same id with other content is a conflict and changes nothing") {
    TransactionRequest other = step("tx-1", sink, {2}, "other");
    auto refused = h.wait(h.broker().transact(consumer, other));
    CHECK(refused.status().code() == Code::kTransactionConflict);
    CHECK_THAT(refused.status().message(), Contains("\"tx-1\" was already applied"));
    CHECK(messagesIn(h, "out") == 2);
    CHECK(pendingIn(h, "in", "work") == 1);
  }
  SECTION("once its window has passed, the id is forgotten") {
    h.broker().tickForTest(wallClockMs() + kTransactionWindowMs + 1);
    h.publish("in", 1);  // Commits after the expiry batch.
    auto late = h.wait(h.broker().transact(consumer, request));
    CHECK(late.status().code() == Code::kNotPending);  // Applied anew: its ack is long done.
    CHECK(messagesIn(h, "out") == 2);
  }
}

TEST_CASE("a retry while the first call commits joins its answer", "[core][transaction]") {
  Harness h;
  h.createTopic("in");
  h.createTopic("out");
  h.publish("in", 1);
  RecordingSink sink;
  uint64_t consumer = h.subscribe("in", "work", sink);
  TransactionRequest request = step("tx-1", sink, {1});
  auto first = h.broker().transact(consumer, request);
  auto second = h.broker().transact(consumer, request);
  auto conflicting = h.wait(h.broker().transact(consumer, step("tx-1", sink, {1}, "other")));
  CHECK(conflicting.status().code() == Code::kTransactionConflict);
  auto a = h.wait(std::move(first));
  auto b = h.wait(std::move(second));
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK_FALSE(a.value().replayed);
  CHECK(b.value().replayed);
  CHECK(a.value().outputs[0][0].offset == b.value().outputs[0][0].offset);
  CHECK(messagesIn(h, "out") == 1);
}

TEST_CASE("a transaction with any failing part changes nothing", "[core][transaction]") {
  Harness h;
  h.createTopic("in");
  RequestedSettings small;
  small.maxMessageSize = 16;
  h.createTopic("out", small);
  h.publish("in", 2);
  RecordingSink sink, other;
  uint64_t consumer = h.subscribe("in", "work", sink, /*prefetch=*/1);
  uint64_t second = h.subscribe("in", "work", other, /*prefetch=*/1);
  REQUIRE(sink.received.size() == 1);
  REQUIRE(other.received.size() == 1);
  const Offset mine = sink.received[0].message.offset;
  const Offset theirs = other.received[0].message.offset;
  REQUIRE(h.eventually([&] { return pendingIn(h, "in", "work") == 2; }));

  struct Case {
    const char* what;
    TransactionRequest request;
    Code code;
    const char* says;
  };
  std::vector<Case> cases;
  cases.push_back({"an offset never delivered", step("", sink, {mine}), Code::kNotPending,
                   "offset 99 is not pending"});
  cases.back().request.offsets.push_back(99);
  cases.back().request.deliveryIds.push_back(0);
  cases.push_back({"a message held by another consumer", step("", sink, {mine}), Code::kNotPending,
                   "is not pending for this consumer"});
  cases.back().request.offsets.push_back(theirs);
  cases.back().request.deliveryIds.push_back(other.received[0].deliveryId);
  cases.push_back({"an earlier delivery", step("", sink, {mine}), Code::kStaleDelivery,
                   "is not the current one"});
  cases.back().request.deliveryIds[0] += 1000;
  cases.push_back(
      {"a topic that does not exist", step("", sink, {mine}), Code::kTopicNotFound, "nowhere"});
  cases.back().request.publishes.push_back({"nowhere", {text("x")}});
  cases.push_back({"a message too large", step("", sink, {mine}, std::string(64, 'x')),
                   Code::kMessageTooLarge, "allows at most 16 bytes"});
  cases.push_back({"a bad id", step("has space", sink, {mine}), Code::kInvalidArgument,
                   "rules of a message id"});
  cases.push_back({"nothing to do", TransactionRequest{}, Code::kInvalidArgument,
                   "at least one ack or one message"});
  cases.push_back({"an offset named twice", step("", sink, {mine, mine}), Code::kInvalidArgument,
                   "acknowledged twice"});
  cases.push_back(
      {"a topic named twice", step("", sink, {mine}), Code::kInvalidArgument, "named twice"});
  cases.back().request.publishes.push_back({"out", {text("y")}});
  cases.push_back({"delivery ids of another length", step("", sink, {mine}), Code::kInvalidArgument,
                   "one delivery id per offset"});
  cases.back().request.deliveryIds.push_back(7);
  for (auto& c : cases) {
    INFO(c.what);
    auto refused = h.wait(h.broker().transact(consumer, c.request));
    CHECK(refused.status().code() == c.code);
    CHECK_THAT(refused.status().message(), Contains(c.says));
  }
  // Nothing was published or acked: both messages are still held.
  CHECK(messagesIn(h, "out") == 0);
  CHECK(pendingIn(h, "in", "work") == 2);
  CHECK(h.wait(h.broker().ack(consumer, {mine}, {sink.received[0].deliveryId})).empty());
  CHECK(h.wait(h.broker().ack(second, {theirs}, {other.received[0].deliveryId})).empty());
}

TEST_CASE("transactions of one call apply in order, each on its own", "[core][transaction]") {
  Harness h;
  h.createTopic("in");
  h.createTopic("out");
  h.publish("in", 4);
  RecordingSink sink;
  uint64_t consumer = h.subscribe("in", "work", sink, /*prefetch=*/4);
  REQUIRE(sink.received.size() == 4);
  std::vector<TransactionRequest> requests;
  requests.push_back(step("a", sink, {1}, "from 1"));
  requests.push_back(step("b", sink, {1}, "1 again"));  // Acked by "a" just before: refused.
  requests.push_back(step("a", sink, {1}, "from 1"));   // "a" again: its answer, replayed.
  requests.push_back(step("a", sink, {1}, "other"));    // "a" with other content: a conflict.
  requests.push_back(step("", sink, {2, 3}, "from 2 and 3"));
  TransactionRequest nowhere = step("c", sink, {4});
  nowhere.publishes[0].topic = "missing";
  requests.push_back(std::move(nowhere));
  auto answers = h.wait(h.broker().transactMany(consumer, std::move(requests)));
  REQUIRE(answers.size() == 6);
  REQUIRE(answers[0].ok());
  CHECK_FALSE(answers[0].value().replayed);
  CHECK(answers[1].status().code() == Code::kNotPending);
  REQUIRE(answers[2].ok());
  CHECK(answers[2].value().replayed);
  CHECK(answers[2].value().outputs[0][0].offset == answers[0].value().outputs[0][0].offset);
  CHECK(answers[3].status().code() == Code::kTransactionConflict);
  REQUIRE(answers[4].ok());
  CHECK(answers[4].value().outputs[0][0].offset == answers[0].value().outputs[0][0].offset + 1);
  CHECK(answers[5].status().code() == Code::kTopicNotFound);
  CHECK(messagesIn(h, "out") == 2);
  CHECK(pendingIn(h, "in", "work") == 1);  // Offset 4: its transaction was refused.
  // A retry of "a" in a later call is answered from the store's record.
  std::vector<TransactionRequest> later;
  later.push_back(step("a", sink, {1}, "from 1"));
  auto again = h.wait(h.broker().transactMany(consumer, std::move(later)));
  REQUIRE(again[0].ok());
  CHECK(again[0].value().replayed);
}
