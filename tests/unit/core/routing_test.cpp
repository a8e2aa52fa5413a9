// Subject routing through the broker core: publishes to a subject stored in every capturing
// topic in one commit, pattern changes, and groups filtered by subject.

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "core/broker.h"
#include "harness.h"

using namespace sluice;
using namespace sluice::core;
using namespace sluice::core::testing;
using Catch::Matchers::Contains;

namespace {

RequestedSettings capturing(std::vector<std::string> patterns) {
  RequestedSettings settings;
  settings.subjects = std::move(patterns);
  return settings;
}

std::vector<MessageData> messages(int count, const std::string& prefix = "m") {
  std::vector<MessageData> out(count);
  for (int i = 0; i < count; ++i)
    out[i].payload = prefix + std::to_string(i);
  return out;
}

uint64_t stored(Harness& h, const std::string& topic) {
  auto view = h.broker().describeTopic(topic);
  REQUIRE(view.ok());
  return view.value().messages;
}

std::vector<std::string> routeOf(Harness& h, const std::string& subject) {
  auto route = h.broker().route(subject);
  REQUIRE(route.ok());
  return route.value();
}

using Names = std::vector<std::string>;

}  // namespace

TEST_CASE("a subject publish is stored in every capturing topic in one commit", "[routing]") {
  Harness h;
  h.createTopic("orders", capturing({"orders.>"}));
  h.createTopic("audit", capturing({">"}));
  h.createTopic("payments", capturing({"payments.*"}));
  h.publish("orders", 2);  // Offsets 1 and 2 taken directly.

  const uint64_t batchesBefore = h.writer().stats().batches;
  auto routed = h.wait(h.broker().publishSubject("orders.eu.created", messages(3)));
  REQUIRE(routed.ok());
  CHECK(h.writer().stats().batches == batchesBefore + 1);  // One write batch, one commit.
  REQUIRE(routed.value().size() == 2);
  CHECK(routed.value()[0].topic == "audit");  // By name.
  CHECK(routed.value()[1].topic == "orders");
  REQUIRE(routed.value()[0].acks.size() == 3);
  CHECK(routed.value()[0].acks[0].offset == 1);
  CHECK(routed.value()[0].acks[2].offset == 3);
  CHECK(routed.value()[1].acks[0].offset == 3);
  CHECK(routed.value()[1].acks[2].offset == 5);
  CHECK(stored(h, "payments") == 0);

  for (const std::string& topic : {std::string("audit"), std::string("orders")}) {
    auto peeked = h.broker().peek(topic, 0, 10);
    REQUIRE(peeked.ok());
    const auto& last = peeked.value().back();
    CHECK(last.data.subject == "orders.eu.created");
    CHECK(last.data.payload == "m2");
  }
  auto direct = h.broker().peek("orders", 1, 1);
  REQUIRE(direct.ok());
  CHECK(direct.value()[0].data.subject.empty());  // Published to the topic itself.
}

TEST_CASE("a topic without patterns captures exactly its own name", "[routing]") {
  Harness h;
  h.createTopic("payments");
  h.createTopic("audit", capturing({">"}));
  CHECK(routeOf(h, "payments") == Names{"audit", "payments"});
  CHECK(routeOf(h, "payments.eu") == Names{"audit"});

  auto routed = h.wait(h.broker().publishSubject("payments", messages(1)));
  REQUIRE(routed.ok());
  REQUIRE(routed.value().size() == 2);
  auto own = h.broker().peek("payments", 0, 1);
  REQUIRE(own.ok());
  CHECK(own.value()[0].data.subject.empty());  // Its own name: not stored again.
  auto audit = h.broker().peek("audit", 0, 1);
  REQUIRE(audit.ok());
  CHECK(audit.value()[0].data.subject == "payments");
}

TEST_CASE("a subject no topic captures fails with noRoute and stores nothing", "[routing]") {
  Harness h;
  h.createTopic("orders", capturing({"orders.>"}));
  const uint64_t batchesBefore = h.writer().stats().batches;
  auto routed = h.wait(h.broker().publishSubject("invoices.paid", messages(2)));
  REQUIRE_FALSE(routed.ok());
  CHECK(routed.status().code() == Code::kNoRoute);
  CHECK_THAT(routed.status().message(), Contains("\"invoices.paid\""));
  CHECK(stored(h, "orders") == 0);
  CHECK(h.writer().stats().batches == batchesBefore);
  CHECK(routeOf(h, "invoices.paid").empty());

  auto wild = h.wait(h.broker().publishSubject("orders.*", messages(1)));
  REQUIRE_FALSE(wild.ok());
  CHECK(wild.status().code() == Code::kInvalidArgument);
  CHECK_THAT(wild.status().message(), Contains("wildcard"));
  auto badRoute = h.broker().route("orders..eu");
  REQUIRE_FALSE(badRoute.ok());
  CHECK(badRoute.status().code() == Code::kInvalidArgument);
}

TEST_CASE("a rejection by any capturing topic rejects the whole publish", "[routing]") {
  Harness h;
  RequestedSettings small = capturing({"orders.>"});
  small.maxMessageSize = 100;
  h.createTopic("orders", small);
  h.createTopic("audit", capturing({">"}));
  std::vector<MessageData> big(2);
  big[0].payload = "fits";
  big[1].payload = std::string(200, 'x');
  auto routed = h.wait(h.broker().publishSubject("orders.created", std::move(big)));
  REQUIRE_FALSE(routed.ok());
  CHECK(routed.status().code() == Code::kMessageTooLarge);
  CHECK_THAT(routed.status().message(), Contains("captured by topic \"orders\""));
  CHECK(stored(h, "audit") == 0);
  CHECK(stored(h, "orders") == 0);
}

TEST_CASE("dedup by message id applies per captured topic", "[routing]") {
  Harness h;
  h.createTopic("orders", capturing({"orders.>"}));
  h.createTopic("audit", capturing({">"}));
  std::vector<MessageData> first(1);
  first[0].payload = "a";
  first[0].id = "order-7";
  REQUIRE(h.wait(h.broker().publish("orders", first)).ok());  // Known to orders only.

  auto routed = h.wait(h.broker().publishSubject("orders.created", first));
  REQUIRE(routed.ok());
  REQUIRE(routed.value().size() == 2);
  CHECK_FALSE(routed.value()[0].acks[0].duplicate);  // audit: new
  CHECK(routed.value()[1].acks[0].duplicate);        // orders: seen
  CHECK(routed.value()[1].acks[0].offset == 1);

  auto again = h.wait(h.broker().publishSubject("orders.created", first));
  REQUIRE(again.ok());
  CHECK(again.value()[0].acks[0].duplicate);
  CHECK(again.value()[0].acks[0].offset == routed.value()[0].acks[0].offset);
  CHECK(stored(h, "audit") == 1);
  CHECK(stored(h, "orders") == 1);
}

TEST_CASE("patterns change on a live topic; stored messages stay where they are", "[routing]") {
  Harness h;
  h.createTopic("orders", capturing({"orders.>"}));
  h.createTopic("eu");
  REQUIRE(h.wait(h.broker().publishSubject("orders.eu.created", messages(1))).ok());
  CHECK(routeOf(h, "orders.eu.created") == Names{"orders"});

  auto changed = h.wait(h.broker().changeSubjects("eu", {"*.eu.>", "eu"}, {}));
  REQUIRE(changed.ok());
  CHECK(changed.value().settings.subjects == Names{"*.eu.>", "eu"});
  CHECK(routeOf(h, "orders.eu.created") == Names{"eu", "orders"});
  REQUIRE(h.wait(h.broker().publishSubject("orders.eu.created", messages(1))).ok());
  CHECK(stored(h, "eu") == 1);

  auto narrowed = h.wait(h.broker().changeSubjects("orders", {"orders.us.>"}, {"orders.>"}));
  REQUIRE(narrowed.ok());
  CHECK(narrowed.value().settings.subjects == Names{"orders.us.>"});
  CHECK(routeOf(h, "orders.eu.created") == Names{"eu"});
  CHECK(routeOf(h, "orders") == Names{});  // Patterns replace the topic's own name.
  CHECK(stored(h, "orders") == 2);         // Both earlier copies stay.

  // Removing the last pattern: the topic captures its own name again.
  REQUIRE(h.wait(h.broker().changeSubjects("orders", {}, {"orders.us.>"})).ok());
  CHECK(routeOf(h, "orders") == Names{"orders"});

  SECTION("bad changes are refused and change nothing") {
    auto nothing = h.wait(h.broker().changeSubjects("eu", {}, {}));
    CHECK(nothing.status().code() == Code::kInvalidArgument);
    auto absent = h.wait(h.broker().changeSubjects("eu", {}, {"us.>"}));
    CHECK(absent.status().code() == Code::kInvalidArgument);
    CHECK_THAT(absent.status().message(), Contains("no subject pattern \"us.>\""));
    auto partial = h.wait(h.broker().changeSubjects("eu", {"eu.a*b"}, {}));
    CHECK(partial.status().code() == Code::kInvalidArgument);
    CHECK_THAT(partial.status().message(), Contains("partial wildcard"));
    auto notLast = h.wait(h.broker().changeSubjects("eu", {"eu.>.x"}, {}));
    CHECK(notLast.status().code() == Code::kInvalidArgument);
    auto missing = h.wait(h.broker().changeSubjects("nope", {"a"}, {}));
    CHECK(missing.status().code() == Code::kTopicNotFound);
    std::vector<std::string> many;
    for (int i = 0; i < 31; ++i)
      many.push_back("many." + std::to_string(i));
    auto tooMany = h.wait(h.broker().changeSubjects("eu", many, {}));  // 2 held + 31.
    CHECK(tooMany.status().code() == Code::kLimitExceeded);
    CHECK_THAT(tooMany.status().message(), Contains("would have 33"));
    auto described = h.broker().describeTopic("eu");
    REQUIRE(described.ok());
    CHECK(described.value().settings.subjects == Names{"*.eu.>", "eu"});
  }
}

TEST_CASE("a topic's patterns are validated when it is created", "[routing]") {
  Harness h;
  auto bad = h.wait(h.broker().createTopic("orders", capturing({"orders.>", "orders.>"})));
  CHECK(bad.status().code() == Code::kInvalidArgument);
  CHECK_THAT(bad.status().message(), Contains("twice"));
  auto wild = h.wait(h.broker().createTopic("orders", capturing({"orders*"})));
  CHECK(wild.status().code() == Code::kInvalidArgument);
  CHECK(h.broker().describeTopic("orders").status().code() == Code::kTopicNotFound);
}

TEST_CASE("the broker-wide pattern limit holds across topics", "[routing]") {
  BrokerOptions options;
  options.limits.maxSubjectPatterns = 3;
  Harness h(options);
  h.createTopic("a", capturing({"a.>", "x.*"}));
  auto over = h.wait(h.broker().createTopic("b", capturing({"b.>", "b.*"})));
  CHECK(over.status().code() == Code::kLimitExceeded);
  CHECK_THAT(over.status().message(), Contains("at most 3 subject patterns"));
  h.createTopic("b", capturing({"b.>"}));
  auto change = h.wait(h.broker().changeSubjects("b", {"b.*"}, {}));
  CHECK(change.status().code() == Code::kLimitExceeded);
  // Replacing within the room is fine.
  REQUIRE(h.wait(h.broker().changeSubjects("b", {"b.*"}, {"b.>"})).ok());
  // Deleting a topic gives its patterns back.
  REQUIRE(h.wait(h.broker().deleteTopic("a")).ok());
  REQUIRE(h.wait(h.broker().changeSubjects("b", {"b.x", "b.y"}, {})).ok());
  CHECK(routeOf(h, "a.b").empty());
}

TEST_CASE("patterns and group filters survive a restart", "[routing]") {
  Harness h;
  h.createTopic("orders", capturing({"orders.>"}));
  h.createTopic("audit", capturing({">"}));
  REQUIRE(h.wait(h.broker().changeSubjects("audit", {"audit.*"}, {">"})).ok());
  REQUIRE(h.wait(h.broker().createGroup("orders", "eu", StartAt{}, false, {"orders.eu.>"})).ok());
  REQUIRE(h.wait(h.broker().publishSubject("orders.eu.created", messages(2))).ok());
  REQUIRE(h.wait(h.broker().publishSubject("orders.us.created", messages(3))).ok());
  h.restart();
  CHECK(routeOf(h, "orders.eu.created") == Names{"orders"});
  CHECK(routeOf(h, "audit.x") == Names{"audit"});
  auto group = h.broker().describeGroup("orders", "eu");
  REQUIRE(group.ok());
  CHECK(group.value().filter == Names{"orders.eu.>"});
  CHECK(group.value().lagMessages == 2);  // Counted again from the store.
  auto peeked = h.broker().peek("orders", 0, 10);
  REQUIRE(peeked.ok());
  REQUIRE(peeked.value().size() == 5);
  CHECK(peeked.value()[4].data.subject == "orders.us.created");
}

TEST_CASE("a filtered group receives and acks only matching messages; its lag counts them",
          "[routing]") {
  Harness h;
  h.createTopic("events", capturing({"events.>"}));
  auto created = h.wait(h.broker().createGroup("events", "a-only", StartAt{}, false, {"events.a"}));
  REQUIRE(created.ok());
  CHECK(created.value().filter == Names{"events.a"});
  CHECK(created.value().lagMessages == 0);
  for (int round = 0; round < 10; ++round) {
    REQUIRE(h.wait(h.broker().publishSubject("events.a", messages(2, "a"))).ok());
    REQUIRE(h.wait(h.broker().publishSubject("events.b", messages(3, "b"))).ok());
  }
  REQUIRE(h.wait(h.broker().publish("events", messages(1, "direct"))).ok());  // Subject "events".
  auto before = h.broker().describeGroup("events", "a-only");
  REQUIRE(before.ok());
  CHECK(before.value().lagMessages == 20);
  CHECK(before.value().lagMs >= 0);

  RecordingSink sink;
  uint64_t consumer = h.subscribe("events", "a-only", sink, 100, 30000, false, {"events.a"});
  REQUIRE(h.eventually([&] { return sink.received.size() == 20; }));
  std::vector<Offset> offsets;
  for (const Delivery& d : sink.received) {
    CHECK(d.message.data.subject == "events.a");
    CHECK(d.message.data.payload[0] == 'a');
    offsets.push_back(d.message.offset);
  }
  // Delivery state is written behind the deliveries.
  REQUIRE(h.eventually(
      [&] { return h.broker().describeGroup("events", "a-only").value().pending == 20; }));
  CHECK(h.broker().describeGroup("events", "a-only").value().lagMessages == 0);
  CHECK(h.wait(h.broker().ack(consumer, offsets)).empty());

  // New messages: counted as they commit, only the matching ones.
  REQUIRE(h.wait(h.broker().publishSubject("events.b", messages(5, "b"))).ok());
  auto after = h.broker().describeGroup("events", "a-only");
  REQUIRE(after.ok());
  CHECK(after.value().lagMessages == 0);
  CHECK(after.value().pending == 0);
  CHECK(after.value().position == 52);  // Passed over the non-matching ones too.
  REQUIRE(h.wait(h.broker().publishSubject("events.a", messages(1, "a"))).ok());
  REQUIRE(h.eventually([&] { return sink.received.size() == 21; }));

  SECTION("a group is joined with its own filter or none") {
    RecordingSink other;
    auto mismatch = h.broker().subscribe("events", "a-only", StartAt{}, 10, 30000, other, "test",
                                         false, {"events.b"});
    REQUIRE_FALSE(mismatch.ok());
    CHECK(mismatch.status().code() == Code::kInvalidArgument);
    CHECK_THAT(mismatch.status().message(), Contains("events.a"));
    auto badFilter =
        h.broker().subscribe("events", "new", StartAt{}, 10, 30000, other, "test", false, {"a*"});
    CHECK(badFilter.status().code() == Code::kInvalidArgument);
    RecordingSink plain;
    h.subscribe("events", "a-only", plain);  // No filter asked: joins as it is.
    auto joined = h.broker().describeGroup("events", "a-only");
    REQUIRE(joined.ok());
    CHECK(joined.value().consumers.size() == 2);
  }
}

TEST_CASE("a filtered group passes over a long run of other subjects without deliveries",
          "[routing]") {
  Harness h;
  h.createTopic("events", capturing({"events.>"}));
  // 40,000 others (more than one delivery pass passes over) around 4 matches.
  for (int round = 0; round < 4; ++round) {
    for (int chunk = 0; chunk < 10; ++chunk)
      REQUIRE(h.wait(h.broker().publishSubject("events.noise", messages(1000, "n"))).ok());
    REQUIRE(h.wait(h.broker().publishSubject("events.signal", messages(1, "s"))).ok());
  }
  RecordingSink sink;
  h.subscribe("events", "signals", sink, 10, 30000, false, {"events.signal"});
  REQUIRE(h.eventually([&] { return sink.received.size() == 4; }));
  CHECK(sink.offsets() == std::vector<Offset>{10001, 20002, 30003, 40004});
  auto view = h.broker().describeGroup("events", "signals");
  REQUIRE(view.ok());
  CHECK(view.value().delivered == 4);
  CHECK(view.value().lagMessages == 0);
}

TEST_CASE("retention past a filtered group's position counts its lag again", "[routing]") {
  Harness h;
  RequestedSettings settings = capturing({"events.>"});
  settings.maxMessages = 10;
  h.createTopic("events", settings);
  REQUIRE(h.wait(h.broker().createGroup("events", "a", StartAt{}, false, {"events.a"})).ok());
  for (int i = 0; i < 8; ++i)
    REQUIRE(
        h.wait(h.broker().publishSubject(i % 2 == 0 ? "events.a" : "events.b", messages(3))).ok());
  // 24 published, the last 10 kept: offsets 15..24, of rounds 4 (a: 15), 5 (b), 6 (a), 7 (b).
  REQUIRE(h.eventually([&] { return stored(h, "events") <= 10; }));
  auto view = h.broker().describeGroup("events", "a");
  REQUIRE(view.ok());
  CHECK(view.value().lagMessages == 4);
}

TEST_CASE("with --auto-create-topics a subject nobody captures creates its topic", "[routing]") {
  BrokerOptions options;
  options.autoCreateTopics = true;
  Harness h(options);
  auto routed = h.wait(h.broker().publishSubject("fresh.topic", messages(2)));
  REQUIRE(routed.ok());
  REQUIRE(routed.value().size() == 1);
  CHECK(routed.value()[0].topic == "fresh.topic");
  CHECK(stored(h, "fresh.topic") == 2);
  // Once it exists it captures its name as any topic does.
  CHECK(routeOf(h, "fresh.topic") == Names{"fresh.topic"});
}

TEST_CASE("a pattern change racing with publishes splits them by call order, never a copy",
          "[routing]") {
  Harness h;
  h.createTopic("orders", capturing({"orders.>"}));
  h.createTopic("audit");
  h.writer().pause();  // Everything below is queued behind one another, then committed together.
  auto before = h.broker().publishSubject("orders.created", messages(2, "before"));
  auto change = h.broker().changeSubjects("audit", {"orders.*"}, {});
  auto after = h.broker().publishSubject("orders.created", messages(2, "after"));
  h.writer().resume();
  auto routedBefore = h.wait(std::move(before));
  REQUIRE(h.wait(std::move(change)).ok());
  auto routedAfter = h.wait(std::move(after));
  REQUIRE(routedBefore.ok());
  REQUIRE(routedAfter.ok());
  CHECK(routedBefore.value().size() == 1);  // orders only: routed before the change.
  CHECK(routedAfter.value().size() == 2);   // audit and orders.
  auto audit = h.broker().peek("audit", 0, 10);
  REQUIRE(audit.ok());
  REQUIRE(audit.value().size() == 2);
  CHECK(audit.value()[0].data.payload == "after0");
  h.restart();
  CHECK(stored(h, "audit") == 2);
  CHECK(stored(h, "orders") == 4);
  CHECK(routeOf(h, "orders.x") == Names{"audit", "orders"});
}
