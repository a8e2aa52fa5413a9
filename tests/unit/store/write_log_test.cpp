// The write log: committed batches read back by sequence, bodies kept once, the window, and
// replay into another store giving the same databases.

#include "store/batch_codec.h"
#include "store/keys.h"
#include "store_fixture.h"

namespace sluice::store::test {
namespace {

using Catch::Matchers::Contains;

constexpr uint64_t kWindow = 16u << 20;

std::string shipped(const core::LoggedBatch& logged) {
  auto words = codec::encodeBatch(logged.seq, logged.batch, codec::BatchForm::kShipped);
  auto bytes = words.asBytes();
  return std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

std::vector<core::LoggedBatch> readAll(TestStore& store, uint64_t from = 1) {
  auto read = ReadTxn(store.env()).readLog(from, 1000);
  REQUIRE(read.status().toString() == "ok");
  return std::move(read).value();
}

// Drives a store through every kind of op, remembering each committed batch.
std::vector<core::LoggedBatch> drive(TestStore& store) {
  std::vector<core::LoggedBatch> committed;
  auto commit = [&](core::WriteBatch batch) {
    core::WriteBatch copy = batch;
    uint64_t seq = store.commitOk(std::move(batch));
    committed.push_back({seq, std::move(copy)});
  };
  const int64_t t0 = TestStore::kStartMs;
  commit(batchOf({core::CreateTopicOp{1, "orders", {}, t0}}));
  commit(batchOf({core::CreateTopicOp{2, "gone", {}, t0}}));
  commit(batchOf({store.appendOp("orders", {message("a", "id-a"), message("b")}, t0, t0 + 50)}));
  commit(batchOf({store.appendOp("gone", messages(3, 100))}));
  commit(batchOf({groupOp(1, "g", 3), pendingOp(1, "g", 1, 0), pendingOp(1, "g", 2, t0 + 10)}));
  commit(batchOf({store.appendOp("orders", messages(2, 2000), t0 + 5)}));
  commit(batchOf({core::RemovePendingOp{1, "g", 2}, groupOp(1, "g", 5)}));
  commit(batchOf({core::TrimOp{1, "orders", 2}}));  // offset 1's body leaves `messages`
  commit(batchOf({core::ExpireDedupOp{t0 + 50}}));
  commit(batchOf({core::DeleteTopicOp{2, "gone"}}));   // so do all of topic 2's
  commit(batchOf({core::PurgeTopicOp{1, "orders"}}));  // and the rest of topic 1's
  commit(batchOf({store.appendOp("orders", messages(1), t0 + 5)}));
  commit(batchOf({core::ClearPendingOp{1, "g"}, core::DeleteGroupOp{1, "g"}}));
  return committed;
}

TEST_CASE("without a window sequence numbers advance but nothing is kept", "[store][wlog]") {
  TestStore store;
  auto committed = drive(store);
  CHECK(ReadTxn(store.env()).lastSeq() == committed.back().seq);
  CHECK(store.entries(store.env().wlog) == 0);
  CHECK(store.entries(store.env().wlogSpill) == 0);
  auto read = ReadTxn(store.env()).readLog(1, 10);
  CHECK(read.status().code() == Code::kInvalidArgument);
  CHECK_THAT(read.status().message(), Contains("outside the write log window (kept: none"));
  CHECK(ReadTxn(store.env()).readLog(committed.back().seq + 1, 10).value().empty());
}

TEST_CASE("the log gives back every committed batch, bodies included after they were removed",
          "[store][wlog]") {
  TestStore store({64u << 20, 0, true, kWindow});
  auto committed = drive(store);
  REQUIRE(committed.size() == 13);
  store.reopen();  // The log is durable.
  auto logged = readAll(store);
  REQUIRE(logged.size() == committed.size());
  for (size_t i = 0; i < committed.size(); ++i) {
    INFO("batch " << committed[i].seq);
    CHECK(logged[i].seq == i + 1);
    CHECK(shipped(logged[i]) == shipped(committed[i]));
  }
  // Part of the log, from any sequence, in chunks.
  auto tail = ReadTxn(store.env()).readLog(11, 2);
  REQUIRE(tail.ok());
  REQUIRE(tail.value().size() == 2);
  CHECK(tail.value()[0].seq == 11);

  // Each payload is stored once: the log's append entries hold no bodies.
  std::string entry = store.getRaw(store.env().wlog, keys::logEntry(6));
  CHECK(entry.size() < 400);  // The append of 2 x 2000 bytes.
}

TEST_CASE("replaying the log into an empty store gives the same databases", "[store][wlog]") {
  TestStore source({64u << 20, 0, true, kWindow});
  drive(source);
  TestStore target;
  for (uint64_t from = 1;;) {
    auto chunk = ReadTxn(source.env()).readLog(from, 4);
    REQUIRE(chunk.ok());
    if (chunk.value().empty()) break;
    from = chunk.value().back().seq + 1;
    REQUIRE(target.writer().replay(std::move(chunk).value()).toString() == "ok");
  }
  CHECK(target.dump() == source.dump());
  CHECK(target.env().check().ok());
  CHECK(ReadTxn(target.env()).lastSeq() == ReadTxn(source.env()).lastSeq());

  SECTION("a batch out of sequence is refused and nothing of it applied") {
    std::string before = target.dump();
    core::LoggedBatch skipped{ReadTxn(target.env()).lastSeq() + 2,
                              batchOf({core::CreateTopicOp{9, "late", {}, 0}})};
    Status refused = target.writer().replay({skipped});
    CHECK(refused.code() == Code::kInvalidArgument);
    CHECK_THAT(refused.message(), Contains("does not follow the store's last batch"));
    CHECK(target.dump() == before);
  }
}

TEST_CASE("a corrupt log entry is reported, not returned", "[store][wlog]") {
  TestStore store({64u << 20, 0, true, kWindow});
  drive(store);
  store.putRaw(store.env().wlog, keys::logEntry(3), std::string("not a batch!", 12) + "....");
  auto read = ReadTxn(store.env()).readLog(1, 100);
  REQUIRE_FALSE(read.ok());
  CHECK(read.status().code() == Code::kInvalidArgument);
  CHECK_THAT(read.status().message(), Contains("write batch of 16 bytes rejected"));
  CHECK(ReadTxn(store.env()).readLog(4, 100).ok());
}

TEST_CASE("the log keeps to its window, dropping the oldest batches and their bodies",
          "[store][wlog]") {
  constexpr uint64_t kSmallWindow = 256u << 10;
  TestStore store({64u << 20, 0, true, kSmallWindow});
  TopicRecord t = store.create("t");
  for (int i = 0; i < 400; ++i) {
    store.append("t", messages(4, 1000));
    // Retention keeps the topic short, so most bodies live on only in the log's spill.
    TopicRecord now = store.topic("t");
    if (now.messages > 40) store.commitOk(batchOf({core::TrimOp{t.id, "t", now.nextOffset - 40}}));
  }
  uint64_t last = ReadTxn(store.env()).lastSeq();
  MDB_txn* txn = nullptr;
  REQUIRE(mdb_txn_begin(store.env().raw(), nullptr, MDB_RDONLY, &txn) == 0);
  uint64_t kept = 0;
  for (MDB_dbi dbi : {store.env().wlog, store.env().wlogSpill}) {
    MDB_stat st;
    REQUIRE(mdb_stat(txn, dbi, &st) == 0);
    kept += (st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages) * st.ms_psize;
  }
  mdb_txn_abort(txn);
  CHECK(kept <= kSmallWindow);
  CHECK(store.entries(store.env().wlog) < last);

  auto old = ReadTxn(store.env()).readLog(1, 10);
  CHECK(old.status().code() == Code::kInvalidArgument);
  CHECK_THAT(old.status().message(), Contains("outside the write log window"));
  uint64_t first = last - store.entries(store.env().wlog) + 1;
  auto kept_ = ReadTxn(store.env()).readLog(first, 1000);
  REQUIRE(kept_.status().toString() == "ok");
  CHECK(kept_.value().size() == last - first + 1);
  CHECK(store.env().check().ok());
}

TEST_CASE("with a maximum age the log drops entries committed that long ago, at each commit",
          "[store][wlog]") {
  int64_t now = TestStore::kStartMs;
  StoreConfig config;
  config.logWindowBytes = kWindow;
  config.logMaxAgeMs = 1000;
  config.clockMs = [&now] { return now; };
  TestStore store(config);
  TopicRecord t = store.create("t");  // seq 1, at kStartMs
  now += 600;
  store.append("t", messages(1));  // seq 2
  now += 600;
  store.append("t", messages(1));  // seq 3: seq 1 is 1,200 ms old, seq 2 600 ms
  auto kept = readAll(store, 2);
  REQUIRE(kept.size() == 2);
  CHECK(kept[0].seq == 2);
  CHECK(kept[0].loggedAtMs == TestStore::kStartMs + 600);
  CHECK(kept[1].loggedAtMs == TestStore::kStartMs + 1200);
  auto gone = ReadTxn(store.env()).readLog(1, 10);
  CHECK(gone.status().code() == Code::kInvalidArgument);
  CHECK_THAT(gone.status().message(), Contains("outside the write log window (kept: 2-3"));

  // Nothing is dropped between commits; the next one drops all that aged out, even when the
  // log is far below its size window.
  now += 5000;
  CHECK(store.entries(store.env().wlog) == 2);
  store.append("t", messages(1));  // seq 4
  CHECK(store.entries(store.env().wlog) == 1);
  CHECK(readAll(store, 4).size() == 1);
  CHECK(store.env().check().ok());
}

TEST_CASE("a replayed batch keeps the commit time of its source", "[store][wlog]") {
  StoreConfig config;
  config.logWindowBytes = kWindow;
  config.clockMs = [] { return TestStore::kStartMs - 86'400'000; };
  TestStore source(config);
  drive(source);
  TestStore target({64u << 20, 0, true, kWindow});
  REQUIRE(target.writer().replay(readAll(source)).toString() == "ok");
  auto replayed = readAll(target);
  REQUIRE(replayed.size() == readAll(source).size());
  for (const auto& logged : replayed)
    CHECK(logged.loggedAtMs == TestStore::kStartMs - 86'400'000);
}

}  // namespace
}  // namespace sluice::store::test
