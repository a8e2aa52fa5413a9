// Storage exhaustion: a broker at its --max-storage limit refuses publishes with storageFull
// (promptly, without crashing), keeps serving consumers and acks, and publishes again as soon
// as acks, purges, deletes or retention make room, without a restart. And a real full
// filesystem (a small tmpfs, when the test runs as root).

#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "integration/broker_fixture.h"
#include "support/http_get.h"
#include "support/run_process.h"

namespace sluice::test {
namespace {

using Catch::Matchers::Contains;
using Clock = std::chrono::steady_clock;

constexpr size_t kPayloadBytes = 1024;
constexpr size_t kBatch = 100;
// A publish at the limit must be answered, not left hanging: far below the call timeout.
constexpr auto kPromptAnswer = std::chrono::seconds(5);

std::vector<OutgoingMessage> batchOf(size_t count, const std::string& tag, size_t first) {
  std::vector<OutgoingMessage> batch(count);
  for (size_t i = 0; i < count; ++i) {
    std::string head = tag + "-" + std::to_string(first + i) + ";";
    batch[i].payload = head + std::string(kPayloadBytes - head.size(), 'x');
  }
  return batch;
}

struct Fill {
  size_t acked = 0;      // Messages stored before the first refusal.
  Result<void> refusal;  // The first error (ok if the store never filled).
};

// Publishes batches of 1 KiB messages until the broker refuses one, then single messages until
// it refuses one of those too, so that not even one more 1 KiB message fits (unless `maxBytes`
// were sent first). Every call must be answered within kPromptAnswer.
Fill fillUntilRefused(Producer& producer, std::string_view topic, const std::string& tag,
                      size_t maxBytes = 64u << 20) {
  Fill fill;
  size_t batch = kBatch;
  while (fill.acked * kPayloadBytes < maxBytes) {
    auto started = Clock::now();
    auto acks = producer.publishBatch(topic, batchOf(batch, tag, fill.acked));
    auto took = Clock::now() - started;
    INFO("publishBatch after " << fill.acked << " messages: " << outcome(acks));
    REQUIRE(took < kPromptAnswer);
    if (!acks.ok()) {
      fill.refusal = acks.error();
      if (batch == 1 || acks.error().code != ErrorCode::kStorageFull) return fill;
      batch = 1;
      continue;
    }
    fill.acked += acks.value().size();
  }
  fill.refusal = Result<void>();
  return fill;
}

// Retries a small publish until it succeeds or `timeout` passes; returns the last outcome.
std::string publishEventually(Producer& producer, std::string_view topic,
                              std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  std::string last;
  eventually(
      [&] {
        auto ack = producer.publish(topic, std::string(kPayloadBytes, 'r'));
        last = outcome(ack);
        return ack.ok();
      },
      timeout);
  return last;
}

TEST_CASE("a full store answers storageFull at once and every caller gets an answer",
          "[integration][storage]") {
  Broker broker({"--max-storage", "16MiB"});
  createTopic(broker.admin(), "fill");
  Fill fill = fillUntilRefused(broker.producer(), "fill", "m");
  REQUIRE_FALSE(fill.refusal.ok());
  CHECK(fill.refusal.error().code == ErrorCode::kStorageFull);
  CHECK_THAT(fill.refusal.error().message, Contains("storage"));
  // About 15 MiB of 1 KiB messages (16 MiB less the reserve kept for acks and deletes).
  CHECK(fill.acked > 5000);

  // Many publishers at once, blocking and async: each one is answered storageFull, promptly.
  std::vector<std::future<std::string>> blocking;
  for (int i = 0; i < 4; ++i) {
    // Connected here: connect() asserts with Catch, which is not safe from other threads.
    blocking.push_back(std::async(std::launch::async, [i, client = broker.connect()]() mutable {
      auto acks =
          client.producer().publishBatch("fill", batchOf(kBatch, "t" + std::to_string(i), 0));
      return outcome(acks);
    }));
  }
  std::vector<std::future<Result<PublishAck>>> async;
  for (int i = 0; i < 2000; ++i) {
    OutgoingMessage message;
    message.payload = std::string(kPayloadBytes, 'a');
    async.push_back(broker.producer().publishAsync("fill", message));
  }
  for (auto& answer : blocking) {
    REQUIRE(answer.wait_for(kPromptAnswer) == std::future_status::ready);
    CHECK_THAT(answer.get(), IsError(ErrorCode::kStorageFull));
  }
  for (auto& answer : async) {
    REQUIRE(answer.wait_for(kPromptAnswer) == std::future_status::ready);
    CHECK_THAT(outcome(answer.get()), IsError(ErrorCode::kStorageFull));
  }

  // Nothing refused was stored; a full store is not a failed one.
  CHECK(describeTopic(broker.admin(), "fill").messages == fill.acked);
  CHECK(broker.process().running());
  auto health = httpGet(broker.process().adminPort(), "/healthz");
  CHECK(health.status == 200);
  auto stats = broker.admin().stats();
  REQUIRE(stats.ok());
  CHECK(stats.value().storageLimit == (16u << 20));

  // The full store survives a restart and passes the integrity check.
  broker.restart(SIGTERM);
  CHECK(describeTopic(broker.admin(), "fill").messages == fill.acked);
  CHECK_THAT(outcome(broker.producer().publish("fill", std::string(kPayloadBytes, 'b'))),
             IsError(ErrorCode::kStorageFull));
}

TEST_CASE("consumers drain a full store and acks on a work-queue topic make room for publishing",
          "[integration][storage]") {
  Broker broker({"--max-storage", "16MiB"});
  TopicSettings settings;
  settings.workQueue = true;
  createTopic(broker.admin(), "jobs", settings);
  REQUIRE(broker.admin().createGroup("jobs", "workers").ok());
  Fill fill = fillUntilRefused(broker.producer(), "jobs", "job");
  REQUIRE_FALSE(fill.refusal.ok());
  REQUIRE(fill.refusal.error().code == ErrorCode::kStorageFull);

  // Delivery and acks go on while publishers are refused.
  SubscribeOptions options;
  options.prefetch = 1000;
  auto consumer = subscribe(broker.client(), "jobs", "workers", options);
  size_t received = 0;
  while (received < fill.acked) {
    auto batch = receiveMessages(consumer, std::min<size_t>(1000, fill.acked - received));
    REQUIRE_FALSE(batch.empty());
    ackAll(batch);
    received += batch.size();
  }
  CHECK(received == fill.acked);
  auto group = describeGroup(broker.admin(), "jobs", "workers");
  CHECK(group.pending == 0);
  CHECK(group.lagMessages == 0);

  // Retention drops what every group acknowledged; publishing resumes without a restart.
  CHECK(publishEventually(broker.producer(), "jobs") == "ok");
  CHECK(eventually([&] { return describeTopic(broker.admin(), "jobs").messages <= 1; }));
  // And there is room for about as much again.
  Fill again = fillUntilRefused(broker.producer(), "jobs", "again");
  CHECK(again.acked > fill.acked / 2);
  CHECK_FALSE(again.refusal.ok());
}

TEST_CASE("purging or deleting a topic of a full store makes room at once",
          "[integration][storage]") {
  Broker broker({"--max-storage", "16MiB"});
  createTopic(broker.admin(), "big");
  createTopic(broker.admin(), "other");
  Fill fill = fillUntilRefused(broker.producer(), "big", "m");
  REQUIRE_FALSE(fill.refusal.ok());
  REQUIRE(fill.refusal.error().code == ErrorCode::kStorageFull);
  CHECK_THAT(outcome(broker.producer().publish("other", std::string(kPayloadBytes, 'o'))),
             IsError(ErrorCode::kStorageFull));

  SECTION("purge") {
    auto purged = broker.admin().purgeTopic("big");
    INFO(outcome(purged));
    REQUIRE(purged.ok());
    CHECK(purged.value() == fill.acked);
    CHECK(publishEventually(broker.producer(), "big", std::chrono::seconds(5)) == "ok");
  }
  SECTION("delete") {
    auto deleted = broker.admin().deleteTopic("big");
    INFO(outcome(deleted));
    REQUIRE(deleted.ok());
    CHECK(deleted.value() == fill.acked);
  }
  CHECK(publishEventually(broker.producer(), "other", std::chrono::seconds(5)) == "ok");
  Fill again = fillUntilRefused(broker.producer(), "other", "again");
  CHECK(again.acked > fill.acked / 2);
}

TEST_CASE("age retention frees a full store and publishing resumes", "[integration][storage]") {
  Broker broker({"--max-storage", "16MiB"});
  TopicSettings settings;
  settings.maxAge = std::chrono::seconds(6);
  createTopic(broker.admin(), "events", settings);
  Fill fill = fillUntilRefused(broker.producer(), "events", "m");
  if (fill.refusal.ok()) {
    // Filling took longer than the max age on this machine: retention kept up on its own.
    WARN("the store never filled: retention dropped messages as fast as they came");
    return;
  }
  REQUIRE(fill.refusal.error().code == ErrorCode::kStorageFull);
  CHECK(publishEventually(broker.producer(), "events", std::chrono::seconds(30)) == "ok");
  CHECK(describeTopic(broker.admin(), "events").messages < fill.acked);
}

// A tmpfs mounted for one test, unmounted (lazily, so an open file cannot block it) at the end.
class TmpfsMount {
 public:
  explicit TmpfsMount(const std::string& options) {
    if (::geteuid() != 0) {
      skipReason_ = "mounting a tmpfs needs root (euid is " + std::to_string(::geteuid()) + ")";
      return;
    }
    if (::mount("tmpfs", dir_.path().c_str(), "tmpfs", 0, options.c_str()) != 0) {
      skipReason_ = std::string("mount -t tmpfs failed: ") + std::strerror(errno) +
                    " (no CAP_SYS_ADMIN in this container?)";
      return;
    }
    mounted_ = true;
  }
  ~TmpfsMount() {
    if (mounted_) ::umount2(dir_.path().c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& skipReason() const { return skipReason_; }
  const std::string& path() const { return dir_.path(); }

 private:
  TempDir dir_;
  bool mounted_ = false;
  std::string skipReason_;
};

TEST_CASE(
    "a real full filesystem fails writes cleanly without crash or corruption and 503 until restart",
    "[integration][storage]") {
  TmpfsMount fs("size=24m,mode=0755");
  if (!fs.mounted()) {
    WARN("skipped: " << fs.skipReason());
    return;
  }
  // Ballast that the test deletes later to free space, as an operator would.
  std::string ballast = fs.path() + "/ballast";
  {
    std::ofstream out(ballast, std::ios::binary);
    std::string chunk(1 << 20, 'b');
    for (int i = 0; i < 6; ++i)
      out << chunk;
  }
  std::string data = fs.path() + "/data";
  // The limit is larger than the filesystem: the disk fills before the limit is reached.
  std::vector<std::string> args = {"--max-storage", "64MiB"};
  auto broker = SluicedProcess::start(data, args);
  Client client = connectTo(*broker);
  createTopic(client.admin(), "fill");
  REQUIRE(client.admin().createGroup("fill", "g").ok());
  Producer producer = client.producer();
  Fill fill = fillUntilRefused(producer, "fill", "m");
  REQUIRE_FALSE(fill.refusal.ok());
  INFO("refusal: " << fill.refusal.error().toString());
  // A full disk is a failed commit (LMDB reports the short write as EIO; the broker adds how
  // much room the filesystem has left): the broker answers storageFailed and stays so (sticky)
  // until it is restarted, because it cannot know what else a failing disk lost. It does not
  // crash, and what it acknowledged before stays intact.
  CHECK(fill.refusal.error().code == ErrorCode::kStorageFailed);
  CHECK_THAT(fill.refusal.error().message, Contains("it is full"));
  CHECK(broker->running());
  CHECK_THAT(outcome(producer.publish("fill", "small")), IsError(ErrorCode::kStorageFailed));
  auto health = httpGet(broker->adminPort(), "/healthz");
  CHECK(health.status == 503);
  CHECK_THAT(health.body, Contains("it is full"));
  CHECK_THAT(broker->stderrText(), Contains("commit failed"));

  // Reads go on: every acknowledged message is there.
  CHECK(describeTopic(client.admin(), "fill").messages == fill.acked);
  auto first = client.admin().peek("fill", 1, 10);
  REQUIRE(first.ok());
  REQUIRE(first.value().size() == 10);
  CHECK(first.value()[0].payload().rfind("m-0;", 0) == 0);
  client.close();

  // SIGTERM exits non-zero (a commit failed), the store is intact.
  CHECK(broker->stop() == 1);
  broker.reset();
  auto check = runProcess({sluicedPath(), "--check", "--data", data});
  INFO(check.stdoutText << check.stderrText);
  CHECK(check.exitCode == 0);

  // With space freed, a restart recovers fully: everything acknowledged, and publishing works.
  std::filesystem::remove(ballast);
  broker = SluicedProcess::start(data, args);
  Client again = connectTo(*broker);
  CHECK(describeTopic(again.admin(), "fill").messages == fill.acked);
  auto stored = peekAll(again.admin(), "fill");
  REQUIRE(stored.size() == fill.acked);
  for (size_t i = 0; i < stored.size(); ++i) {
    INFO("offset " << stored[i].offset());
    REQUIRE(stored[i].offset() == i + 1);
    REQUIRE(stored[i].payload().rfind("m-" + std::to_string(i) + ";", 0) == 0);
  }
  auto ack = again.producer().publish("fill", "after the restart");
  INFO(outcome(ack));
  CHECK(ack.ok());
  CHECK(httpGet(broker->adminPort(), "/healthz").status == 200);
  again.close();
  CHECK(broker->stop() == 0);
}

}  // namespace
}  // namespace sluice::test
