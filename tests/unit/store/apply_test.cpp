// Applying write operations: what each op does to the databases, and that a batch which does
// not fit the store's state is refused without changing anything.

#include "store/codec.h"
#include "store/keys.h"
#include "store_fixture.h"

namespace sluice::store::test {
namespace {

using Catch::Matchers::Contains;

TEST_CASE("append stores messages at the batch's offsets and timestamps, across a reopen",
          "[store]") {
  TestStore store;
  TopicRecord created = store.create("orders");
  CHECK(created.id == 1);
  CHECK(created.nextOffset == 1);
  CHECK(created.createdMs == TestStore::kStartMs);
  CHECK(store.append("orders", messages(3, 10)) == 1);
  CHECK(store.append("orders", messages(2, 10), TestStore::kStartMs + 5) == 4);
  store.reopen();

  TopicRecord t = store.topic("orders");
  CHECK(t.nextOffset == 6);
  CHECK(t.firstOffset == 1);
  CHECK(t.messages == 5);
  CHECK(t.bytes == 50);
  CHECK(t.lastTimestampMs == TestStore::kStartMs + 5);
  ReadTxn read(store.env());
  auto all = read.readMessages(t.id, 1, 100, 1 << 20);
  REQUIRE(all.size() == 5);
  for (size_t i = 0; i < all.size(); ++i)
    CHECK(all[i].offset == i + 1);
  CHECK(all[2].timestampMs == TestStore::kStartMs);
  CHECK(all[3].timestampMs == TestStore::kStartMs + 5);
  auto meta = read.messageMeta(t.id, 4);
  REQUIRE(meta.has_value());
  CHECK(meta->accountedBytes == 10);
  CHECK(store.env().check().ok());
}

TEST_CASE("a time to live is stored with its message and read back as an expiry time", "[store]") {
  TestStore store;
  TopicRecord t = store.create("quotes");
  MessageData plain = message("plain");
  MessageData living = message("living");
  living.ttlMs = 100;
  MessageData delayed = message("delayed");
  delayed.ttlMs = 100;
  delayed.deliverAtMs = TestStore::kStartMs + 50;
  store.append("quotes", {living, delayed, plain});
  store.reopen();
  ReadTxn read(store.env());
  auto all = read.readMessages(t.id, 1, 10, 1 << 20);
  REQUIRE(all.size() == 3);
  CHECK(all[0].data.ttlMs == 100);
  CHECK(all[0].expiresAtMs() == TestStore::kStartMs + 100);
  CHECK(all[1].expiresAtMs() == TestStore::kStartMs + 150);  // From its delivery time.
  CHECK(all[2].expiresAtMs() == 0);
  CHECK(read.messageMeta(t.id, 2)->expiresAtMs == TestStore::kStartMs + 150);
  // The expired run from the front ends at the first message still living.
  CHECK(read.expiredUntil(t.id, 1, 4, TestStore::kStartMs + 99, 10) == 1);
  CHECK(read.expiredUntil(t.id, 1, 4, TestStore::kStartMs + 100, 10) == 2);
  CHECK(read.expiredUntil(t.id, 1, 4, TestStore::kStartMs + 150, 10) == 3);
  CHECK(read.expiredUntil(t.id, 1, 4, TestStore::kStartMs + 150, 1) == 2);   // At most 1 read.
  CHECK(read.expiredUntil(t.id, 1, 2, TestStore::kStartMs + 150, 10) == 2);  // Up to `end`.
}

TEST_CASE("keys, headers, ids and large payloads on overflow pages round-trip", "[store]") {
  TestStore store;
  TopicRecord t = store.create("big");
  std::string payload(300'000, '\0');
  for (size_t i = 0; i < payload.size(); ++i)
    payload[i] = static_cast<char>(i * 7);
  MessageData rich = message("small", "id-1");
  rich.key = std::string("k\0y", 3);
  rich.headers = {{"h1", "v1"}, {"h2", ""}};
  store.append("big", {message(payload), rich, message(payload)});
  ReadTxn read(store.env());
  auto all = read.readMessages(t.id, 1, 10, 1 << 30);
  REQUIRE(all.size() == 3);
  CHECK(all[0].data.payload == payload);
  CHECK(all[2].data.payload == payload);
  CHECK(all[1].data.key == rich.key);
  CHECK(all[1].data.headers == rich.headers);
  CHECK(all[1].data.id == "id-1");
  CHECK(store.env().check().ok());
}

TEST_CASE("appending to an older topic while a newer one has messages keeps both in order",
          "[store]") {
  TestStore store;
  TopicRecord a = store.create("a");
  TopicRecord b = store.create("b");
  store.append("b", messages(3));
  store.append("a", messages(2));
  store.append("b", messages(1));
  ReadTxn read(store.env());
  CHECK(read.readMessages(a.id, 1, 100, 1 << 20).size() == 2);
  CHECK(read.readMessages(b.id, 1, 100, 1 << 20).size() == 4);
  CHECK(store.env().check().ok());
}

TEST_CASE("dedup ids are stored with their window and expired by ExpireDedupOp", "[store]") {
  TestStore store;
  TopicRecord t = store.create("t");
  const int64_t until = TestStore::kStartMs + 1000;
  store.append("t", {message("a", "id-1"), message("b"), message("c", "id-2")}, TestStore::kStartMs,
               until);
  {
    ReadTxn read(store.env());
    auto entry = read.dedup(t.id, "id-2");
    REQUIRE(entry.has_value());
    CHECK(entry->offset == 3);
    CHECK(entry->expiresMs == until);
    CHECK_FALSE(read.dedup(t.id, "").has_value());
  }
  CHECK(store.entries(store.env().dedup) == 2);

  store.commitOk(batchOf({core::ExpireDedupOp{until - 1}}));
  CHECK(store.entries(store.env().dedup) == 2);

  SECTION("at the window's end both go") {
    store.commitOk(batchOf({core::ExpireDedupOp{until}}));
    CHECK(store.entries(store.env().dedup) == 0);
    CHECK(store.entries(store.env().dedupExpiry) == 0);
  }
  SECTION("an id published again after its window keeps its newer entry") {
    store.append("t", {message("again", "id-1")}, until + 1, until + 5000);
    store.commitOk(batchOf({core::ExpireDedupOp{until + 1}}));
    ReadTxn read(store.env());
    auto entry = read.dedup(t.id, "id-1");
    REQUIRE(entry.has_value());
    CHECK(entry->offset == 4);
    CHECK_FALSE(read.dedup(t.id, "id-2").has_value());
  }
  CHECK(store.env().check().ok());
}

TEST_CASE("transaction records are kept until their window ends, then expired with dedup ids",
          "[store]") {
  TestStore store;
  const int64_t until = TestStore::kStartMs + 1000;
  std::vector<std::vector<PublishAckData>> outputs{{{5, false}, {6, true}}, {}};
  store.commitOk(batchOf({core::PutTxnOp{"tx-a", "print-a", until, outputs},
                          core::PutTxnOp{"tx-b", "print-b", until + 10, {{{1, false}}}}}));
  {
    ReadTxn read(store.env());
    auto entry = read.txn("tx-a");
    REQUIRE(entry.has_value());
    CHECK(entry->fingerprint == "print-a");
    CHECK(entry->expiresMs == until);
    REQUIRE(entry->outputs.size() == 2);
    CHECK(entry->outputs[0][1].offset == 6);
    CHECK(entry->outputs[0][1].duplicate);
    CHECK(entry->outputs[1].empty());
    CHECK_FALSE(read.txn("tx-c").has_value());
  }
  CHECK(store.env().check().ok());
  store.commitOk(batchOf({core::ExpireDedupOp{until - 1}}));
  CHECK(store.entries(store.env().txns) == 2);
  store.commitOk(batchOf({core::ExpireDedupOp{until}}));
  CHECK(store.entries(store.env().txns) == 1);
  CHECK(store.entries(store.env().txnExpiry) == 1);

  SECTION("an id applied again after its window keeps only its newer record") {
    store.commitOk(batchOf({core::PutTxnOp{"tx-b", "print-b2", until + 5000, {}}}));
    CHECK(store.entries(store.env().txnExpiry) == 1);
    store.commitOk(batchOf({core::ExpireDedupOp{until + 10}}));
    ReadTxn read(store.env());
    auto entry = read.txn("tx-b");
    REQUIRE(entry.has_value());
    CHECK(entry->fingerprint == "print-b2");
  }
  SECTION("the last one goes at its window's end") {
    store.commitOk(batchOf({core::ExpireDedupOp{until + 10}}));
    CHECK(store.entries(store.env().txns) == 0);
    CHECK(store.entries(store.env().txnExpiry) == 0);
  }
  CHECK(store.env().check().ok());
}

TEST_CASE("trim drops messages and pending entries below an offset", "[store]") {
  TestStore store;
  TopicRecord t = store.create("jobs");
  store.append("jobs", messages(10, 10));
  std::vector<core::WriteOp> ops{groupOp(t.id, "g", 11)};
  for (Offset o : {2, 5, 8})
    ops.push_back(pendingOp(t.id, "g", o, TestStore::kStartMs + 100 * static_cast<int64_t>(o)));
  store.commitOk(batchOf(std::move(ops)));
  CHECK(store.group(t.id, "g")->pending == 3);

  store.commitOk(batchOf({core::TrimOp{t.id, "jobs", 6}}));
  TopicRecord after = store.topic("jobs");
  CHECK(after.firstOffset == 6);
  CHECK(after.messages == 5);
  CHECK(after.bytes == 50);
  CHECK(store.group(t.id, "g")->pending == 1);
  ReadTxn read(store.env());
  CHECK(read.firstPending(t.id, "g") == Offset{8});
  CHECK(read.readMessages(t.id, 1, 100, 1 << 20).front().offset == 6);
  CHECK(store.env().check().ok());
}

TEST_CASE("a trim across many pages leaves exactly the newest messages", "[store]") {
  TestStore store;
  TopicRecord t = store.create("t");
  for (int i = 0; i < 10; ++i)
    store.append("t", messages(500, 100));
  store.commitOk(batchOf({core::TrimOp{t.id, "t", 4990}}));
  ReadTxn read(store.env());
  auto kept = read.readMessages(t.id, 1, 100, 1 << 20);
  REQUIRE(kept.size() == 11);
  CHECK(kept.front().offset == 4990);
  CHECK(kept.back().offset == 5000);
  CHECK(store.env().check().ok());
}

TEST_CASE("purge removes messages, pending and dedup entries but keeps nextOffset and groups",
          "[store]") {
  TestStore store;
  TopicRecord t = store.create("t");
  store.append("t", {message("a", "id"), message("b")}, TestStore::kStartMs,
               TestStore::kStartMs + 1000);
  store.commitOk(batchOf({groupOp(t.id, "g", 3), pendingOp(t.id, "g", 1, 0)}));
  store.commitOk(batchOf({core::PurgeTopicOp{t.id, "t"}}));
  TopicRecord after = store.topic("t");
  CHECK(after.nextOffset == 3);
  CHECK(after.firstOffset == 3);
  CHECK(after.messages == 0);
  CHECK(after.bytes == 0);
  CHECK(store.group(t.id, "g").has_value());
  CHECK(store.group(t.id, "g")->pending == 0);
  CHECK(store.entries(store.env().held) == 0);
  CHECK(store.entries(store.env().pending) == 0);
  CHECK(store.entries(store.env().due) == 0);
  CHECK(store.entries(store.env().dedup) == 0);
  CHECK(store.append("t", messages(1)) == 3);
  CHECK(store.env().check().ok());
}

TEST_CASE("delete removes a topic with everything of it; its id is never used again", "[store]") {
  TestStore store;
  TopicRecord t = store.create("t");
  TopicRecord other = store.create("other");
  store.append("t", {message("a", "id")}, TestStore::kStartMs, TestStore::kStartMs + 1000);
  store.append("other", messages(1));
  store.commitOk(batchOf({groupOp(t.id, "g", 2), pendingOp(t.id, "g", 1, 0)}));
  store.commitOk(batchOf({core::DeleteTopicOp{t.id, "t"}}));
  CHECK_FALSE(ReadTxn(store.env()).topic("t").has_value());
  CHECK(store.entries(store.env().messages) == 1);
  CHECK(store.entries(store.env().groups) == 0);
  CHECK(store.entries(store.env().held) == 0);
  CHECK(store.entries(store.env().pending) == 0);
  CHECK(store.entries(store.env().due) == 0);
  CHECK(store.entries(store.env().dedup) == 0);
  store.reopen();
  CHECK(ReadTxn(store.env()).load().nextTopicId == other.id + 1);
  CHECK(store.create("t").id == other.id + 1);

  // The broker decides ids; reusing one is a batch that does not fit the store.
  auto reused = store.commit(batchOf({core::CreateTopicOp{t.id, "again", {}, 0}}));
  CHECK(reused.status().code() == Code::kStorageFailed);
  CHECK_THAT(reused.status().message(), Contains("was already used"));
}

TEST_CASE("pending entries keep the due index and the group's count in step", "[store]") {
  TestStore store;
  TopicRecord t = store.create("t");
  store.append("t", messages(6));
  const int64_t t0 = TestStore::kStartMs;
  store.commitOk(
      batchOf({groupOp(t.id, "g", 7), groupOp(t.id, "h", 7), pendingOp(t.id, "g", 1, t0 + 300),
               pendingOp(t.id, "g", 2, t0 + 100), pendingOp(t.id, "g", 3, 0),
               pendingOp(t.id, "g", 4, t0 + 200), pendingOp(t.id, "h", 5, t0 + 50)}));
  CHECK(store.group(t.id, "g")->pending == 4);
  CHECK(store.group(t.id, "h")->pending == 1);
  {
    ReadTxn read(store.env());
    auto due = read.due(t.id, "g", 1, t0 + 250, 10);
    REQUIRE(due.size() == 2);
    CHECK(due[0].offset == 2);
    CHECK(due[1].offset == 4);
    CHECK(due[0].cause == core::RedeliveryCause::kNack);
    CHECK(read.due(t.id, "g", 0, 0, 10).size() == 1);  // held when written
    CHECK(read.nextDueMs(t.id, "g", 1) == t0 + 100);
    CHECK(read.nextDueMs(t.id, "g", t0 + 101) == t0 + 200);
    CHECK(read.firstPending(t.id, "g") == Offset{1});
    auto state = read.load();
    REQUIRE(state.groups.size() == 2);
    CHECK(state.groups[0].heldAtStop == 1);
    CHECK(state.groups[0].nextDueMs == t0 + 100);
  }

  // Replacing an entry moves it in the due index; the count stays.
  store.commitOk(batchOf({pendingOp(t.id, "g", 2, t0 + 400, 2)}));
  CHECK(store.group(t.id, "g")->pending == 4);
  CHECK(ReadTxn(store.env()).nextDueMs(t.id, "g", 1) == t0 + 200);
  // Removing one that is gone (acked twice, trimmed) is a no-op.
  store.commitOk(
      batchOf({core::RemovePendingOp{t.id, "g", 4}, core::RemovePendingOp{t.id, "g", 4}}));
  CHECK(store.group(t.id, "g")->pending == 3);
  CHECK(store.entries(store.env().held) == 1);
  CHECK(store.entries(store.env().pending) == 3);
  CHECK(store.entries(store.env().due) == 3);

  // A group update keeps the count the store keeps.
  store.commitOk(batchOf({groupOp(t.id, "g", 7)}));
  CHECK(store.group(t.id, "g")->pending == 3);

  store.commitOk(batchOf({core::ClearPendingOp{t.id, "g"}}));
  CHECK(store.group(t.id, "g")->pending == 0);
  CHECK(store.group(t.id, "h")->pending == 1);
  store.commitOk(batchOf({core::DeleteGroupOp{t.id, "h"}}));
  CHECK_FALSE(store.group(t.id, "h").has_value());
  CHECK(store.entries(store.env().held) == 0);
  CHECK(store.entries(store.env().pending) == 0);
  CHECK(store.entries(store.env().due) == 0);
  CHECK(store.env().check().ok());
}

TEST_CASE("a held entry is one write to deliver and one to ack; nack and redelivery move it",
          "[store]") {
  TestStore store;
  TopicRecord t = store.create("t");
  store.append("t", messages(3));
  const int64_t t0 = TestStore::kStartMs;
  auto where = [&] {
    return std::to_string(store.entries(store.env().held)) + " held, " +
           std::to_string(store.entries(store.env().pending)) + " waiting, " +
           std::to_string(store.entries(store.env().due)) + " due, count " +
           std::to_string(store.group(t.id, "g")->pending);
  };
  store.commitOk(batchOf({groupOp(t.id, "g", 3), pendingOp(t.id, "g", 0, 0),
                          pendingOp(t.id, "g", 1, 0), pendingOp(t.id, "g", 2, 0)}));
  CHECK(where() == "3 held, 0 waiting, 0 due, count 3");
  CHECK(ReadTxn(store.env()).due(t.id, "g", 1, t0 + 1000, 10).empty());

  // Nack with a delay: held -> waiting, due at its time.
  store.commitOk(batchOf({pendingOp(t.id, "g", 1, t0 + 500, 1)}));
  CHECK(where() == "2 held, 1 waiting, 1 due, count 3");
  CHECK(ReadTxn(store.env()).nextDueMs(t.id, "g", 1) == t0 + 500);
  CHECK(store.env().check().ok());

  // Redelivered: waiting -> held.
  store.commitOk(batchOf({pendingOp(t.id, "g", 1, 0, 2)}));
  CHECK(where() == "3 held, 0 waiting, 0 due, count 3");
  CHECK_FALSE(ReadTxn(store.env()).nextDueMs(t.id, "g", 1).has_value());

  // Held entries are due at 0 after a restart, in offset order, before waiting ones.
  store.commitOk(batchOf({pendingOp(t.id, "g", 0, t0 + 10, 1)}));
  {
    ReadTxn read(store.env());
    auto due = read.due(t.id, "g", 0, t0 + 10, 10);
    REQUIRE(due.size() == 3);
    CHECK(due[0].offset == 1);
    CHECK(due[0].visibleAtMs == 0);
    CHECK(due[0].deliveries == 2);
    CHECK(due[1].offset == 2);
    CHECK(due[2].offset == 0);
    CHECK(due[2].visibleAtMs == t0 + 10);
    CHECK(read.nextDueMs(t.id, "g", 0) == 0);
    CHECK(read.firstPending(t.id, "g") == Offset{0});
    CHECK(read.load().groups[0].heldAtStop == 2);
  }

  // Acks: a held one and a waiting one.
  store.commitOk(
      batchOf({core::RemovePendingOp{t.id, "g", 1}, core::RemovePendingOp{t.id, "g", 0}}));
  CHECK(where() == "1 held, 0 waiting, 0 due, count 1");
  CHECK(ReadTxn(store.env()).firstPending(t.id, "g") == Offset{2});
  CHECK(store.env().check().ok());
}

TEST_CASE("a batch that does not fit the store changes nothing and stops writes", "[store]") {
  TestStore store;
  TopicRecord t = store.create("t");
  store.append("t", messages(2));
  std::string before = store.dump();

  core::AppendOp ok = store.appendOp("t", messages(1));
  core::AppendOp wrong = store.appendOp("t", messages(1));
  SECTION("an append at the wrong offset") {
    wrong.firstOffset = 7;
    auto failed = store.commit(batchOf({ok, wrong}));
    CHECK(failed.status().code() == Code::kStorageFailed);
    CHECK_THAT(failed.status().message(), Contains("is at offset 4, the batch appends at 7"));
  }
  SECTION("a topic id that does not match its name") {
    wrong.id = t.id + 1;
    auto failed = store.commit(batchOf({ok, wrong}));
    CHECK_THAT(failed.status().message(), Contains("the batch names id 2"));
  }
  SECTION("a timestamp before the topic's last") {
    wrong = store.appendOp("t", messages(1), TestStore::kStartMs - 1);
    auto failed = store.commit(batchOf({wrong}));
    CHECK_THAT(failed.status().message(), Contains("is before the last one"));
  }
  SECTION("a topic that does not exist") {
    auto failed = store.commit(batchOf({core::TrimOp{9, "nope", 1}}));
    CHECK_THAT(failed.status().message(), Contains("trim: no topic named nope"));
  }
  CHECK(store.dump() == before);
  REQUIRE(store.writer().failure().has_value());
  auto later = store.commit(batchOf({store.appendOp("t", messages(1))}));
  CHECK(later.status().code() == Code::kStorageFailed);
  CHECK(store.dump() == before);
  CHECK(store.env().check().ok());
}

TEST_CASE("usedBytes grows with data and the publish limit keeps a reserve", "[store]") {
  SECTION("usedBytes") {
    TestStore store;
    uint64_t empty = store.env().usedBytes();
    CHECK(empty > 0);
    store.create("t");
    store.append("t", messages(100, 1000));
    CHECK(store.env().usedBytes() > empty + 100'000);
    uint64_t full = store.env().usedBytes();
    store.reopen();
    CHECK(store.env().usedBytes() == full);
  }
  SECTION("publishLimitBytes") {
    TestStore store({4u << 20});
    CHECK(store.env().publishLimitBytes() == (3u << 20));  // reserve: at least 1 MiB
  }
  SECTION("explicit reserve") {
    TestStore store({4u << 20, 512u << 10});
    CHECK(store.env().publishLimitBytes() == (4u << 20) - (512u << 10));
  }
}

TEST_CASE("a store with a newer format version is refused with a message naming it", "[store]") {
  TestStore store;
  store.putRaw(store.env().meta, std::string(keys::kFormatVersion), std::string("\0\0\0\11", 4));
  store.close();
  auto opened = Env::open(store.options());
  REQUIRE_FALSE(opened.ok());
  CHECK(opened.status().code() == Code::kStorageFailed);
  CHECK_THAT(opened.status().message(), Contains("format version 9"));
  CHECK_THAT(opened.status().message(), Contains("newer"));
}

// Writes what the store of `store` looked like in format 2: held entries in `pending` with a
// due entry at 0.
void rewriteAsFormat2(TestStore& store, TopicId topic, const std::string& group, Offset held) {
  std::string key = keys::pending(topic, group, held);
  std::string value = store.getRaw(store.env().held, key);
  store.putRaw(store.env().held, key, nullptr);
  store.putRaw(store.env().pending, key, value);
  store.putRaw(store.env().due, keys::due(topic, group, 0, held), value);
  store.putRaw(store.env().meta, std::string(keys::kFormatVersion), std::string("\0\0\0\2", 4));
}

TEST_CASE("older stores are migrated at open to what this version writes", "[store]") {
  TestStore store;
  TopicRecord t = store.create("t");
  store.append("t", messages(4));
  store.commitOk(batchOf({groupOp(t.id, "g", 5), pendingOp(t.id, "g", 1, 0),
                          pendingOp(t.id, "g", 3, TestStore::kStartMs + 9),
                          pendingOp(t.id, "g", 2, TestStore::kStartMs + 5, /*deliveries=*/0),
                          pendingOp(t.id, "g", 4, core::kParkedMs, /*deliveries=*/0)}));
  std::string current = store.dump();
  CHECK(store.group(t.id, "g")->scheduled == 1);  // Offset 2: delayed, never delivered.
  GroupRecord counted = *store.group(t.id, "g");
  GroupRecord unscheduled = counted;
  unscheduled.scheduled = 0;
  store.putRaw(store.env().groups, keys::group(t.id, "g"),
               std::string(codec::bytesOf(codec::encodeGroup(unscheduled))));
  rewriteAsFormat2(store, t.id, "g", 1);

  SECTION("format 2: held entries move out of pending and the due index") {}
  SECTION("format 4: groups count their scheduled entries") {
    store.putRaw(store.env().held, keys::pending(t.id, "g", 1),
                 store.getRaw(store.env().pending, keys::pending(t.id, "g", 1)));
    store.putRaw(store.env().pending, keys::pending(t.id, "g", 1), nullptr);
    store.putRaw(store.env().due, keys::due(t.id, "g", 0, 1), nullptr);
    store.putRaw(store.env().meta, std::string(keys::kFormatVersion), std::string("\0\0\0\4", 4));
  }
  SECTION("format 5: parked entries leave the due index") {
    store.putRaw(store.env().held, keys::pending(t.id, "g", 1),
                 store.getRaw(store.env().pending, keys::pending(t.id, "g", 1)));
    store.putRaw(store.env().pending, keys::pending(t.id, "g", 1), nullptr);
    store.putRaw(store.env().due, keys::due(t.id, "g", 0, 1), nullptr);
    store.putRaw(store.env().groups, keys::group(t.id, "g"),
                 std::string(codec::bytesOf(codec::encodeGroup(counted))));
    store.putRaw(store.env().due, keys::due(t.id, "g", core::kParkedMs, 4),
                 store.getRaw(store.env().pending, keys::pending(t.id, "g", 4)));
    store.putRaw(store.env().meta, std::string(keys::kFormatVersion), std::string("\0\0\0\5", 4));
  }
  SECTION("format 6: only marked (subjects and filters read as none)") {
    store.putRaw(store.env().held, keys::pending(t.id, "g", 1),
                 store.getRaw(store.env().pending, keys::pending(t.id, "g", 1)));
    store.putRaw(store.env().pending, keys::pending(t.id, "g", 1), nullptr);
    store.putRaw(store.env().due, keys::due(t.id, "g", 0, 1), nullptr);
    store.putRaw(store.env().groups, keys::group(t.id, "g"),
                 std::string(codec::bytesOf(codec::encodeGroup(counted))));
    store.putRaw(store.env().meta, std::string(keys::kFormatVersion), std::string("\0\0\0\6", 4));
  }
  SECTION("format 1: the due index and the pending counts are built") {
    // What format 1 had: pending entries only, groups without counts.
    store.putRaw(store.env().due, keys::due(t.id, "g", 0, 1), nullptr);
    store.putRaw(store.env().due, keys::due(t.id, "g", TestStore::kStartMs + 9, 3), nullptr);
    store.putRaw(store.env().due, keys::due(t.id, "g", TestStore::kStartMs + 5, 2), nullptr);
    GroupRecord uncounted = *store.group(t.id, "g");
    uncounted.pending = 0;
    store.putRaw(store.env().groups, keys::group(t.id, "g"),
                 std::string(codec::bytesOf(codec::encodeGroup(uncounted))));
    store.putRaw(store.env().meta, std::string(keys::kFormatVersion), std::string("\0\0\0\1", 4));
  }
  CHECK_FALSE(store.env().check().ok());
  store.reopen();
  CHECK(store.dump() == current);
  CHECK(store.group(t.id, "g")->pending == 4);
  CHECK(store.group(t.id, "g")->scheduled == 1);
  CHECK(store.entries(store.env().held) == 1);
  CHECK(store.entries(store.env().due) == 2);  // Not the parked one.
  CHECK(store.entries(store.env().pending) == 3);
  CHECK(store.env().check().ok());
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

TEST_CASE("a second broker on the same store is refused while the first runs", "[store]") {
  TestStore store;
  auto second = Env::open(store.options());
  REQUIRE_FALSE(second.ok());
  CHECK_THAT(second.status().message(), Contains("in use by another process"));
}

TEST_CASE("subject patterns and message subjects are stored and survive a reopen", "[store]") {
  TestStore store;
  TopicConfig settings;
  settings.subjects = {"orders.>"};
  TopicRecord t = store.create("orders", settings);
  CHECK(store.topic("orders").settings.subjects == std::vector<std::string>{"orders.>"});
  MessageData routed = message("a");
  routed.subject = "orders.eu.created";
  store.append("orders", {routed, message("b")});
  store.commitOk(batchOf({core::SetSubjectsOp{t.id, "orders", {"orders.*", "audit"}}}));
  store.reopen();
  CHECK(store.topic("orders").settings.subjects == std::vector<std::string>{"orders.*", "audit"});
  ReadTxn read(store.env());
  auto all = read.readMessages(t.id, 1, 10, 1 << 20);
  REQUIRE(all.size() == 2);
  CHECK(all[0].data.subject == "orders.eu.created");
  CHECK(all[1].data.subject.empty());
  CHECK(store.env().check().ok());

  auto missing = store.commit(batchOf({core::SetSubjectsOp{99, "gone", {"x"}}}));
  CHECK(missing.status().code() == Code::kStorageFailed);
}

TEST_CASE("async durability commits and keeps data across a reopen", "[store]") {
  StoreConfig config;
  config.syncCommits = false;
  TestStore store(config);
  store.create("t");
  store.append("t", messages(10));
  store.reopen();
  CHECK(store.topic("t").messages == 10);
}

}  // namespace
}  // namespace sluice::store::test
