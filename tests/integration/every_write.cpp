#include "every_write.h"

namespace sluice::test {

void driveEveryKindOfWrite(Broker& broker) {
  Admin admin = broker.admin();
  Producer& producer = broker.producer();

  // Publishes with ids (and their repeats), keys and headers; dead-lettering.
  TopicSettings orders;
  orders.maxDeliveries = 2;
  orders.deadLetterTopic = "orders.dlq";
  createTopic(admin, "orders", orders);
  for (int i = 0; i < 12; ++i) {
    OutgoingMessage m;
    m.payload = "order-" + std::to_string(i);
    m.id = "id-" + std::to_string(i % 10);  // The last two repeat ids 0 and 1.
    if (i % 3 == 0) m.key = "customer-" + std::to_string(i);
    m.headers["n"] = std::to_string(i);
    auto ack = producer.publish("orders", std::move(m));
    REQUIRE(ack.ok());
    CHECK(ack.value().duplicate == (i >= 10));
  }
  // Delayed messages: one that a group passed (it waits in the group's due index), one not yet.
  createTopic(admin, "later");
  OutgoingMessage inAnHour;
  inAnHour.payload = "in an hour";
  inAnHour.delay = std::chrono::hours(1);
  REQUIRE(producer.publish("later", inAnHour).ok());
  {
    Client client = broker.connect();
    Consumer waiting = subscribe(client, "later", "app");
    checkNothingArrives(waiting);
  }
  REQUIRE(producer.publish("later", inAnHour).ok());
  {
    Client client = broker.connect();
    SubscribeOptions options;
    options.prefetch = 10;
    options.ackTimeout = std::chrono::milliseconds(300);
    Consumer billing = subscribe(client, "orders", "billing", options);
    auto first = receiveMessages(billing, 10);
    REQUIRE(first.size() == 10);
    for (int i = 0; i < 5; ++i)
      REQUIRE(first[i].ack().ok());
    REQUIRE(first[5].nack(std::chrono::milliseconds(100)).ok());
    REQUIRE(first[6].nack(std::chrono::milliseconds(100)).ok());
    // 7, 8 and 9 are left to their ack timeout. Everything not acked comes back once.
    auto again = receiveMessages(billing, 5, std::chrono::seconds(10));
    REQUIRE(again.size() == 5);
    for (const Message& m : again)
      CHECK(m.deliveries() == 2);
    // A second failure passes maxDeliveries: to the dead-letter topic.
    for (const Message& m : again)
      REQUIRE(m.nack().ok());
    REQUIRE(eventually([&] { return describeTopic(admin, "orders.dlq").messages == 5; }));
  }
  {
    // Left pending: one nacked for an hour, the rest released when their consumer goes (the
    // nack frees a slot, so a fourth may have been delivered meanwhile).
    Client client = broker.connect();
    SubscribeOptions options;
    options.prefetch = 3;
    Consumer slow = subscribe(client, "orders", "slow", options);
    auto held = receiveMessages(slow, 3);
    REQUIRE(held.size() == 3);
    REQUIRE(held[0].nack(std::chrono::hours(1)).ok());
  }
  REQUIRE(eventually([&] { return describeGroup(admin, "orders", "slow").pending >= 3; }));
  // A group created and deleted; another reset.
  REQUIRE(admin.createGroup("orders", "audit", StartPosition::earliest()).ok());
  REQUIRE(admin.deleteGroup("orders", "audit").ok());
  REQUIRE(admin.createGroup("orders", "replay", StartPosition::latest()).ok());
  REQUIRE(admin.resetGroup("orders", "replay", StartPosition::atOffset(3)).ok());

  // Every retention rule.
  TopicSettings ages;
  ages.maxAge = std::chrono::milliseconds(200);
  createTopic(admin, "ages", ages);
  publishPayloads(producer, "ages", 5);
  REQUIRE(eventually([&] { return describeTopic(admin, "ages").messages == 0; }));

  TopicSettings counts;
  counts.maxMessages = 3;
  createTopic(admin, "counts", counts);
  publishPayloads(producer, "counts", 10);
  CHECK(describeTopic(admin, "counts").messages == 3);

  TopicSettings sizes;
  sizes.maxMessageSize = 1024;
  sizes.maxBytes = 4096;
  createTopic(admin, "sizes", sizes);
  publishPayloads(producer, "sizes", 10, std::string(1000, 's'));
  CHECK(describeTopic(admin, "sizes").bytes <= 4096);
  CHECK(describeTopic(admin, "sizes").messages == 4);

  TopicSettings jobs;
  jobs.workQueue = true;
  createTopic(admin, "jobs", jobs);
  publishPayloads(producer, "jobs", 20);
  {
    Client client = broker.connect();
    Consumer workers = subscribe(client, "jobs", "workers");
    ackAll(receiveMessages(workers, 20));
  }
  REQUIRE(eventually([&] { return describeTopic(admin, "jobs").messages == 0; }));

  // An ack-and-publish transaction with an id (its record is durable state too).
  {
    Client client = broker.connect();
    Consumer worker = subscribe(client, "counts", "enrich");
    auto inputs = receiveMessages(worker, 2);
    REQUIRE(inputs.size() == 2);
    Transaction step;
    step.id = "enrich-1";
    OutgoingMessage enriched;
    enriched.payload = "enriched";
    enriched.id = "out-1";
    step.ack(inputs[0]).ack(inputs[1]).publish("jobs", enriched).publish("orders", enriched);
    REQUIRE(worker.transact(step).ok());
  }

  // Purge and delete.
  REQUIRE(admin.purgeTopic("counts").ok());
  REQUIRE(admin.deleteTopic("sizes").ok());
  publishPayloads(producer, "counts", 2, "after-purge");
}

}  // namespace sluice::test
