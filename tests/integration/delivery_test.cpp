// Publishing, delivery to groups and consumers, acks, nacks and redelivery against a real
// sluiced.

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "integration/broker_fixture.h"

namespace sluice::test {
namespace {

TEST_CASE("a published message arrives with its payload key headers and id and an ack ends it",
          "[integration]") {
  Broker broker;
  createTopic(broker.admin(), "orders.eu.created");

  OutgoingMessage sent;
  sent.payload = std::string("binary\0payload\xff", 15);
  sent.key = "customer-42";
  sent.headers = {{"content-type", "application/json"}, {"trace", "abc123"}};
  sent.id = "order-1";
  int64_t before = nowMs();
  auto first = broker.producer().publish("orders.eu.created", sent);
  int64_t after = nowMs();
  INFO(outcome(first));
  REQUIRE(first.ok());
  CHECK(first.value().offset == 1);
  CHECK_FALSE(first.value().duplicate);

  OutgoingMessage emptyKey;
  emptyKey.payload = "second";
  emptyKey.key = "";
  OutgoingMessage noKey;
  noKey.payload = "third";
  auto second = broker.producer().publish("orders.eu.created", emptyKey);
  auto third = broker.producer().publish("orders.eu.created", noKey);
  REQUIRE(second.ok());
  REQUIRE(third.ok());
  CHECK(second.value().offset == 2);
  CHECK(third.value().offset == 3);

  auto consumer = subscribe(broker.client(), "orders.eu.created", "billing");
  auto received = receiveMessages(consumer, 3);
  REQUIRE(received.size() == 3);

  const Message& message = received[0];
  CHECK(message.offset() == 1);
  CHECK(message.topic() == "orders.eu.created");
  CHECK(message.payload() == sent.payload);
  CHECK(message.key() == sent.key);
  CHECK(message.headers() == sent.headers);
  CHECK(message.id() == "order-1");
  CHECK(message.deliveries() == 1);
  CHECK(message.timestampMs() >= before - 1);
  CHECK(message.timestampMs() <= after + 1);

  CHECK(received[1].offset() == 2);
  CHECK(received[1].payload() == "second");
  REQUIRE(received[1].key().has_value());
  CHECK(received[1].key()->empty());
  CHECK(received[1].id().empty());
  CHECK(received[2].offset() == 3);
  CHECK_FALSE(received[2].key().has_value());
  CHECK(received[2].headers().empty());

  ackAll(received);
  auto group = describeGroup(broker.admin(), "orders.eu.created", "billing");
  CHECK(group.pending == 0);
  CHECK(group.ackFloor == 4);

  // Acknowledged messages never come back to the group, not even to a new consumer.
  consumer.close();
  auto again = subscribe(broker.client(), "orders.eu.created", "billing");
  checkNothingArrives(again);
}

TEST_CASE("two consumers in one group split 10000 messages with none lost and none duplicated",
          "[integration]") {
  constexpr size_t kMessages = 10000;
  Broker broker;
  createTopic(broker.admin(), "jobs");
  Client clientA = broker.connect();
  Client clientB = broker.connect();
  // Both join before anything is published, so both get a share.
  Consumer consumers[2] = {subscribe(clientA, "jobs", "workers"),
                           subscribe(clientB, "jobs", "workers")};

  std::atomic<size_t> total{0};
  std::vector<Message> received[2];
  std::string failures[2];
  auto deadline = std::chrono::steady_clock::now() + 60s;
  auto work = [&](int index) {
    std::vector<std::future<Result<void>>> acks;
    while (total.load() < kMessages && std::chrono::steady_clock::now() < deadline) {
      auto message = consumers[index].receive(100ms);
      if (!message.ok()) {
        if (message.error().code != ErrorCode::kTimeout) {
          failures[index] = message.error().toString();
          return;
        }
        continue;
      }
      acks.push_back(message.value().ackAsync());
      received[index].push_back(std::move(message).value());
      ++total;
    }
    for (auto& ack : acks) {
      auto result = ack.get();
      if (!result.ok() && failures[index].empty()) failures[index] = result.error().toString();
    }
  };
  // Published before the threads start, so that a failing REQUIRE cannot leave them running.
  auto offsets = publishPayloads(broker.producer(), "jobs", kMessages);
  std::thread a(work, 0);
  std::thread b(work, 1);
  a.join();
  b.join();
  CHECK(offsets == offsetRange(1, kMessages));
  CHECK(failures[0].empty());
  CHECK(failures[1].empty());

  std::set<uint64_t> seen[2];
  size_t redeliveries = 0;
  for (int i = 0; i < 2; ++i) {
    for (const auto& message : received[i]) {
      seen[i].insert(message.offset());
      if (message.deliveries() != 1) ++redeliveries;
      CHECK(message.payload() == "m" + std::to_string(message.offset() - 1));
    }
  }
  INFO("consumer A got " << received[0].size() << ", consumer B got " << received[1].size());
  CHECK(seen[0].size() == received[0].size());  // No message twice to one consumer.
  CHECK(seen[1].size() == received[1].size());
  std::vector<uint64_t> both;
  std::set_intersection(seen[0].begin(), seen[0].end(), seen[1].begin(), seen[1].end(),
                        std::back_inserter(both));
  CHECK(both.empty());
  std::set<uint64_t> all = seen[0];
  all.insert(seen[1].begin(), seen[1].end());
  CHECK(all.size() == kMessages);
  CHECK((all.empty() || (*all.begin() == 1 && *all.rbegin() == kMessages)));
  CHECK(redeliveries == 0);
  CHECK_FALSE(received[0].empty());
  CHECK_FALSE(received[1].empty());

  CHECK(eventually([&] {
    auto group = broker.admin().describeGroup("jobs", "workers");
    return group.ok() && group.value().pending == 0 && group.value().ackFloor == kMessages + 1;
  }));
  checkNothingArrives(consumers[0], 100ms);
  checkNothingArrives(consumers[1], 100ms);
}

TEST_CASE("a callback consumer gets each message once in order and may ack in its handler",
          "[integration]") {
  Broker broker;
  createTopic(broker.admin(), "events");
  std::mutex mu;
  std::vector<uint64_t> offsets;
  std::atomic<int> ackFailures{0};
  auto consumer = broker.client().subscribe("events", "audit", {}, [&](Message message) {
    if (!message.ack().ok()) ++ackFailures;
    std::lock_guard<std::mutex> lock(mu);
    offsets.push_back(message.offset());
  });
  INFO(outcome(consumer));
  REQUIRE(consumer.ok());
  publishPayloads(broker.producer(), "events", 50);

  CHECK(eventually([&] {
    std::lock_guard<std::mutex> lock(mu);
    return offsets.size() >= 50;
  }));
  CHECK(eventually([&] {
    auto group = broker.admin().describeGroup("events", "audit");
    return group.ok() && group.value().ackFloor == 51 && group.value().pending == 0;
  }));
  CHECK(ackFailures == 0);
  // A callback consumer has no pull loop.
  CHECK_THAT(outcome(consumer.value().receive(10ms)), IsError(ErrorCode::kInvalidArgument));
  consumer.value().close();
  std::lock_guard<std::mutex> lock(mu);
  CHECK(offsets == offsetRange(1, 50));
}

TEST_CASE("every group receives every message", "[integration]") {
  Broker broker;
  createTopic(broker.admin(), "events");
  auto billing = subscribe(broker.client(), "events", "billing");
  auto published = publishPayloads(broker.producer(), "events", 100);
  // A group created after the publishes starts at the earliest message by default.
  auto audit = subscribe(broker.client(), "events", "audit");

  auto toBilling = receiveMessages(billing, 100);
  auto toAudit = receiveMessages(audit, 100);
  CHECK(offsetsOf(toBilling) == published);
  CHECK(offsetsOf(toAudit) == published);
  ackAll(toBilling);
  ackAll(toAudit);

  auto topic = describeTopic(broker.admin(), "events");
  REQUIRE(topic.groups.size() == 2);
  for (const auto& group : topic.groups) {
    INFO("group " << group.name);
    CHECK(group.ackFloor == 101);
    CHECK(group.pending == 0);
  }
  checkNothingArrives(billing, 100ms);
  checkNothingArrives(audit, 100ms);
}

TEST_CASE("an unacknowledged message goes to another consumer when its consumer disconnects",
          "[integration]") {
  Broker broker;
  createTopic(broker.admin(), "tasks");
  Client first = broker.connect();
  auto holder = subscribe(first, "tasks", "workers");
  auto published = publishPayloads(broker.producer(), "tasks", 1, "task");
  auto held = receiveMessages(holder, 1);
  REQUIRE(held.size() == 1);
  CHECK(held[0].deliveries() == 1);

  auto other = subscribe(broker.client(), "tasks", "workers");
  // Still in flight to the first consumer: nobody else gets it.
  checkNothingArrives(other);

  SECTION("closing the consumer") {
    holder.close();
  }
  SECTION("closing the client") {
    first.close();
  }

  auto redelivered = receiveMessages(other, 1);
  REQUIRE(redelivered.size() == 1);
  CHECK(redelivered[0].offset() == published[0]);
  CHECK(redelivered[0].payload() == "task0");
  CHECK(redelivered[0].deliveries() == 2);
  CHECK(redelivered[0].ack().ok());
  CHECK(describeGroup(broker.admin(), "tasks", "workers").redelivered >= 1);
  checkNothingArrives(other, 100ms);
}

TEST_CASE("nackAsync nacks without waiting, with its delay, and a second nack fails",
          "[integration]") {
  constexpr auto kDelay = 300ms;
  Broker broker;
  createTopic(broker.admin(), "tasks");
  auto consumer = subscribe(broker.client(), "tasks", "workers");
  publishPayloads(broker.producer(), "tasks", 2);
  auto first = receiveMessages(consumer, 2);
  REQUIRE(first.size() == 2);
  auto nackedAt = std::chrono::steady_clock::now();
  auto a = first[0].nackAsync(kDelay);
  auto b = first[1].nackAsync(kDelay);
  REQUIRE(a.get().ok());
  REQUIRE(b.get().ok());
  CHECK_THAT(outcome(first[0].nackAsync().get()), IsError(ErrorCode::kNotPending));
  auto again = receiveMessages(consumer, 2, 10s);
  REQUIRE(again.size() == 2);
  CHECK(std::chrono::steady_clock::now() - nackedAt >= kDelay);
  CHECK(again[0].deliveries() == 2);
  CHECK(describeGroup(broker.admin(), "tasks", "workers").nacked == 2);
}

TEST_CASE("a nacked message is redelivered no sooner than its delay", "[integration]") {
  constexpr auto kDelay = 300ms;
  Broker broker;
  createTopic(broker.admin(), "tasks");
  auto consumer = subscribe(broker.client(), "tasks", "workers");
  publishPayloads(broker.producer(), "tasks", 1);
  auto first = receiveMessages(consumer, 1);
  REQUIRE(first.size() == 1);

  auto nackedAt = std::chrono::steady_clock::now();
  auto nacked = first[0].nack(kDelay);
  INFO(outcome(nacked));
  REQUIRE(nacked.ok());
  auto again = consumer.receive(10s);
  auto elapsed = std::chrono::steady_clock::now() - nackedAt;
  INFO(outcome(again));
  INFO(
      "redelivered after " << std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count()
                           << " us");
  REQUIRE(again.ok());
  CHECK(elapsed >= kDelay);
  CHECK(again.value().offset() == 1);
  CHECK(again.value().deliveries() == 2);

  // Without a delay it comes back at once (well within the 10 s receive).
  REQUIRE(again.value().nack().ok());
  auto third = consumer.receive(10s);
  REQUIRE(third.ok());
  CHECK(third.value().deliveries() == 3);
  CHECK(third.value().ack().ok());
  CHECK(describeGroup(broker.admin(), "tasks", "workers").nacked == 2);
}

TEST_CASE("a message not acknowledged within the ack timeout is redelivered", "[integration]") {
  constexpr auto kAckTimeout = 300ms;
  Broker broker;
  createTopic(broker.admin(), "tasks");
  SubscribeOptions options;
  options.ackTimeout = kAckTimeout;
  auto consumer = subscribe(broker.client(), "tasks", "workers", options);
  auto publishedAt = std::chrono::steady_clock::now();
  publishPayloads(broker.producer(), "tasks", 1);

  auto first = consumer.receive(10s);
  REQUIRE(first.ok());
  CHECK(first.value().deliveries() == 1);
  auto second = consumer.receive(10s);
  auto elapsed = std::chrono::steady_clock::now() - publishedAt;
  INFO(outcome(second));
  INFO(
      "redelivered after " << std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count()
                           << " us");
  REQUIRE(second.ok());
  CHECK(elapsed >= kAckTimeout);
  CHECK(second.value().offset() == 1);
  CHECK(second.value().deliveries() == 2);

  // Acknowledged in time, it stays acknowledged.
  CHECK(second.value().ack().ok());
  checkNothingArrives(consumer, 3 * kAckTimeout);
  CHECK(describeGroup(broker.admin(), "tasks", "workers").pending == 0);
}

TEST_CASE("fetch returns exactly the messages asked for and the broker holds no others",
          "[integration]") {
  Broker broker;
  createTopic(broker.admin(), "tasks");
  publishPayloads(broker.producer(), "tasks", 10);
  SubscribeOptions options;
  options.prefetch = 0;
  auto consumer = subscribe(broker.client(), "tasks", "workers", options);

  auto four = consumer.fetch(4, 5s);
  INFO(outcome(four));
  REQUIRE(four.ok());
  REQUIRE(offsetsOf(four.value()) == offsetRange(1, 4));
  auto group = describeGroup(broker.admin(), "tasks", "workers");
  REQUIRE(group.consumers.size() == 1);
  CHECK(group.consumers[0].inFlight == 4);  // Exactly those four, nothing pushed ahead.
  ackAll(four.value());

  // More than there is: the rest once the timeout passes, and nothing extra later.
  auto start = std::chrono::steady_clock::now();
  auto rest = consumer.fetch(100, 300ms);
  REQUIRE(rest.ok());
  CHECK(std::chrono::steady_clock::now() - start >= 300ms);
  CHECK(offsetsOf(rest.value()) == offsetRange(5, 10));
  ackAll(rest.value());
  CHECK(describeGroup(broker.admin(), "tasks", "workers").pending == 0);

  // A waiting fetch answers as soon as it has what it asked for; receive() fetches one.
  auto waiting = std::async(std::launch::async, [&] { return consumer.fetch(2, 60s); });
  publishPayloads(broker.producer(), "tasks", 3);
  auto two = waiting.get();
  REQUIRE(two.ok());
  CHECK(offsetsOf(two.value()) == std::vector<uint64_t>{11, 12});
  auto one = consumer.receive(5s);
  REQUIRE(one.ok());
  CHECK(one.value().offset() == 13);
  CHECK(describeGroup(broker.admin(), "tasks", "workers").consumers[0].inFlight == 3);

  // Bad input: typed errors, nothing taken.
  CHECK_THAT(outcome(consumer.fetch(0, 1s)), IsError(ErrorCode::kInvalidArgument));
  CHECK_THAT(outcome(consumer.fetch(65537, 1s)), IsError(ErrorCode::kInvalidArgument));
  CHECK_THAT(outcome(consumer.fetch(1, 301s)), IsError(ErrorCode::kInvalidArgument));
  CHECK_THAT(outcome(consumer.fetch(65534, 0ms)), IsError(ErrorCode::kLimitExceeded));
  auto pushed = subscribe(broker.client(), "tasks", "audit");
  CHECK_THAT(outcome(pushed.fetch(1, 0ms)), IsError(ErrorCode::kInvalidArgument));
  CHECK(describeGroup(broker.admin(), "tasks", "workers").consumers[0].inFlight == 3);
}

TEST_CASE("inProgress keeps a message from redelivery past its ack timeout", "[integration]") {
  constexpr auto kAckTimeout = 300ms;
  Broker broker;
  createTopic(broker.admin(), "jobs");
  SubscribeOptions options;
  options.ackTimeout = kAckTimeout;
  auto worker = subscribe(broker.client(), "jobs", "workers", options);
  auto other = subscribe(broker.client(), "jobs", "workers", options);
  publishPayloads(broker.producer(), "jobs", 1);
  // One of the two holds it; renewing it for four ack timeouts keeps it from both.
  std::optional<Message> held;
  Consumer* holder = nullptr;
  Consumer* idle = nullptr;
  for (auto* c : {&worker, &other}) {
    auto got = c->receive(200ms);
    if (got.ok()) {
      held = std::move(got).value();
      holder = c;
    } else {
      idle = c;
    }
  }
  REQUIRE(held.has_value());
  REQUIRE(idle != nullptr);
  auto until = std::chrono::steady_clock::now() + 4 * kAckTimeout;
  while (std::chrono::steady_clock::now() < until) {
    REQUIRE(held->inProgress().ok());
    auto redelivered = idle->receive(kAckTimeout / 3);
    INFO(outcome(redelivered));
    REQUIRE_FALSE(redelivered.ok());
    CHECK_THAT(outcome(redelivered), IsError(ErrorCode::kTimeout));
  }
  CHECK(held->inProgressAsync(2s).get().ok());
  CHECK_THAT(outcome(held->inProgress(25h)), IsError(ErrorCode::kInvalidArgument));
  CHECK(held->ack().ok());
  CHECK_THAT(outcome(held->inProgress()), IsError(ErrorCode::kNotPending));
  checkNothingArrives(*holder, 2 * kAckTimeout);
  CHECK(describeGroup(broker.admin(), "jobs", "workers").redelivered == 0);
}

TEST_CASE("a delayed publish is acknowledged at once and delivered at its time, also after kill -9",
          "[integration]") {
  Broker broker;
  createTopic(broker.admin(), "reminders");
  OutgoingMessage later;
  later.payload = "after the restart";
  later.delay = 1500ms;
  OutgoingMessage soon;
  soon.payload = "soon";
  soon.deliverAtMs = nowMs() + 300;
  OutgoingMessage now;
  now.payload = "now";
  auto start = std::chrono::steady_clock::now();
  auto acks = broker.producer().publishBatch("reminders", {later, soon, now});
  INFO(outcome(acks));
  REQUIRE(acks.ok());
  CHECK(std::chrono::steady_clock::now() - start < 300ms);  // Not held until the time.

  {
    auto consumer = subscribe(broker.client(), "reminders", "app");
    auto first = consumer.receive(5s);
    REQUIRE(first.ok());
    CHECK(first.value().payload() == "now");
    CHECK(first.value().deliverAtMs() == 0);
    auto second = consumer.receive(5s);
    int64_t at = nowMs();
    REQUIRE(second.ok());
    CHECK(second.value().payload() == "soon");
    CHECK(second.value().deliverAtMs() == soon.deliverAtMs);
    CHECK(at >= soon.deliverAtMs);
    ackAll({first.value(), second.value()});
  }
  broker.restart(SIGKILL);
  auto consumer = subscribe(broker.client(), "reminders", "app");
  auto last = consumer.receive(10s);
  int64_t at = nowMs();
  INFO(outcome(last));
  REQUIRE(last.ok());
  CHECK(last.value().payload() == "after the restart");
  CHECK(last.value().deliveries() == 1);
  CHECK(at >= last.value().deliverAtMs());
  CHECK(last.value().deliverAtMs() >= last.value().timestampMs() + 1500);

  // Beyond the limit, or both forms at once: refused, nothing stored.
  OutgoingMessage tooLate;
  tooLate.delay = std::chrono::hours(24 * 31);
  CHECK_THAT(outcome(broker.producer().publish("reminders", tooLate)),
             IsError(ErrorCode::kInvalidArgument));
  OutgoingMessage both;
  both.delay = 1s;
  both.deliverAtMs = nowMs() + 1000;
  CHECK_THAT(outcome(broker.producer().publish("reminders", both)),
             IsError(ErrorCode::kInvalidArgument));
  CHECK(describeTopic(broker.admin(), "reminders").lastOffset == 3);
}

TEST_CASE(
    "a message past its time to live is never delivered, also after kill -9, and goes to the "
    "dead-letter topic with reason expired",
    "[integration]") {
  Broker broker;
  createTopic(broker.admin(), "quotes.dead");
  TopicSettings settings;
  settings.defaultTtl = 400ms;
  settings.deadLetterTopic = "quotes.dead";
  settings.deadLetterExpired = true;
  auto created = createTopic(broker.admin(), "quotes", settings);
  CHECK(created.settings.defaultTtl == 400ms);
  CHECK(created.settings.deadLetterExpired);
  // The group exists before the message expires: with no group at all, the retention sweep
  // drops an expired message at the front (nobody is there to dead-letter it), and whether it
  // ran before a group made after the restart would depend on timing.
  REQUIRE(broker.admin().createGroup("quotes", "app").ok());

  OutgoingMessage stale = textMessage("stale");  // The topic's 400 ms.
  OutgoingMessage lasting = textMessage("lasting");
  lasting.ttl = std::chrono::hours(1);
  auto acks = broker.producer().publishBatch("quotes", {stale, lasting});
  int64_t published = nowMs();
  INFO(outcome(acks));
  REQUIRE(acks.ok());
  auto peeked = peekAll(broker.admin(), "quotes");
  REQUIRE(peeked.size() == 2);
  CHECK(peeked[0].expiresAtMs() == peeked[0].timestampMs() + 400);
  CHECK(peeked[1].expiresAtMs() == peeked[1].timestampMs() + 3600 * 1000);
  // The condition is the time itself: the broker's timestamp is at most `published`.
  std::this_thread::sleep_until(
      std::chrono::system_clock::time_point(std::chrono::milliseconds(published + 400 + 1)));

  broker.restart(SIGKILL);
  auto consumer = subscribe(broker.client(), "quotes", "app");
  auto first = consumer.receive(5s);
  INFO(outcome(first));
  REQUIRE(first.ok());
  CHECK(first.value().payload() == "lasting");
  checkNothingArrives(consumer);
  ackAll({first.value()});

  auto audit = subscribe(broker.client(), "quotes.dead", "audit");
  auto dead = audit.receive(5s);
  INFO(outcome(dead));
  REQUIRE(dead.ok());
  CHECK(dead.value().payload() == "stale");
  CHECK(dead.value().headers().at("sluice-reason") == "expired");
  CHECK(dead.value().headers().at("sluice-origin-group") == "app");
  CHECK(dead.value().expiresAtMs() == 0);
  GroupInfo group = describeGroup(broker.admin(), "quotes", "app");
  CHECK(group.expired == 1);
  CHECK(group.deadLettered == 1);

  // A time to live of 0, or beyond 30 days: refused, nothing stored.
  OutgoingMessage zero = textMessage("x");
  zero.ttl = 0ms;
  CHECK_THAT(outcome(broker.producer().publish("quotes", zero)),
             IsError(ErrorCode::kInvalidArgument));
  OutgoingMessage tooLong = textMessage("x");
  tooLong.ttl = std::chrono::hours(24 * 31);
  CHECK_THAT(outcome(broker.producer().publish("quotes", tooLong)),
             IsError(ErrorCode::kInvalidArgument));
  CHECK(describeTopic(broker.admin(), "quotes").lastOffset == 2);
}

TEST_CASE(
    "a message past maxDeliveries moves to the dead-letter topic with headers naming its "
    "origin",
    "[integration]") {
  Broker broker;
  createTopic(broker.admin(), "jobs.dlq");
  TopicSettings settings;
  settings.maxDeliveries = 2;
  settings.deadLetterTopic = "jobs.dlq";
  auto created = createTopic(broker.admin(), "jobs", settings);
  CHECK(created.settings.maxDeliveries == 2);
  CHECK(created.settings.deadLetterTopic == "jobs.dlq");

  OutgoingMessage poison;
  poison.payload = "cannot be processed";
  poison.key = "k7";
  poison.headers = {{"origin-app", "shop"}};
  REQUIRE(broker.producer().publish("jobs", poison).ok());
  REQUIRE(broker.producer().publish("jobs", "fine").ok());

  auto consumer = subscribe(broker.client(), "jobs", "workers");
  for (uint32_t attempt = 1; attempt <= 2; ++attempt) {
    auto message = consumer.receive(10s);
    INFO("attempt " << attempt << ": " << outcome(message));
    REQUIRE(message.ok());
    if (message.value().offset() == 2) {  // The healthy message may come first.
      REQUIRE(message.value().ack().ok());
      message = consumer.receive(10s);
      REQUIRE(message.ok());
    }
    CHECK(message.value().offset() == 1);
    CHECK(message.value().deliveries() == attempt);
    REQUIRE(message.value().nack().ok());
  }

  std::vector<Message> dead;
  CHECK(eventually([&] {
    dead = peekAll(broker.admin(), "jobs.dlq");
    return !dead.empty();
  }));
  REQUIRE(dead.size() == 1);
  CHECK(dead[0].payload() == "cannot be processed");
  CHECK(dead[0].key() == std::optional<std::string>("k7"));
  const Headers& headers = dead[0].headers();
  auto header = [&](const std::string& name) {
    auto found = headers.find(name);
    return found == headers.end() ? std::string("<missing>") : found->second;
  };
  CHECK(header("origin-app") == "shop");
  CHECK(header("sluice-origin-topic") == "jobs");
  CHECK(header("sluice-origin-group") == "workers");
  CHECK(header("sluice-origin-offset") == "1");
  CHECK(header("sluice-deliveries") == "2");
  CHECK(header("sluice-reason") != "<missing>");
  CHECK_FALSE(header("sluice-reason").empty());

  // The group is done with it: no third delivery.
  checkNothingArrives(consumer, 500ms);
  auto group = describeGroup(broker.admin(), "jobs", "workers");
  CHECK(group.deadLettered == 1);
  CHECK(group.pending == 0);

  // Dead letters are consumed like any message.
  auto inspector = subscribe(broker.client(), "jobs.dlq", "inspect");
  auto inspected = receiveMessages(inspector, 1);
  REQUIRE(inspected.size() == 1);
  CHECK(inspected[0].headers().count("sluice-origin-topic") == 1);
}

TEST_CASE("groups start at the earliest or latest message or at an offset or a timestamp",
          "[integration]") {
  Broker broker;
  createTopic(broker.admin(), "ticks");
  publishPayloads(broker.producer(), "ticks", 3, "early");
  auto early = peekAll(broker.admin(), "ticks");
  REQUIRE(early.size() == 3);
  // Let the clock move on so that the later messages have strictly later timestamps.
  REQUIRE(eventually([&] { return nowMs() > early.back().timestampMs(); }));
  publishPayloads(broker.producer(), "ticks", 2, "late");
  auto all = peekAll(broker.admin(), "ticks");
  REQUIRE(all.size() == 5);
  REQUIRE(all[3].timestampMs() > all[2].timestampMs());

  SubscribeOptions options;
  SECTION("earliest") {
    options.start = StartPosition::earliest();
    auto consumer = subscribe(broker.client(), "ticks", "g", options);
    CHECK(offsetsOf(receiveMessages(consumer, 5)) == offsetRange(1, 5));
  }
  SECTION("an offset") {
    options.start = StartPosition::atOffset(3);
    auto consumer = subscribe(broker.client(), "ticks", "g", options);
    CHECK(offsetsOf(receiveMessages(consumer, 3)) == offsetRange(3, 5));
    checkNothingArrives(consumer, 100ms);
  }
  SECTION("a timestamp") {
    options.start = StartPosition::atTime(all[3].timestampMs());
    auto consumer = subscribe(broker.client(), "ticks", "g", options);
    CHECK(offsetsOf(receiveMessages(consumer, 2)) == offsetRange(4, 5));
    checkNothingArrives(consumer, 100ms);
  }
  SECTION("latest") {
    options.start = StartPosition::latest();
    auto consumer = subscribe(broker.client(), "ticks", "g", options);
    checkNothingArrives(consumer);
    publishPayloads(broker.producer(), "ticks", 1, "new");
    auto fresh = receiveMessages(consumer, 1);
    REQUIRE(fresh.size() == 1);
    CHECK(fresh[0].offset() == 6);
    CHECK(fresh[0].payload() == "new0");
  }
  SECTION("createGroup with an offset, then a subscribe whose start is ignored") {
    auto group = broker.admin().createGroup("ticks", "g", StartPosition::atOffset(4));
    INFO(outcome(group));
    REQUIRE(group.ok());
    CHECK(group.value().position == 4);
    options.start = StartPosition::earliest();  // The group exists: its position wins.
    auto consumer = subscribe(broker.client(), "ticks", "g", options);
    CHECK(offsetsOf(receiveMessages(consumer, 2)) == offsetRange(4, 5));
  }
}

TEST_CASE("async publishes with many in flight get dense increasing offsets per topic",
          "[integration]") {
  constexpr size_t kPerTopic = 2000;
  Broker broker;
  createTopic(broker.admin(), "left");
  createTopic(broker.admin(), "right");
  ProducerOptions options;
  options.maxBatchMessages = 50;
  options.maxInFlightBatches = 8;
  Producer producer = broker.client().producer(options);

  std::vector<std::future<Result<PublishAck>>> left, right;
  for (size_t i = 0; i < kPerTopic; ++i) {
    OutgoingMessage message;
    message.payload = "l" + std::to_string(i);
    left.push_back(producer.publishAsync("left", message));
    message.payload = "r" + std::to_string(i);
    right.push_back(producer.publishAsync("right", message));
  }
  REQUIRE(producer.flush().ok());

  auto offsets = [](std::vector<std::future<Result<PublishAck>>>& futures) {
    std::vector<uint64_t> out;
    for (auto& future : futures) {
      REQUIRE(future.wait_for(10s) == std::future_status::ready);
      auto ack = future.get();
      INFO(outcome(ack));
      REQUIRE(ack.ok());
      out.push_back(ack.value().offset);
    }
    return out;
  };
  CHECK(offsets(left) == offsetRange(1, kPerTopic));
  CHECK(offsets(right) == offsetRange(1, kPerTopic));

  auto stored = peekAll(broker.admin(), "left");
  REQUIRE(stored.size() == kPerTopic);
  for (size_t i = 0; i < kPerTopic; i += 199) {
    CHECK(stored[i].payload() == "l" + std::to_string(i));
  }
}

}  // namespace
}  // namespace sluice::test
