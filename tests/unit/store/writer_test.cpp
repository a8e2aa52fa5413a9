#include <signal.h>
#include <sys/resource.h>

#include <kj/debug.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include "store_fixture.h"

namespace sluice::store::test {

using Catch::Matchers::Contains;

TEST_CASE("jobs queued while the writer is busy share one commit", "[store]") {
  TestStore store;
  store.create("t");
  WriterStats before = store.writer().stats();
  constexpr int kJobs = 50;
  std::vector<kj::Promise<Result<std::vector<PublishAckData>>>> pending;
  {
    Gate gate(store);
    for (int i = 0; i < kJobs; ++i) {
      pending.push_back(store.writer().submit<std::vector<PublishAckData>>(
          [](WriteTxn& txn) { return txn.append("t", {message("m")}); }));
    }
  }
  for (int i = 0; i < kJobs; ++i) {
    auto acks = pending[i].wait(store.ws());
    REQUIRE(acks.ok());
    CHECK(acks.value()[0].offset == Offset(i + 1));
  }
  WriterStats after = store.writer().stats();
  CHECK(after.jobs - before.jobs == kJobs + 1);
  CHECK(after.commits - before.commits == 2);  // the gate's commit, then all 50 together
  CHECK(after.lastBatchJobs == kJobs);
  CHECK(after.commits < after.jobs);
}

TEST_CASE("a failing job rolls back only its own writes", "[store]") {
  TestStore store;
  kj::Promise<Result<Done>> refused = nullptr, threw = nullptr, threwKj = nullptr;
  kj::Promise<Result<TopicRecord>> created = nullptr;
  {
    Gate gate(store);
    refused = store.writer().submit<Done>([](WriteTxn& txn) -> Result<Done> {
      if (!txn.createTopic("refused", {}).ok()) return Status(Code::kInvalidArgument, "setup");
      return Status(Code::kInvalidArgument, "changed my mind");
    });
    threw = store.writer().submit<Done>([](WriteTxn& txn) -> Result<Done> {
      if (!txn.createTopic("threw", {}).ok()) return Status(Code::kInvalidArgument, "setup");
      throw std::runtime_error("boom");
    });
    threwKj = store.writer().submit<Done>([](WriteTxn& txn) -> Result<Done> {
      if (!txn.createTopic("threw-kj", {}).ok()) return Status(Code::kInvalidArgument, "setup");
      KJ_FAIL_ASSERT("kj boom");
    });
    created = store.writer().submit<TopicRecord>(
        [](WriteTxn& txn) { return txn.createTopic("kept", {}); });
  }
  auto r1 = refused.wait(store.ws());
  CHECK(r1.status().code() == Code::kInvalidArgument);
  CHECK(r1.status().message() == "changed my mind");
  auto r2 = threw.wait(store.ws());
  CHECK(r2.status().code() == Code::kStorageFailed);
  CHECK_THAT(r2.status().message(), Contains("internal error: boom"));
  auto r3 = threwKj.wait(store.ws());
  CHECK(r3.status().code() == Code::kStorageFailed);
  CHECK_THAT(r3.status().message(), Contains("kj boom"));
  REQUIRE(created.wait(store.ws()).ok());
  CHECK(store.writer().stats().lastBatchJobs == 4);

  ReadTxn read(store.env());
  auto topics = read.topics();
  REQUIRE(topics.size() == 1);
  CHECK(topics[0].name == "kept");
  // A job's failure is not the writer's.
  CHECK_FALSE(store.writer().failure().has_value());
}

TEST_CASE("past the publish limit publishes fail with kStorageFull while purges and acks work",
          "[store]") {
  TestStore store(4u << 20);  // publish limit 3 MiB
  TopicRecord topic = store.create("t");
  REQUIRE(store
              .run<Done>([&](WriteTxn& txn) -> Result<Done> {
                txn.putGroup(GroupRecord{topic.id, "g", 1, 0, 0, 0});
                txn.putPending(PendingRecord{topic.id, "g", 1, 1, 0});
                return Done{};
              })
              .ok());
  Status full;
  for (int i = 0; i < 200 && full.ok(); ++i)
    full = store.publish("t", messages(10, 4000)).status();
  REQUIRE(full.code() == Code::kStorageFull);
  CHECK_THAT(full.message(), Contains("publish limit of 3145728 bytes"));
  CHECK(store.env().usedBytes() <= store.env().publishLimitBytes());

  kj::Promise<Result<std::vector<PublishAckData>>> publish = nullptr;
  kj::Promise<Result<bool>> ack = nullptr;
  kj::Promise<Result<uint64_t>> purge = nullptr;
  {
    Gate gate(store);
    publish = store.writer().submit<std::vector<PublishAckData>>(
        [](WriteTxn& txn) { return txn.append("t", messages(10, 4000)); });
    ack = store.writer().submit<bool>(
        [&](WriteTxn& txn) { return txn.deletePending(topic.id, "g", 1); });
    purge = store.writer().submit<uint64_t>([](WriteTxn& txn) { return txn.purgeTopic("t"); });
  }
  CHECK(publish.wait(store.ws()).status().code() == Code::kStorageFull);
  auto acked = ack.wait(store.ws());
  REQUIRE(acked.ok());
  CHECK(acked.value());
  REQUIRE(purge.wait(store.ws()).ok());
  CHECK(store.writer().stats().lastBatchJobs == 3);

  CHECK(store.publish("t", messages(10, 4000)).ok());
  CHECK_FALSE(store.writer().failure().has_value());
  CHECK(store.env().check().ok());
}

TEST_CASE("MDB_MAP_FULL fails only its job; the commit and a purge in it go through", "[store]") {
  TestStore store(4u << 20);
  store.create("t");
  store.publishOk("t", messages(100, 1000));
  kj::Promise<Result<Offset>> huge = nullptr;
  kj::Promise<Result<uint64_t>> purge = nullptr;
  {
    Gate gate(store);
    // appendInternal skips the publish limit, so this reaches LMDB and overflows the map.
    huge = store.writer().submit<Offset>(
        [](WriteTxn& txn) { return txn.appendInternal("t", message(std::string(6u << 20, 'x'))); });
    purge = store.writer().submit<uint64_t>([](WriteTxn& txn) { return txn.purgeTopic("t"); });
  }
  auto failed = huge.wait(store.ws());
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.status().code() == Code::kStorageFull);
  CHECK_THAT(failed.status().message(), Contains("LMDB map has no free pages"));
  auto purged = purge.wait(store.ws());
  REQUIRE(purged.ok());
  CHECK(purged.value() == 100);
  CHECK_FALSE(store.writer().failure().has_value());
  CHECK(store.topic("t").messages == 0);
  CHECK(store.env().check().ok());
}

TEST_CASE("a job that runs out of map space after others in its batch is retried alone",
          "[store]") {
  TestStore store(4u << 20);
  store.create("t");
  WriterStats before = store.writer().stats();
  kj::Promise<Result<std::vector<PublishAckData>>> first = nullptr, last = nullptr;
  kj::Promise<Result<Offset>> huge = nullptr;
  {
    Gate gate(store);
    first = store.writer().submit<std::vector<PublishAckData>>(
        [](WriteTxn& txn) { return txn.append("t", {message("a")}); });
    huge = store.writer().submit<Offset>(
        [](WriteTxn& txn) { return txn.appendInternal("t", message(std::string(6u << 20, 'x'))); });
    last = store.writer().submit<std::vector<PublishAckData>>(
        [](WriteTxn& txn) { return txn.append("t", {message("b")}); });
  }
  CHECK(first.wait(store.ws()).value()[0].offset == 1);
  CHECK(huge.wait(store.ws()).status().code() == Code::kStorageFull);
  CHECK(last.wait(store.ws()).value()[0].offset == 2);
  // The gate's commit; then `first`; then `huge` (failed again) with `last`.
  CHECK(store.writer().stats().commits - before.commits == 3);
  CHECK(store.env().check().ok());
}

TEST_CASE("a failed commit is sticky: its jobs and all later ones get kStorageFailed", "[store]") {
  TestStore store;
  store.create("t");
  // Inject a write error: a file size limit below what the next commit needs (EFBIG).
  std::string dataFile = store.options().dir + "/data.mdb";
  rlimit old{};
  REQUIRE(getrlimit(RLIMIT_FSIZE, &old) == 0);
  rlimit low = old;
  low.rlim_cur = std::filesystem::file_size(dataFile);
  auto previous = signal(SIGXFSZ, SIG_IGN);
  REQUIRE(setrlimit(RLIMIT_FSIZE, &low) == 0);
  auto failed = store.publish("t", messages(100, 1000));
  REQUIRE(setrlimit(RLIMIT_FSIZE, &old) == 0);
  signal(SIGXFSZ, previous);

  REQUIRE_FALSE(failed.ok());
  CHECK(failed.status().code() == Code::kStorageFailed);
  CHECK_THAT(failed.status().message(), Contains("commit failed"));
  REQUIRE(store.writer().failure().has_value());
  CHECK_THAT(*store.writer().failure(), Contains("commit failed"));

  std::atomic<bool> ran{false};
  auto later = store.run<Done>([&](WriteTxn&) -> Result<Done> {
    ran = true;
    return Done{};
  });
  CHECK(later.status().code() == Code::kStorageFailed);
  CHECK_FALSE(ran.load());
  // Nothing of the failed commit is visible.
  CHECK(store.topic("t").messages == 0);
}

TEST_CASE("stop commits what is queued; later submits get kShuttingDown", "[store]") {
  TestStore store;
  store.create("t");
  std::vector<kj::Promise<Result<std::vector<PublishAckData>>>> queued;
  {
    Gate gate(store);
    for (int i = 0; i < 5; ++i) {
      queued.push_back(store.writer().submit<std::vector<PublishAckData>>(
          [](WriteTxn& txn) { return txn.append("t", {message("m")}); }));
    }
  }
  store.writer().stop();
  for (auto& p : queued)
    CHECK(p.wait(store.ws()).ok());
  auto late = store.writer()
                  .submit<Done>([](WriteTxn&) -> Result<Done> { return Done{}; })
                  .wait(store.ws());
  CHECK(late.status().code() == Code::kShuttingDown);
  CHECK(store.topic("t").messages == 5);
}

TEST_CASE("submitDetached logs a failure with its description", "[store]") {
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(16);
  spdlog::drop("store");
  spdlog::register_logger(std::make_shared<spdlog::logger>("store", sink));
  {
    TestStore store;
    store.writer().submitDetached(
        [](WriteTxn& txn) { return txn.applyRetention("missing", 0).status(); }, "retention sweep");
    store.writer().submitDetached([](WriteTxn&) { return Status(); }, "quiet job");
    // Jobs finish in order, so once this one is answered the detached ones have been.
    REQUIRE(store.run<Done>([](WriteTxn&) -> Result<Done> { return Done{}; }).ok());
  }
  spdlog::drop("store");
  auto lines = sink->last_formatted();
  REQUIRE(lines.size() == 1);
  CHECK_THAT(lines[0], Contains("retention sweep failed"));
  CHECK_THAT(lines[0], Contains("no topic named \"missing\""));
}

}  // namespace sluice::store::test
