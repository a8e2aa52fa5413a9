// What survives a restart of sluiced: a clean SIGTERM and a kill -9.

#include <signal.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <set>
#include <sstream>

#include "integration/broker_fixture.h"

namespace sluice::test {
namespace {

TEST_CASE("a restart after SIGTERM keeps messages group positions and pending messages",
          "[integration]") {
  Broker broker;
  createTopic(broker.admin(), "orders");
  auto publish = [&](int first, int last) {
    for (int i = first; i <= last; ++i) {
      OutgoingMessage message;
      message.payload = "p" + std::to_string(i);
      message.id = "id-" + std::to_string(i);
      auto ack = broker.producer().publish("orders", message);
      REQUIRE(ack.ok());
      REQUIRE(ack.value().offset == static_cast<uint64_t>(i));
    }
  };
  publish(1, 5);
  {
    auto consumer = subscribe(broker.client(), "orders", "shipping");
    auto received = receiveMessages(consumer, 5);
    REQUIRE(offsetsOf(received) == offsetRange(1, 5));
    ackAll({received[0], received[1], received[2]});  // 4 and 5 stay pending.
    consumer.close();
  }
  // With no consumer connected, 6..10 stay undelivered.
  REQUIRE(eventually([&] {
    auto group = broker.admin().describeGroup("orders", "shipping");
    return group.ok() && group.value().consumers.empty();
  }));
  publish(6, 10);
  auto before = describeGroup(broker.admin(), "orders", "shipping");
  CHECK(before.position == 6);
  CHECK(before.pending == 2);
  CHECK(before.ackFloor == 4);
  CHECK(before.lagMessages == 5);

  broker.restart(SIGTERM);

  auto topic = describeTopic(broker.admin(), "orders");
  CHECK(topic.messages == 10);
  CHECK(topic.firstOffset == 1);
  CHECK(topic.lastOffset == 10);
  auto stored = peekAll(broker.admin(), "orders");
  REQUIRE(stored.size() == 10);
  for (size_t i = 0; i < stored.size(); ++i) {
    CHECK(stored[i].offset() == i + 1);
    CHECK(stored[i].payload() == "p" + std::to_string(i + 1));
    CHECK(stored[i].id() == "id-" + std::to_string(i + 1));
  }
  auto group = describeGroup(broker.admin(), "orders", "shipping");
  CHECK(group.position == 6);
  CHECK(group.pending == 2);
  CHECK(group.ackFloor == 4);
  CHECK(group.lagMessages == 5);

  // Acknowledged messages stay acknowledged; pending ones come back as redeliveries.
  auto consumer = subscribe(broker.client(), "orders", "shipping");
  auto received = receiveMessages(consumer, 7);
  std::map<uint64_t, uint32_t> deliveries;
  for (const auto& message : received)
    deliveries[message.offset()] = message.deliveries();
  CHECK(received.size() == 7);
  CHECK(deliveries ==
        std::map<uint64_t, uint32_t>{{4, 2}, {5, 2}, {6, 1}, {7, 1}, {8, 1}, {9, 1}, {10, 1}});
  checkNothingArrives(consumer);

  // Offsets continue, and the dedup window survived too.
  OutgoingMessage repeat;
  repeat.payload = "p3 again";
  repeat.id = "id-3";
  auto duplicate = broker.producer().publish("orders", repeat);
  REQUIRE(duplicate.ok());
  CHECK(duplicate.value().duplicate);
  CHECK(duplicate.value().offset == 3);
  auto next = broker.producer().publish("orders", "p11");
  REQUIRE(next.ok());
  CHECK(next.value().offset == 11);
}

TEST_CASE("every publish acknowledged before kill -9 survives it", "[integration]") {
  constexpr size_t kMessages = 5000;
  Broker broker;
  createTopic(broker.admin(), "payments");

  std::mutex mu;
  std::map<uint64_t, std::string> acked;  // offset -> payload
  std::vector<std::string> errors;
  {
    Options clientOptions;
    clientOptions.callTimeout = 10s;
    Client client = broker.connect(clientOptions);
    ProducerOptions options;
    options.maxBatchMessages = 20;
    options.maxInFlightBatches = 4;
    Producer producer = client.producer(options);
    for (size_t i = 0; i < kMessages; ++i) {
      OutgoingMessage message;
      message.payload = "payment-" + std::to_string(i);
      producer.publishAsync(
          "payments", message,
          [&mu, &acked, &errors, payload = message.payload](Result<PublishAck> result) {
            std::lock_guard<std::mutex> lock(mu);
            if (result.ok()) {
              acked.emplace(result.value().offset, payload);
            } else {
              errors.push_back(result.error().toString());
            }
          });
    }
    // Kill while publishes are still in flight.
    REQUIRE(eventually([&] {
      std::lock_guard<std::mutex> lock(mu);
      return acked.size() >= 500;
    }));
    int status = broker.process().kill(SIGKILL);
    CHECK(WIFSIGNALED(status));
    // Every queued publish is answered: acknowledged before the kill, or failed.
    auto flushed = producer.flush();
    INFO(outcome(flushed));
    CHECK(eventually([&] {
      std::lock_guard<std::mutex> lock(mu);
      return acked.size() + errors.size() == kMessages;
    }));
  }

  broker.restart(SIGKILL);
  auto stored = peekAll(broker.admin(), "payments");
  std::map<uint64_t, std::string> found;
  for (const auto& message : stored)
    found.emplace(message.offset(), message.payload());

  std::lock_guard<std::mutex> lock(mu);
  INFO(acked.size() << " publishes acknowledged before the kill, " << stored.size()
                    << " messages stored after it");
  REQUIRE(acked.size() >= 500);
  size_t lost = 0;
  std::ostringstream firstLost;
  for (const auto& [offset, payload] : acked) {
    auto it = found.find(offset);
    if (it == found.end() || it->second != payload) {
      if (lost++ == 0) firstLost << "offset " << offset << " (" << payload << ")";
    }
  }
  INFO("first lost: " << firstLost.str());
  CHECK(lost == 0);
  // Offsets are dense from 1: nothing stored out of order.
  CHECK(stored.size() >= acked.size());
  for (size_t i = 0; i < stored.size(); ++i) {
    if (stored[i].offset() != i + 1) {
      FAIL_CHECK("offset " << stored[i].offset() << " at position " << i);
      break;
    }
  }
}

TEST_CASE("messages a group acknowledged before kill -9 are not redelivered after it",
          "[integration]") {
  Broker broker;
  createTopic(broker.admin(), "invoices");
  publishPayloads(broker.producer(), "invoices", 20);
  {
    auto consumer = subscribe(broker.client(), "invoices", "mailer");
    auto received = receiveMessages(consumer, 20);
    REQUIRE(received.size() == 20);
    // ack() returns once the acknowledgement is committed.
    ackAll(std::vector<Message>(received.begin(), received.begin() + 10));
    int status = broker.process().kill(SIGKILL);
    CHECK(WIFSIGNALED(status));
  }
  broker.restart(SIGKILL);

  auto consumer = subscribe(broker.client(), "invoices", "mailer");
  auto offsets = offsetsOf(receiveMessages(consumer, 10));
  std::sort(offsets.begin(), offsets.end());  // Redeliveries need not come in order.
  CHECK(offsets == offsetRange(11, 20));
  checkNothingArrives(consumer);
  auto group = describeGroup(broker.admin(), "invoices", "mailer");
  CHECK(group.ackFloor == 11);
}

}  // namespace
}  // namespace sluice::test
