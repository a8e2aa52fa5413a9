// Replay equivalence: everything a broker commits is a write batch in its write log, and
// applying that log from sequence 1 to an empty store rebuilds the same store.

#include <signal.h>

#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "broker_fixture.h"
#include "every_write.h"
#include "support/run_process.h"

namespace sluice::test {
namespace {

const std::vector<std::string> kWithLog = {"--write-log-window", "1GiB"};

RunResult sluiced(std::vector<std::string> args) {
  args.insert(args.begin(), sluicedPath());
  return runProcess(std::move(args), "", {}, std::chrono::seconds(60));
}

}  // namespace

TEST_CASE("replaying a broker's write log onto an empty store rebuilds the same store",
          "[integration][replay]") {
  TempDir replayed;
  std::string source;
  {
    sluice::test::Broker broker(kWithLog);
    driveEveryKindOfWrite(broker);
    // Messages still held by a consumer when the broker stops.
    Client holder = broker.connect();
    Admin admin = broker.admin();
    REQUIRE(admin.createGroup("orders", "held", StartPosition::earliest()).ok());
    SubscribeOptions options;
    options.prefetch = 2;
    Consumer consumer = subscribe(holder, "orders", "held", options);
    REQUIRE(receiveMessages(consumer, 2).size() == 2);
    REQUIRE(eventually([&] { return describeGroup(admin, "orders", "held").pending == 2; }));
    source = broker.dataDir();
    REQUIRE(broker.process().stop() == 0);

    std::string target = replayed.path() + "/store";
    RunResult replay = sluiced({"--replay-log", source, "--data", target});
    INFO(replay.stderrText);
    REQUIRE(replay.exitCode == 0);
    CHECK_THAT(replay.stdoutText, Catch::Matchers::StartsWith("replayed "));

    for (const std::string& dir : {source, target}) {
      RunResult check = sluiced({"--check", "--data", dir});
      INFO(dir << ": " << check.stderrText);
      CHECK(check.exitCode == 0);
    }
    RunResult original = sluiced({"--dump", "--data", source});
    RunResult rebuilt = sluiced({"--dump", "--data", target});
    REQUIRE(original.exitCode == 0);
    REQUIRE(rebuilt.exitCode == 0);
    // Something of every state database is there to compare.
    for (const char* db : {"meta ", "topics ", "messages ", "groups ", "held ", "pending ", "due ",
                           "dedup ", "dedupExpiry "}) {
      CHECK_THAT(original.stdoutText, Catch::Matchers::Contains(std::string("\n") + db));
    }
    CHECK(original.stdoutText.size() > 1000);
    CHECK(rebuilt.stdoutText == original.stdoutText);
  }
}

TEST_CASE("a replay refuses a store that is not empty and a log it no longer holds",
          "[integration][replay]") {
  TempDir target;
  std::string withoutLog;
  {
    sluice::test::Broker broker;  // The default window keeps no log.
    createTopic(broker.admin(), "orders");
    publishPayloads(broker.producer(), "orders", 3);
    withoutLog = broker.dataDir();
    REQUIRE(broker.process().stop() == 0);

    RunResult gone = sluiced({"--replay-log", withoutLog, "--data", target.path() + "/a"});
    CHECK(gone.exitCode == 1);
    CHECK_THAT(gone.stderrText, Catch::Matchers::Contains("outside the write log window"));

    RunResult occupied = sluiced({"--replay-log", withoutLog, "--data", withoutLog});
    CHECK(occupied.exitCode == 2);
    CHECK_THAT(occupied.stderrText, Catch::Matchers::Contains("already holds a store"));
  }
}

}  // namespace sluice::test
