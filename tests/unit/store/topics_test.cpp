#include "store_fixture.h"

namespace sluice::store::test {

using Catch::Matchers::Contains;

TEST_CASE("topics are created with fresh ids, listed in name order and described", "[store]") {
  TestStore store;
  TopicSettings settings;
  settings.maxAgeMs = 1000;
  settings.maxBytes = 2000;
  settings.maxMessages = 30;
  settings.maxMessageSize = 4096;
  settings.workQueue = true;
  settings.maxDeliveries = 5;
  settings.deadLetterTopic = "orders.dead";
  settings.dedupWindowMs = 60'000;
  TopicRecord orders = store.create("orders", settings);
  TopicRecord audit = store.create("audit");
  CHECK(orders.id != audit.id);

  ReadTxn read(store.env());
  auto all = read.topics();
  REQUIRE(all.size() == 2);
  CHECK(all[0].name == "audit");
  CHECK(all[1].name == "orders");

  auto described = read.topic("orders");
  REQUIRE(described);
  CHECK(described->id == orders.id);
  CHECK(described->settings.maxAgeMs == 1000);
  CHECK(described->settings.maxBytes == 2000);
  CHECK(described->settings.maxMessages == 30);
  CHECK(described->settings.maxMessageSize == 4096);
  CHECK(described->settings.workQueue);
  CHECK(described->settings.maxDeliveries == 5);
  CHECK(described->settings.deadLetterTopic == "orders.dead");
  CHECK(described->settings.dedupWindowMs == 60'000);
  CHECK(described->nextOffset == 1);
  CHECK(described->firstOffset == 1);
  CHECK(described->messages == 0);
  CHECK(described->createdMs == store.now());
  CHECK_FALSE(read.topic("missing"));
}

TEST_CASE("creating a topic that exists fails with kTopicExists and changes nothing", "[store]") {
  TestStore store;
  TopicRecord first = store.create("orders");
  auto again = store.run<TopicRecord>([](WriteTxn& txn) {
    TopicSettings other;
    other.maxMessages = 1;
    return txn.createTopic("orders", other);
  });
  REQUIRE_FALSE(again.ok());
  CHECK(again.status().code() == Code::kTopicExists);
  CHECK_THAT(again.status().message(), Contains("\"orders\""));
  CHECK(store.topic("orders").settings.maxMessages == 0);
  CHECK(store.topic("orders").id == first.id);
}

TEST_CASE("topic ids are never reused, even after a delete and a reopen", "[store]") {
  TestStore store;
  TopicId a = store.create("a").id;
  REQUIRE(store.run<uint64_t>([](WriteTxn& txn) { return txn.deleteTopic("a"); }).ok());
  store.reopen();
  TopicId again = store.create("a").id;
  CHECK(again > a);
}

TEST_CASE("purge removes messages, pending and dedup entries but keeps nextOffset and groups",
          "[store]") {
  TestStore store;
  TopicRecord topic = store.create("orders");
  store.publishOk("orders",
                  {message("a", "id-1"), message("b"), message("c"), message("d"), message("e")});
  REQUIRE(store
              .run<Done>([&](WriteTxn& txn) -> Result<Done> {
                txn.putGroup(GroupRecord{topic.id, "billing", 3, store.now(), 0, 0});
                txn.putPending(PendingRecord{topic.id, "billing", 2, 1, 0});
                return Done{};
              })
              .ok());

  auto purged = store.run<uint64_t>([](WriteTxn& txn) { return txn.purgeTopic("orders"); });
  REQUIRE(purged.ok());
  CHECK(purged.value() == 5);
  TopicRecord after = store.topic("orders");
  CHECK(after.nextOffset == 6);
  CHECK(after.firstOffset == 6);
  CHECK(after.messages == 0);
  CHECK(after.bytes == 0);

  ReadTxn read(store.env());
  Snapshot snap = read.snapshot();
  CHECK(snap.groups.size() == 1);
  CHECK(snap.pending.empty());
  CHECK(read.readMessages(topic.id, 1, 100, 1 << 20).empty());
  CHECK(store.entries(store.env().dedup) == 0);
  CHECK(store.entries(store.env().dedupExpiry) == 0);

  // The id is forgotten with the message; the next offset continues.
  auto acks = store.publish("orders", {message("again", "id-1")});
  REQUIRE(acks.ok());
  CHECK(acks.value()[0].offset == 6);
  CHECK_FALSE(acks.value()[0].duplicate);
  CHECK(store.env().check().ok());

  auto missing = store.run<uint64_t>([](WriteTxn& txn) { return txn.purgeTopic("nope"); });
  CHECK(missing.status().code() == Code::kTopicNotFound);
}

TEST_CASE("delete removes the topic with its messages, groups, pending and dedup entries",
          "[store]") {
  TestStore store;
  TopicRecord doomed = store.create("doomed");
  TopicRecord kept = store.create("kept");
  store.publishOk("doomed", {message("a", "id-a"), message("b", "id-b"), message("c")});
  store.publishOk("kept", {message("k", "id-k")});
  REQUIRE(store
              .run<Done>([&](WriteTxn& txn) -> Result<Done> {
                for (TopicId id : {doomed.id, kept.id}) {
                  txn.putGroup(GroupRecord{id, "g", 1, 0, 0, 0});
                  txn.putPending(PendingRecord{id, "g", 1, 1, 0});
                }
                return Done{};
              })
              .ok());

  auto deleted = store.run<uint64_t>([](WriteTxn& txn) { return txn.deleteTopic("doomed"); });
  REQUIRE(deleted.ok());
  CHECK(deleted.value() == 3);

  ReadTxn read(store.env());
  Snapshot snap = read.snapshot();
  REQUIRE(snap.topics.size() == 1);
  CHECK(snap.topics[0].name == "kept");
  REQUIRE(snap.groups.size() == 1);
  CHECK(snap.groups[0].topicId == kept.id);
  REQUIRE(snap.pending.size() == 1);
  CHECK(snap.pending[0].topicId == kept.id);
  CHECK(read.readMessages(doomed.id, 1, 100, 1 << 20).empty());
  CHECK(store.entries(store.env().messages) == 1);
  CHECK(store.entries(store.env().dedup) == 1);
  CHECK(store.entries(store.env().dedupExpiry) == 1);
  CHECK(store.env().check().ok());

  auto missing = store.run<uint64_t>([](WriteTxn& txn) { return txn.deleteTopic("doomed"); });
  CHECK(missing.status().code() == Code::kTopicNotFound);
  CHECK_THAT(missing.status().message(), Contains("no topic named \"doomed\""));
}

TEST_CASE("groups and pending entries are stored, listed, deleted and cleared", "[store]") {
  TestStore store;
  TopicRecord topic = store.create("orders");
  store.publishOk("orders", messages(5));
  REQUIRE(store
              .run<Done>([&](WriteTxn& txn) -> Result<Done> {
                txn.putGroup(GroupRecord{topic.id, "a", 4, 7, 1, 2});
                txn.putGroup(GroupRecord{topic.id, "ab", 2, 7, 0, 0});
                for (Offset o : {1, 2, 3})
                  txn.putPending(PendingRecord{topic.id, "a", o, 2, 99});
                txn.putPending(PendingRecord{topic.id, "ab", 1, 1, 0});
                return Done{};
              })
              .ok());
  {
    ReadTxn read(store.env());
    Snapshot snap = read.snapshot();
    REQUIRE(snap.groups.size() == 2);
    CHECK(snap.groups[0].name == "a");
    CHECK(snap.groups[0].position == 4);
    CHECK(snap.groups[0].redelivered == 1);
    CHECK(snap.groups[0].deadLettered == 2);
    REQUIRE(snap.pending.size() == 4);
    CHECK(snap.pending[0].group == "a");
    CHECK(snap.pending[0].offset == 1);
    CHECK(snap.pending[0].deliveries == 2);
    CHECK(snap.pending[0].visibleAtMs == 99);
    CHECK(snap.pending[3].group == "ab");
  }
  auto changes = store.run<std::vector<uint64_t>>([&](WriteTxn& txn) {
    std::vector<uint64_t> out;
    out.push_back(txn.deletePending(topic.id, "a", 2) ? 1 : 0);
    out.push_back(txn.deletePending(topic.id, "a", 2) ? 1 : 0);
    out.push_back(txn.group(topic.id, "a").has_value() ? 1 : 0);
    out.push_back(txn.clearPending(topic.id, "a"));
    out.push_back(txn.deleteGroup(topic.id, "ab"));
    out.push_back(txn.group(topic.id, "ab").has_value() ? 1 : 0);
    return out;
  });
  REQUIRE(changes.ok());
  CHECK(changes.value() == std::vector<uint64_t>{1, 0, 1, 2, 1, 0});
  ReadTxn read(store.env());
  Snapshot snap = read.snapshot();
  CHECK(snap.groups.size() == 1);
  CHECK(snap.pending.empty());
}

}  // namespace sluice::store::test
