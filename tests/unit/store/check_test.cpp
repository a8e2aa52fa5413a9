#include "store/keys.h"
#include "store_fixture.h"

namespace sluice::store::test {

using Catch::Matchers::Contains;

TEST_CASE("Env::check passes on a healthy store and reports injected violations", "[store]") {
  TestStore store;
  TopicRecord topic = store.create("orders");
  store.create("audit");
  store.append("orders", {message("a", "id-1"), message("b"), message("c")}, TestStore::kStartMs,
               TestStore::kStartMs + 1000);
  store.commitOk(batchOf({groupOp(topic.id, "g", 2), pendingOp(topic.id, "g", 1, 0),
                          pendingOp(topic.id, "g", 3, TestStore::kStartMs + 5)}));
  store.commitOk(batchOf({core::TrimOp{topic.id, "orders", 2}}));
  CHECK(store.env().check().toString() == "ok");
  Env& env = store.env();

  SECTION("a message past nextOffset") {
    std::string value;
    {
      MDB_txn* txn = nullptr;
      REQUIRE(mdb_txn_begin(env.raw(), nullptr, MDB_RDONLY, &txn) == 0);
      std::string key = keys::message(topic.id, 2);
      MDB_val k{key.size(), key.data()};
      MDB_val v;
      REQUIRE(mdb_get(txn, env.messages, &k, &v) == 0);
      value.assign(static_cast<const char*>(v.mv_data), v.mv_size);
      mdb_txn_abort(txn);
    }
    store.putRaw(env.messages, keys::message(topic.id, 99), value);
    Status status = env.check();
    CHECK(status.code() == Code::kStorageFailed);
    CHECK_THAT(status.message(), Contains("messages: "));
    CHECK_THAT(status.message(), Contains("topic=orders, offset=99"));
  }
  SECTION("a topic record that does not decode") {
    store.putRaw(env.topics, "orders", "garbage");
    Status status = env.check();
    CHECK_THAT(status.message(), Contains("topics: record does not decode"));
    CHECK_THAT(status.message(), Contains("topic=orders"));
  }
  SECTION("a pending entry of an unknown topic") {
    store.putRaw(env.pending, keys::pending(77, "g", 1), "");
    CHECK_THAT(env.check().message(), Contains("pending: entry of an unknown topic id"));
  }
  SECTION("a pending entry without its due entry") {
    std::string value = store.getRaw(env.pending, keys::pending(topic.id, "g", 3));
    store.putRaw(env.pending, keys::pending(topic.id, "g", 3), nullptr);
    store.putRaw(env.pending, keys::pending(topic.id, "g", 2), value);
    CHECK_THAT(env.check().message(), Contains("due"));
  }
  SECTION("a parked entry with a due entry") {
    store.commitOk(batchOf({pendingOp(topic.id, "g", 3, core::kParkedMs, 0)}));
    CHECK(env.check().ok());
    store.putRaw(env.due, keys::due(topic.id, "g", core::kParkedMs, 3),
                 store.getRaw(env.pending, keys::pending(topic.id, "g", 3)));
    CHECK_THAT(env.check().message(), Contains("a parked entry of group \"g\" has a due entry"));
  }
  SECTION("a held entry with a deadline") {
    std::string value = store.getRaw(env.pending, keys::pending(topic.id, "g", 3));
    store.putRaw(env.held, keys::pending(topic.id, "g", 3), value);
    CHECK_THAT(env.check().message(), Contains("held: held entry of group \"g\" has visibleAtMs"));
  }
  SECTION("a held entry that is also waiting") {
    std::string value = store.getRaw(env.pending, keys::pending(topic.id, "g", 3));
    store.commitOk(batchOf({pendingOp(topic.id, "g", 2, 0)}));
    store.putRaw(env.pending, keys::pending(topic.id, "g", 2), value);
    CHECK_THAT(env.check().message(), Contains("is also waiting"));
  }
  SECTION("a group whose pending count is wrong") {
    store.putRaw(env.due, keys::due(topic.id, "g", TestStore::kStartMs + 5, 3), nullptr);
    store.putRaw(env.pending, keys::pending(topic.id, "g", 3), nullptr);
    CHECK_THAT(env.check().message(), Contains("pending"));
  }
  SECTION("topic stats that do not match its messages") {
    // Drop one message behind the topic record's back.
    MDB_txn* txn = nullptr;
    REQUIRE(mdb_txn_begin(env.raw(), nullptr, 0, &txn) == 0);
    std::string key = keys::message(topic.id, 3);
    MDB_val k{key.size(), key.data()};
    REQUIRE(mdb_del(txn, env.messages, &k, nullptr) == 0);
    REQUIRE(mdb_txn_commit(txn) == 0);
    Status status = env.check();
    CHECK_THAT(status.message(), Contains("found 1 messages"));
    CHECK_THAT(status.message(), Contains("topic=orders"));
  }
}

}  // namespace sluice::store::test
