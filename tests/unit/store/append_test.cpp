#include "store_fixture.h"

namespace sluice::store::test {

using Catch::Matchers::Contains;

TEST_CASE("append assigns dense offsets from 1 that survive a reopen", "[store]") {
  TestStore store;
  TopicRecord topic = store.create("orders");
  MessageData full;
  full.key = std::string("k\0ey", 4);
  full.headers = {{"trace", "abc"}, {"empty", ""}};
  full.payload = std::string("pay\0load", 8);
  full.id = "id-1";
  CHECK(store.publishOk("orders", {full, message("two"), message("three")}) ==
        std::vector<Offset>{1, 2, 3});
  store.advance(5);
  CHECK(store.publishOk("orders", {message("four"), message("")}) == std::vector<Offset>{4, 5});

  store.reopen();
  TopicRecord after = store.topic("orders");
  CHECK(after.nextOffset == 6);
  CHECK(after.firstOffset == 1);
  CHECK(after.messages == 5);
  CHECK(after.bytes == full.accountedBytes() + 3 + 5 + 4 + 0);
  CHECK(after.lastTimestampMs == store.now());

  ReadTxn read(store.env());
  auto all = read.readMessages(topic.id, 1, 100, 1 << 20);
  REQUIRE(all.size() == 5);
  for (size_t i = 0; i < all.size(); ++i)
    CHECK(all[i].offset == i + 1);
  CHECK(all[0].data.key == full.key);
  CHECK(all[0].data.headers == full.headers);
  CHECK(all[0].data.payload == full.payload);
  CHECK(all[0].data.id == "id-1");
  CHECK(all[0].timestampMs == TestStore::kStartMs);
  CHECK_FALSE(all[1].data.key.has_value());
  CHECK(all[3].timestampMs == TestStore::kStartMs + 5);
  CHECK(all[4].data.payload.empty());
  CHECK(store.env().check().ok());
}

TEST_CASE("append to an unknown topic fails with kTopicNotFound naming it", "[store]") {
  TestStore store;
  auto acks = store.publish("nope", {message("x")});
  REQUIRE_FALSE(acks.ok());
  CHECK(acks.status().code() == Code::kTopicNotFound);
  CHECK(acks.status().message() == "no topic named \"nope\"");
}

TEST_CASE("timestamps never go backwards when the clock does", "[store]") {
  TestStore store;
  TopicRecord topic = store.create("t");
  store.publishOk("t", {message("a")});
  store.advance(-1000);
  store.publishOk("t", {message("b")});
  ReadTxn read(store.env());
  auto all = read.readMessages(topic.id, 1, 10, 1 << 20);
  REQUIRE(all.size() == 2);
  CHECK(all[1].timestampMs == all[0].timestampMs);
}

TEST_CASE("a message id seen within the dedup window returns the original offset", "[store]") {
  TestStore store;
  TopicSettings settings;
  settings.dedupWindowMs = 1000;
  store.create("t", settings);

  SECTION("in a later commit") {
    store.publishOk("t", {message("a", "id-1"), message("b")});
    store.advance(999);
    auto acks = store.publish("t", {message("a again", "id-1"), message("c", "id-2")});
    REQUIRE(acks.ok());
    CHECK(acks.value()[0].offset == 1);
    CHECK(acks.value()[0].duplicate);
    CHECK(acks.value()[1].offset == 3);
    CHECK_FALSE(acks.value()[1].duplicate);
    CHECK(store.topic("t").messages == 3);
  }
  SECTION("within the same batch") {
    auto acks = store.publish("t", {message("a", "id-1"), message("b", "id-1"), message("c")});
    REQUIRE(acks.ok());
    CHECK(acks.value()[1].offset == 1);
    CHECK(acks.value()[1].duplicate);
    CHECK(acks.value()[2].offset == 2);
    CHECK(store.topic("t").messages == 2);
  }
  SECTION("ids are per topic") {
    store.create("other", settings);
    store.publishOk("t", {message("a", "id-1")});
    auto acks = store.publish("other", {message("a", "id-1")});
    REQUIRE(acks.ok());
    CHECK_FALSE(acks.value()[0].duplicate);
  }
  CHECK(store.env().check().ok());
}

TEST_CASE("a message id is accepted again once its window has passed; expireDedup removes it",
          "[store]") {
  TestStore store;
  TopicSettings settings;
  settings.dedupWindowMs = 10;
  store.create("t", settings);
  store.publishOk("t", {message("a", "id-a"), message("b", "id-b")});
  store.advance(10);  // expiresMs = publish + 10 <= now: expired

  auto removed = store.run<uint64_t>([](WriteTxn& txn) { return txn.expireDedup(); });
  REQUIRE(removed.ok());
  CHECK(removed.value() == 2);
  CHECK(store.entries(store.env().dedup) == 0);
  CHECK(store.entries(store.env().dedupExpiry) == 0);

  auto acks = store.publish("t", {message("a again", "id-a")});
  REQUIRE(acks.ok());
  CHECK(acks.value()[0].offset == 3);
  CHECK_FALSE(acks.value()[0].duplicate);
}

TEST_CASE("an expired id republished before expireDedup keeps its new entry", "[store]") {
  TestStore store;
  TopicSettings settings;
  settings.dedupWindowMs = 10;
  store.create("t", settings);
  store.publishOk("t", {message("a", "id-a")});
  store.advance(10);
  CHECK(store.publishOk("t", {message("a", "id-a")}) == std::vector<Offset>{2});
  auto removed = store.run<uint64_t>([](WriteTxn& txn) { return txn.expireDedup(); });
  REQUIRE(removed.ok());
  CHECK(removed.value() == 0);  // only the stale index entry went
  CHECK(store.entries(store.env().dedupExpiry) == 1);
  auto acks = store.publish("t", {message("a", "id-a")});
  REQUIRE(acks.ok());
  CHECK(acks.value()[0].duplicate);
  CHECK(acks.value()[0].offset == 2);
}

TEST_CASE("appending to an older topic while a newer one has messages keeps both in order",
          "[store]") {
  // MDB_APPEND is only valid for the topic with the highest key range.
  TestStore store;
  TopicRecord older = store.create("older");
  TopicRecord newer = store.create("newer");
  store.publishOk("newer", messages(3));
  CHECK(store.publishOk("older", messages(2)) == std::vector<Offset>{1, 2});
  CHECK(store.publishOk("newer", messages(1)) == std::vector<Offset>{4});
  CHECK(store.publishOk("older", messages(1)) == std::vector<Offset>{3});
  ReadTxn read(store.env());
  CHECK(read.readMessages(older.id, 1, 100, 1 << 20).size() == 3);
  CHECK(read.readMessages(newer.id, 1, 100, 1 << 20).size() == 4);
  CHECK(store.env().check().ok());
}

TEST_CASE("appendInternal creates a missing topic and skips dedup", "[store]") {
  TestStore store;
  MessageData dead = message("body", "id-1");
  dead.headers = {{"x-dead-letter-reason", "max deliveries"}};
  auto first = store.run<Offset>([&](WriteTxn& txn) { return txn.appendInternal("dlq", dead); });
  auto second = store.run<Offset>([&](WriteTxn& txn) { return txn.appendInternal("dlq", dead); });
  REQUIRE(first.ok());
  REQUIRE(second.ok());
  CHECK(first.value() == 1);
  CHECK(second.value() == 2);
  TopicRecord dlq = store.topic("dlq");
  CHECK(dlq.settings.maxMessageSize == kDefaultMaxMessageSize);
  ReadTxn read(store.env());
  auto stored = read.readMessage(dlq.id, 1);
  REQUIRE(stored);
  CHECK(stored->data.headers == dead.headers);
  CHECK(store.env().check().ok());
}

TEST_CASE("large messages on overflow pages round-trip", "[store]") {
  TestStore store;
  TopicRecord topic = store.create("big");
  std::string payload(300'000, '\0');
  for (size_t i = 0; i < payload.size(); ++i)
    payload[i] = static_cast<char>(i * 7);
  store.publishOk("big", {message(payload), message("small"), message(payload)});
  ReadTxn read(store.env());
  auto all = read.readMessages(topic.id, 1, 10, 1 << 30);
  REQUIRE(all.size() == 3);
  CHECK(all[0].data.payload == payload);
  CHECK(all[2].data.payload == payload);
  CHECK(store.env().check().ok());
}

TEST_CASE("usedBytes grows with data and the publish limit keeps a reserve", "[store]") {
  SECTION("usedBytes") {
    TestStore store;
    uint64_t empty = store.env().usedBytes();
    CHECK(empty > 0);
    store.create("t");
    store.publishOk("t", messages(100, 1000));
    CHECK(store.env().usedBytes() > empty + 100'000);
    uint64_t full = store.env().usedBytes();
    store.reopen();
    CHECK(store.env().usedBytes() == full);
  }
  SECTION("publishLimitBytes") {
    TestStore store(4u << 20);
    CHECK(store.env().publishLimitBytes() == (3u << 20));  // reserve: at least 1 MiB
  }
  SECTION("explicit reserve") {
    TestStore store(4u << 20, 512u << 10);
    CHECK(store.env().publishLimitBytes() == (4u << 20) - (512u << 10));
  }
}

TEST_CASE("a store with a newer format version is refused with a message naming it", "[store]") {
  TestStore store;
  std::string two("\0\0\0\2", 4);
  store.putRaw(store.env().meta, "format_version", two);
  store.close();
  auto opened = Env::open(store.options());
  REQUIRE_FALSE(opened.ok());
  CHECK(opened.status().code() == Code::kStorageFailed);
  CHECK_THAT(opened.status().message(), Contains("format version 2"));
  CHECK_THAT(opened.status().message(), Contains("newer"));
}

TEST_CASE("opening a store in an unwritable place fails with kStorageFailed", "[store]") {
  EnvOptions options;
  options.dir = "/proc/sluice-cannot-exist/data";
  options.maxStorageBytes = 1u << 20;
  auto opened = Env::open(options);
  REQUIRE_FALSE(opened.ok());
  CHECK(opened.status().code() == Code::kStorageFailed);
  CHECK_THAT(opened.status().message(), Contains("/proc/sluice-cannot-exist/data"));
}

TEST_CASE("async durability commits and keeps data across a reopen", "[store]") {
  TestStore store(64u << 20, 0, /*syncCommits=*/false);
  store.create("t");
  store.publishOk("t", messages(10));
  store.reopen();
  CHECK(store.topic("t").messages == 10);
}

}  // namespace sluice::store::test
