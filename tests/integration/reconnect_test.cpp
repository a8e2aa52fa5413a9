// A client given several brokers (a cluster's list) makes its connection again by itself when
// it is lost; a client of one broker does not. Two standalone brokers stand in for a cluster's
// members here, so which one answers is plain to see; tests/cluster has the real failovers.

#include <signal.h>

#include <chrono>
#include <future>
#include <string>

#include "integration/broker_fixture.h"

namespace sluice::test {
namespace {

std::string addressOf(Broker& broker) {
  return "127.0.0.1:" + std::to_string(broker.process().rpcPort());
}

TEST_CASE("a client of a broker list reconnects to the next broker by itself",
          "[integration][client]") {
  Broker first, second;
  auto client = Client::connect(addressOf(first) + "," + addressOf(second));
  REQUIRE(client.ok());
  Admin admin = client.value().admin();
  Producer producer = client.value().producer();
  createTopic(admin, "before");
  CHECK(first.admin().describeTopic("before").ok());

  first.process().kill(SIGKILL);
  // A call made while the loss is noticed may fail (kDisconnected: it was in flight); later
  // calls go to the second broker through the same Client, Admin and Producer.
  REQUIRE(eventually([&] { return admin.createTopic("after").ok(); }));
  CHECK(client.value().connected());
  CHECK(second.admin().describeTopic("after").ok());
  auto ack = producer.publish("after", "one");
  REQUIRE(ack.ok());
  CHECK(ack.value().offset == 1);
  CHECK(describeTopic(second.admin(), "after").messages == 1);
}

TEST_CASE("a consumer of a broker list goes on receiving after its broker goes",
          "[integration][client]") {
  Broker first, second;
  createTopic(first.admin(), "jobs");
  createTopic(second.admin(), "jobs");
  auto client = Client::connect(addressOf(first) + "," + addressOf(second));
  REQUIRE(client.ok());
  Consumer consumer = subscribe(client.value(), "jobs", "workers");
  REQUIRE(first.producer().publish("jobs", "one").ok());
  auto one = consumer.receive(10s);
  REQUIRE(one.ok());
  CHECK(one.value().payload() == "one");
  REQUIRE(one.value().ack().ok());

  first.process().kill(SIGKILL);
  // The client subscribes again on the second broker by itself (the group is made there with
  // the subscription's settings); the same Consumer receives what is published there.
  REQUIRE(eventually([&] {
    auto groups = second.admin().listGroups("jobs");
    return groups.ok() && groups.value().size() == 1 && groups.value()[0].consumers.size() == 1;
  }));
  REQUIRE(second.producer().publish("jobs", "two").ok());
  auto two = consumer.receive(10s);
  REQUIRE(two.ok());
  CHECK(two.value().payload() == "two");
  CHECK(two.value().ack().ok());
  consumer.close();
  REQUIRE(eventually([&] {
    auto group = second.admin().describeGroup("jobs", "workers");
    return group.ok() && group.value().consumers.empty();
  }));
}

TEST_CASE("a fetch waiting when its broker goes returns with nothing, and the next is served",
          "[integration][client]") {
  Broker first, second;
  createTopic(first.admin(), "jobs");
  createTopic(second.admin(), "jobs");
  auto client = Client::connect(addressOf(first) + "," + addressOf(second));
  REQUIRE(client.ok());
  SubscribeOptions options;
  options.prefetch = 0;  // A fetch consumer.
  auto subscribed = client.value().subscribe("jobs", "workers", options);
  REQUIRE(subscribed.ok());
  Consumer consumer = std::move(subscribed).value();
  // Waiting in the broker (nothing to fetch) when the broker dies.
  auto waiting = std::async(std::launch::async, [&] { return consumer.fetch(10, 30s); });
  REQUIRE(eventually([&] {
    auto group = first.admin().describeGroup("jobs", "workers");
    return group.ok() && group.value().consumers.size() == 1;
  }));
  first.process().kill(SIGKILL);
  // Not an error: the consumer is subscribed again on the second broker, and the fetch has
  // nothing (what the first broker had handed it would be delivered again).
  REQUIRE(waiting.wait_for(20s) == std::future_status::ready);
  auto lost = waiting.get();
  INFO((lost.ok() ? std::string("ok") : lost.error().message));
  REQUIRE(lost.ok());
  CHECK(lost.value().empty());
  REQUIRE(eventually([&] {
    auto group = second.admin().describeGroup("jobs", "workers");
    return group.ok() && group.value().consumers.size() == 1;
  }));
  REQUIRE(second.producer().publish("jobs", "two").ok());
  auto two = consumer.fetch(10, 10s);
  REQUIRE(two.ok());
  REQUIRE(two.value().size() == 1);
  CHECK(two.value()[0].payload() == "two");
  CHECK(two.value()[0].ack().ok());
  consumer.close();
}

TEST_CASE("a client gives up reconnecting after reconnectFor, and closes at once meanwhile",
          "[integration][client]") {
  Broker first, second;
  const std::string list = addressOf(first) + "," + addressOf(second);
  Options options;
  options.reconnectFor = std::chrono::milliseconds(500);
  auto brief = Client::connect(list, options);
  REQUIRE(brief.ok());
  createTopic(first.admin(), "jobs");
  createTopic(second.admin(), "jobs");  // It may subscribe there before the second dies too.
  Consumer kept = subscribe(brief.value(), "jobs", "workers");
  options.reconnectFor = std::chrono::hours(1);
  auto patient = Client::connect(list, options);
  REQUIRE(patient.ok());

  first.process().kill(SIGKILL);
  second.process().kill(SIGKILL);
  // Nobody accepts: past reconnectFor the connection ends and calls answer kDisconnected.
  REQUIRE(eventually([&] {
    auto stats = brief.value().admin().stats();
    return !stats.ok() && stats.error().code == ErrorCode::kDisconnected &&
           !brief.value().connected();
  }));
  // Its consumer, kept open while it tried, ends too.
  CHECK(kept.receive(5s).error().code == ErrorCode::kDisconnected);
  // Still trying (for an hour), the other closes when asked, well before its call timeout.
  CHECK_FALSE(patient.value().connected());
  auto started = std::chrono::steady_clock::now();
  patient.value().close();
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(10));
  CHECK(patient.value().admin().stats().error().code == ErrorCode::kDisconnected);
}

TEST_CASE("a client of one broker does not reconnect", "[integration][client]") {
  Broker only;
  auto client = Client::connect(addressOf(only));
  REQUIRE(client.ok());
  only.process().kill(SIGKILL);
  REQUIRE(eventually([&] { return !client.value().connected(); }));
  CHECK(client.value().admin().stats().error().code == ErrorCode::kDisconnected);
}

}  // namespace
}  // namespace sluice::test
