// The writer thread: group commit, gap-free sequence numbers, sticky failure, stop.

#include <signal.h>
#include <sys/resource.h>

#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include "store_fixture.h"

namespace sluice::store::test {
namespace {

using Catch::Matchers::Contains;

TEST_CASE("batches queued while the writer is paused share one commit, numbered in order",
          "[store]") {
  TestStore store;
  store.create("t");
  WriterStats before = store.writer().stats();
  constexpr int kBatches = 50;
  std::vector<kj::Promise<Result<uint64_t>>> pending;
  store.writer().pause();
  TopicRecord t = store.topic("t");
  for (int i = 0; i < kBatches; ++i) {
    core::AppendOp op{t.id, "t", Offset(i + 1), {}};
    op.messages.push_back({TestStore::kStartMs, message("m" + std::to_string(i)), 0});
    pending.push_back(store.writer().commit(batchOf({op})));
  }
  store.writer().resume();
  for (int i = 0; i < kBatches; ++i) {
    auto seq = pending[i].wait(store.ws());
    REQUIRE(seq.ok());
    CHECK(seq.value() == before.lastSeq + 1 + i);
  }
  WriterStats after = store.writer().stats();
  CHECK(after.batches - before.batches == kBatches);
  CHECK(after.commits - before.commits == 1);
  CHECK(after.lastBatchJobs == kBatches);
  CHECK(after.lastSeq == before.lastSeq + kBatches);
  CHECK(store.topic("t").messages == kBatches);
}

TEST_CASE("sequence numbers are gap-free across reopens; an empty batch gets none", "[store]") {
  TestStore store;
  CHECK(store.commitOk(batchOf({core::CreateTopicOp{1, "a", {}, 0}})) == 1);
  CHECK(store.commitOk(core::WriteBatch{}) == 0);
  CHECK(store.commitOk(batchOf({core::CreateTopicOp{2, "b", {}, 0}})) == 2);
  store.reopen();
  CHECK(ReadTxn(store.env()).lastSeq() == 2);
  CHECK(ReadTxn(store.env()).load().lastSeq == 2);
  CHECK(store.commitOk(batchOf({core::CreateTopicOp{3, "c", {}, 0}})) == 3);
}

TEST_CASE("a batch that fails takes its commit with it: nothing of it is applied", "[store]") {
  TestStore store;
  TopicRecord t = store.create("t");
  std::string before = store.dump();
  store.writer().pause();
  auto first = store.writer().commit(batchOf({store.appendOp("t", messages(1))}));
  auto bad = store.writer().commit(batchOf({core::TrimOp{t.id, "t", 99}}));
  store.writer().resume();
  // The broker built `first` assuming the whole queue would commit; it cannot be kept alone.
  CHECK(first.wait(store.ws()).status().code() == Code::kStorageFailed);
  auto failed = bad.wait(store.ws());
  CHECK(failed.status().code() == Code::kStorageFailed);
  CHECK_THAT(failed.status().message(), Contains("ends before offset 99"));
  CHECK_THAT(failed.status().message(), Contains("refuses writes until restarted"));
  CHECK(store.dump() == before);
  CHECK(ReadTxn(store.env()).lastSeq() == 1);
  // After a restart the store takes writes again.
  store.reopen();
  CHECK(store.append("t", messages(1)) == 1);
  CHECK(ReadTxn(store.env()).lastSeq() == 2);
}

TEST_CASE("a batch that fills the map after others: they are applied again and commit alone",
          "[store]") {
  TestStore store({8u << 20, 0});
  TopicRecord t = store.create("t");
  WriterStats before = store.writer().stats();
  store.writer().pause();
  auto small = store.writer().commit(batchOf({store.appendOp("t", messages(10, 1000))}));
  core::AppendOp big{t.id, "t", 11, {}};
  for (MessageData& m : messages(90, 100000))
    big.messages.push_back({TestStore::kStartMs, std::move(m), 0});
  auto full = store.writer().commit(batchOf({std::move(big)}));
  store.writer().resume();
  auto committed = small.wait(store.ws());
  REQUIRE(committed.status().toString() == "ok");
  CHECK(committed.value() == before.lastSeq + 1);
  auto failed = full.wait(store.ws());
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.status().code() == Code::kStorageFailed);
  CHECK_THAT(failed.status().message(), Contains("the LMDB map has no free pages"));
  CHECK(store.writer().stats().commits - before.commits == 1);
  CHECK(store.topic("t").messages == 10);
  CHECK(ReadTxn(store.env()).lastSeq() == before.lastSeq + 1);
  CHECK(store.env().check().ok());
}

TEST_CASE("a failed commit is sticky: its batches and all later ones get kStorageFailed",
          "[store]") {
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
  auto failed = store.commit(batchOf({store.appendOp("t", messages(100, 1000))}));
  REQUIRE(setrlimit(RLIMIT_FSIZE, &old) == 0);
  signal(SIGXFSZ, previous);

  REQUIRE_FALSE(failed.ok());
  CHECK(failed.status().code() == Code::kStorageFailed);
  CHECK_THAT(failed.status().message(), Contains("commit failed"));
  REQUIRE(store.writer().failure().has_value());
  CHECK_THAT(*store.writer().failure(), Contains("commit failed"));

  auto later = store.commit(batchOf({core::CreateTopicOp{9, "later", {}, 0}}));
  CHECK(later.status().code() == Code::kStorageFailed);
  // Nothing of the failed commit is visible.
  CHECK(store.topic("t").messages == 0);
  CHECK_FALSE(ReadTxn(store.env()).topic("later").has_value());
  CHECK(ReadTxn(store.env()).lastSeq() == 1);
}

TEST_CASE("stop commits what is queued; later batches get kShuttingDown", "[store]") {
  TestStore store;
  TopicRecord t = store.create("t");
  std::vector<kj::Promise<Result<uint64_t>>> queued;
  store.writer().pause();
  for (int i = 0; i < 5; ++i) {
    core::AppendOp op{t.id, "t", Offset(i + 1), {}};
    op.messages.push_back({TestStore::kStartMs, message("m"), 0});
    queued.push_back(store.writer().commit(batchOf({op})));
  }
  store.writer().stop();
  for (auto& p : queued)
    CHECK(p.wait(store.ws()).ok());
  auto late = store.commit(batchOf({core::PurgeTopicOp{t.id, "t"}}));
  CHECK(late.status().code() == Code::kShuttingDown);
  CHECK(store.topic("t").messages == 5);
}

TEST_CASE("commitDetached logs a failure naming what it was", "[store]") {
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(16);
  spdlog::drop("store");
  spdlog::register_logger(std::make_shared<spdlog::logger>("store", sink));
  {
    TestStore store;
    store.writer().commitDetached(batchOf({core::TrimOp{5, "missing", 1}}), "retention sweep");
    // Batches finish in order, so once this one is answered the detached one has been.
    CHECK(store.commit(core::WriteBatch{}).status().code() == Code::kStorageFailed);
  }
  spdlog::drop("store");
  bool named = false;
  for (const auto& line : sink->last_formatted())
    named = named || line.find("retention sweep failed") != std::string::npos;
  CHECK(named);
}

}  // namespace
}  // namespace sluice::store::test
