#include "store_fixture.h"

namespace sluice::store::test {

TEST_CASE("readMessages honours maxCount and maxBytes and stops at the topic's end", "[store]") {
  TestStore store;
  TopicRecord topic = store.create("a");
  store.create("b");
  store.append("a", messages(10, 100));
  store.append("b", messages(5, 100));  // keys right after topic a's
  ReadTxn read(store.env());

  CHECK(read.readMessages(topic.id, 1, 3, 1 << 20).size() == 3);
  CHECK(read.readMessages(topic.id, 1, 100, 250).size() == 2);
  CHECK(read.readMessages(topic.id, 1, 100, 200).size() == 2);
  // At least one message, even past maxBytes.
  CHECK(read.readMessages(topic.id, 1, 100, 50).size() == 1);
  CHECK(read.readMessages(topic.id, 1, 0, 1 << 20).empty());
  auto tail = read.readMessages(topic.id, 9, 100, 1 << 20);
  REQUIRE(tail.size() == 2);
  CHECK(tail[0].offset == 9);
  CHECK(tail[1].offset == 10);
  CHECK(read.readMessages(topic.id, 11, 100, 1 << 20).empty());
  CHECK(read.readMessage(topic.id, 10).has_value());
  CHECK_FALSE(read.readMessage(topic.id, 11).has_value());
}

TEST_CASE("offsetAtTime finds the first message at or after a time, across retention gaps",
          "[store]") {
  TestStore store;
  const int64_t t0 = TestStore::kStartMs;
  TopicRecord created = store.create("t");
  store.append("t", messages(3), t0);       // 1-3
  store.append("t", messages(2), t0 + 10);  // 4-5
  store.append("t", messages(1), t0 + 20);  // 6

  {
    TopicRecord topic = store.topic("t");
    ReadTxn read(store.env());
    CHECK(read.offsetAtTime(topic.id, topic.firstOffset, topic.nextOffset, 0) == 1);
    CHECK(read.offsetAtTime(topic.id, topic.firstOffset, topic.nextOffset, t0) == 1);
    CHECK(read.offsetAtTime(topic.id, topic.firstOffset, topic.nextOffset, t0 + 1) == 4);
    CHECK(read.offsetAtTime(topic.id, topic.firstOffset, topic.nextOffset, t0 + 10) == 4);
    CHECK(read.offsetAtTime(topic.id, topic.firstOffset, topic.nextOffset, t0 + 15) == 6);
    CHECK(read.offsetAtTime(topic.id, topic.firstOffset, topic.nextOffset, t0 + 20) == 6);
    CHECK(read.offsetAtTime(topic.id, topic.firstOffset, topic.nextOffset, t0 + 21) == 7);
    CHECK(read.timestampAtOrAfter(topic.id, 4) == t0 + 10);
    CHECK_FALSE(read.timestampAtOrAfter(topic.id, 7).has_value());
  }

  store.commitOk(batchOf({core::TrimOp{created.id, "t", 3}}));
  TopicRecord topic = store.topic("t");
  ReadTxn read(store.env());
  CHECK(read.offsetAtTime(topic.id, topic.firstOffset, topic.nextOffset, 0) == 3);
  CHECK(read.offsetAtTime(topic.id, topic.firstOffset, topic.nextOffset, t0 + 5) == 4);
  CHECK(read.timestampAtOrAfter(topic.id, 1) == t0);
}

}  // namespace sluice::store::test
