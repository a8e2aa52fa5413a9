#include "store_fixture.h"

namespace sluice::store::test {

TEST_CASE("append drops the oldest messages past maxMessages", "[store]") {
  TestStore store;
  TopicSettings settings;
  settings.maxMessages = 3;
  TopicRecord topic = store.create("t", settings);
  store.publishOk("t", messages(4));
  store.publishOk("t", messages(6));
  TopicRecord after = store.topic("t");
  CHECK(after.messages == 3);
  CHECK(after.firstOffset == 8);
  CHECK(after.nextOffset == 11);
  CHECK(after.bytes == 3 * 8);
  ReadTxn read(store.env());
  auto kept = read.readMessages(topic.id, 1, 100, 1 << 20);
  REQUIRE(kept.size() == 3);
  CHECK(kept[0].offset == 8);
  CHECK(store.env().check().ok());
}

TEST_CASE("append drops the oldest messages past maxBytes", "[store]") {
  TestStore store;
  TopicSettings settings;
  settings.maxBytes = 25;
  store.create("t", settings);
  store.publishOk("t", messages(5, 10));
  TopicRecord after = store.topic("t");
  CHECK(after.messages == 2);
  CHECK(after.bytes == 20);
  CHECK(after.firstOffset == 4);
  CHECK(store.env().check().ok());
}

TEST_CASE("applyRetention drops messages older than maxAgeMs", "[store]") {
  TestStore store;
  TopicSettings settings;
  settings.maxAgeMs = 100;
  TopicRecord topic = store.create("t", settings);
  store.publishOk("t", messages(2));  // at t0
  store.advance(50);
  store.publishOk("t", messages(1));  // at t0 + 50
  store.advance(60);                  // now t0 + 110: the first two are 110 ms old

  auto dropped = store.run<uint64_t>([](WriteTxn& txn) { return txn.applyRetention("t", 0); });
  REQUIRE(dropped.ok());
  CHECK(dropped.value() == 2);
  CHECK(store.topic("t").firstOffset == 3);

  store.advance(1000);
  dropped = store.run<uint64_t>([](WriteTxn& txn) { return txn.applyRetention("t", 0); });
  REQUIRE(dropped.ok());
  CHECK(dropped.value() == 1);
  TopicRecord after = store.topic("t");
  CHECK(after.messages == 0);
  CHECK(after.firstOffset == after.nextOffset);
  ReadTxn read(store.env());
  CHECK(read.readMessages(topic.id, 1, 10, 1 << 20).empty());
  CHECK(store.env().check().ok());
}

TEST_CASE("applyRetention drops below the work-queue floor with those pending entries", "[store]") {
  TestStore store;
  TopicSettings settings;
  settings.workQueue = true;
  TopicRecord topic = store.create("jobs", settings);
  store.publishOk("jobs", messages(5));
  REQUIRE(store
              .run<Done>([&](WriteTxn& txn) -> Result<Done> {
                for (const char* group : {"a", "b"}) {
                  txn.putGroup(GroupRecord{topic.id, group, 6, 0, 0, 0});
                  for (Offset o : {2, 3, 4})
                    txn.putPending(PendingRecord{topic.id, group, o, 1, 0});
                }
                return Done{};
              })
              .ok());

  auto dropped = store.run<uint64_t>([](WriteTxn& txn) { return txn.applyRetention("jobs", 4); });
  REQUIRE(dropped.ok());
  CHECK(dropped.value() == 3);
  TopicRecord after = store.topic("jobs");
  CHECK(after.firstOffset == 4);
  CHECK(after.messages == 2);

  ReadTxn read(store.env());
  Snapshot snap = read.snapshot();
  REQUIRE(snap.pending.size() == 2);
  for (const PendingRecord& p : snap.pending)
    CHECK(p.offset == 4);
  CHECK(store.env().check().ok());

  auto missing = store.run<uint64_t>([](WriteTxn& txn) { return txn.applyRetention("nope", 0); });
  CHECK(missing.status().code() == Code::kTopicNotFound);
}

TEST_CASE("a front drop across many pages leaves exactly the newest messages", "[store]") {
  TestStore store;
  TopicRecord topic = store.create("t");
  for (int i = 0; i < 10; ++i)
    store.publishOk("t", messages(500, 100));
  auto dropped = store.run<uint64_t>([](WriteTxn& txn) { return txn.applyRetention("t", 4990); });
  REQUIRE(dropped.ok());
  CHECK(dropped.value() == 4989);
  ReadTxn read(store.env());
  auto kept = read.readMessages(topic.id, 1, 100, 1 << 20);
  REQUIRE(kept.size() == 11);
  CHECK(kept.front().offset == 4990);
  CHECK(kept.back().offset == 5000);
  CHECK(store.env().check().ok());
}

}  // namespace sluice::store::test
