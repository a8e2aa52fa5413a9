// Replication of the write log: a leader (replication_listen) and followers (follow), real
// processes on loopback. An acknowledged write is on every in-sync follower; followers that
// die or lag leave the in-sync set; bad pulls are refused with a typed error.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>
#include <catch2/catch.hpp>

#include "broker_fixture.h"
#include "every_write.h"
#include "sluice/schemas/cluster.capnp.h"
#include "support/run_process.h"

namespace sluice::test {
namespace {

RunResult sluiced(std::vector<std::string> args) {
  args.insert(args.begin(), sluicedPath());
  return runProcess(std::move(args), "", {}, std::chrono::seconds(60));
}

std::vector<std::string> leaderArgs(int minInsync, const std::string& replicaTimeout = "5s") {
  return {"--replication-listen", "127.0.0.1:0",  "--min-insync", std::to_string(minInsync),
          "--replica-timeout",    replicaTimeout, "--log-level",  "info"};
}

std::unique_ptr<SluicedProcess> startFollower(const std::string& dir, const Broker& leader,
                                              const std::string& id,
                                              std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {
      "--follow",
      "127.0.0.1:" + std::to_string(const_cast<Broker&>(leader).process().replicationPort()),
      "--broker-id",
      id,
      "--log-level",
      "info"};
  args.insert(args.end(), extra.begin(), extra.end());
  return SluicedProcess::start(dir, args);
}

// Until the leader counts itself and two followers in sync.
void awaitAllInSync(Broker& leader) {
  REQUIRE(eventually([&] {
    return leader.process().stderrText().find("3 in-sync member(s)") != std::string::npos;
  }));
}

std::string dumpOf(const std::string& dir) {
  RunResult dump = sluiced({"--dump", "--data", dir});
  INFO(dump.stderrText);
  REQUIRE(dump.exitCode == 0);
  return dump.stdoutText;
}

void checkClean(const std::string& dir) {
  RunResult check = sluiced({"--check", "--data", dir});
  INFO(dir << ": " << check.stderrText);
  CHECK(check.exitCode == 0);
}

// Waits until no group of `topics` has a consumer, so that no release of held messages is still
// to be committed.
void awaitNoConsumers(Admin admin) {
  REQUIRE(eventually(
      [&] {
        auto topics = admin.listTopics();
        if (!topics.ok()) return false;
        for (const TopicInfo& topic : topics.value()) {
          auto groups = admin.listGroups(topic.name);
          if (!groups.ok()) return false;
          for (const GroupInfo& group : groups.value())
            if (!group.consumers.empty()) return false;
        }
        return true;
      },
      std::chrono::seconds(20)));
}

TEST_CASE("every acknowledged write is on every in-sync follower, and the stores end equal",
          "[integration][replication]") {
  Broker leader(leaderArgs(3));
  TempDir f1Dir, f2Dir;
  auto f1 = startFollower(f1Dir.path(), leader, "f1");
  auto f2 = startFollower(f2Dir.path(), leader, "f2");
  // Until both followers are in sync, min_insync 3 refuses writes.
  awaitAllInSync(leader);

  driveEveryKindOfWrite(leader);
  awaitNoConsumers(leader.admin());
  // With min_insync 3, this answer means both followers hold every batch up to it, and the
  // releases and retention commits before it.
  createTopic(leader.admin(), "barrier");
  publishPayloads(leader.producer(), "barrier", 1);
  // kill -9: nothing is flushed at exit, and nothing is committed after the barrier.
  leader.process().kill(SIGKILL);
  f1->kill(SIGKILL);
  f2->kill(SIGKILL);

  std::string leaderDump = dumpOf(leader.dataDir());
  CHECK(leaderDump.size() > 1000);
  CHECK(dumpOf(f1Dir.path()) == leaderDump);
  CHECK(dumpOf(f2Dir.path()) == leaderDump);
  for (const std::string& dir : {leader.dataDir(), f1Dir.path(), f2Dir.path()})
    checkClean(dir);
  CHECK_THAT(leader.process().stderrText(),
             Catch::Matchers::Contains("follower f1 joins the in-sync set"));
}

TEST_CASE("a dead follower leaves the in-sync set; below min_insync writes are refused",
          "[integration][replication]") {
  Broker leader(leaderArgs(2, "500ms"));
  // Alone, the leader is below min_insync 2: a write is refused and changes nothing.
  CHECK_THAT(outcome(leader.admin().createTopic("orders")), IsError(ErrorCode::kNotEnoughReplicas));
  TempDir f1Dir, f2Dir;
  auto f1 = startFollower(f1Dir.path(), leader, "f1");
  auto f2 = startFollower(f2Dir.path(), leader, "f2");
  awaitAllInSync(leader);
  createTopic(leader.admin(), "orders");
  publishPayloads(leader.producer(), "orders", 10);

  // One follower gone: acknowledgements wait for it only until the replica timeout.
  f1->kill(SIGKILL);
  publishPayloads(leader.producer(), "orders", 10);
  REQUIRE(eventually([&] {
    return leader.process().stderrText().find("follower f1 leaves the in-sync set") !=
           std::string::npos;
  }));

  // A publish made while f2 still counts as in sync is committed and waits for it; once f2
  // leaves the set, the leader alone is below min_insync 2, so it waits for a follower to return.
  f2->kill(SIGKILL);
  auto waiting = leader.producer().publishAsync("orders", textMessage("waits"));
  REQUIRE(eventually([&] {
    return leader.process().stderrText().find("follower f2 leaves the in-sync set") !=
           std::string::npos;
  }));
  CHECK(waiting.wait_for(std::chrono::milliseconds(300)) == std::future_status::timeout);
  // Below min_insync, a new write is refused at once and changes nothing; reads go on.
  // (On a connection of its own: the producer above keeps one topic's publishes in order.)
  Client other = leader.connect();
  auto refused = other.producer().publish("orders", textMessage("refused"));
  CHECK_THAT(outcome(refused), IsError(ErrorCode::kNotEnoughReplicas));
  // The waiting publish holds offset 21; the refused one took none.
  CHECK(describeTopic(other.admin(), "orders").lastOffset == 21);
  // A follower comes back, catches up from where it stopped, joins again: the waiting publish
  // is acknowledged.
  f2 = startFollower(f2Dir.path(), leader, "f2");
  REQUIRE(waiting.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  auto ack = waiting.get();
  REQUIRE(ack.ok());
  CHECK(ack.value().offset == 21);

  // f1 catches up too, from its own position; then every store is the same.
  f1 = startFollower(f1Dir.path(), leader, "f1");
  REQUIRE(eventually([&] {
    std::string log = leader.process().stderrText();
    return log.find("follower f1 joins the in-sync set") != log.rfind("follower f1 joins");
  }));
  publishPayloads(leader.producer(), "orders", 5);
  leader.process().kill(SIGKILL);
  f1->kill(SIGKILL);
  f2->kill(SIGKILL);
  std::string leaderDump = dumpOf(leader.dataDir());
  CHECK(dumpOf(f1Dir.path()) == leaderDump);
  CHECK(dumpOf(f2Dir.path()) == leaderDump);
}

TEST_CASE("the leader reports its cluster: members, the in-sync set and each replica's lag",
          "[integration][replication]") {
  auto args = leaderArgs(2, "500ms");
  args.insert(args.end(), {"--broker-id", "lead"});
  Broker leader(args);
  TempDir f1Dir, f2Dir;
  auto f1 = startFollower(f1Dir.path(), leader, "f1");
  auto f2 = startFollower(f2Dir.path(), leader, "f2");
  awaitAllInSync(leader);
  createTopic(leader.admin(), "orders");
  publishPayloads(leader.producer(), "orders", 10);

  auto statusOf = [&] {
    auto status = leader.admin().clusterStatus();
    REQUIRE(status.ok());
    return status.value();
  };
  auto find = [](const ClusterStatus& status, const std::string& id) {
    for (const ReplicaInfo& broker : status.brokers)
      if (broker.id == id) return broker;
    FAIL("no broker " << id << " in the cluster status");
    return ReplicaInfo{};
  };
  // Each follower reports what it holds with its next pull.
  REQUIRE(eventually([&] {
    ClusterStatus status = statusOf();
    return status.brokers.size() == 3 && find(status, "f1").ackedSeq == status.lastSeq &&
           find(status, "f2").ackedSeq == status.lastSeq;
  }));
  ClusterStatus status = statusOf();
  CHECK(status.clusterId == "sluice");
  CHECK(status.leader == "lead");
  CHECK(status.minInsync == 2);
  CHECK(status.inSync == std::vector<std::string>{"lead", "f1", "f2"});
  CHECK(status.brokers[0].id == "lead");
  CHECK(status.brokers[0].ackedSeq == status.lastSeq);
  CHECK(status.lastSeq >= 2);  // The topic, then the publishes (one commit or more).
  for (const ReplicaInfo& broker : status.brokers) {
    INFO(broker.id);
    CHECK(broker.alive);
    CHECK(broker.inSync);
  }
  TopicInfo topic = describeTopic(leader.admin(), "orders");
  CHECK(topic.leader == "lead");
  CHECK(topic.replicas == std::vector<std::string>{"lead", "f1", "f2"});

  // A dead follower leaves the set, and its lag grows with every write after.
  f1->kill(SIGKILL);
  REQUIRE(eventually([&] {
    return leader.process().stderrText().find("follower f1 leaves the in-sync set") !=
           std::string::npos;
  }));
  publishPayloads(leader.producer(), "orders", 3);
  status = statusOf();
  CHECK(status.inSync == std::vector<std::string>{"lead", "f2"});
  ReplicaInfo dead = find(status, "f1");
  CHECK_FALSE(dead.inSync);
  CHECK_FALSE(dead.alive);
  CHECK(dead.ackedSeq < status.lastSeq);
  CHECK(dead.caughtUpAgoMs >= 500);
  CHECK(describeTopic(leader.admin(), "orders").inSync == std::vector<std::string>{"lead", "f2"});

  // A standalone broker is no cluster.
  Broker standalone;
  auto alone = standalone.admin().clusterStatus();
  REQUIRE(alone.ok());
  CHECK(alone.value().clusterId.empty());
  CHECK(alone.value().brokers.empty());
  createTopic(standalone.admin(), "orders");
  CHECK(describeTopic(standalone.admin(), "orders").leader.empty());
}

// A raw client of the leader's LogSource.
struct RawPuller {
  kj::AsyncIoContext io = kj::setupAsyncIo();
  kj::Own<kj::AsyncIoStream> stream;
  kj::Own<capnp::TwoPartyClient> client;
  wire::LogSource::Client source = nullptr;

  explicit RawPuller(int port) {
    auto address = io.provider->getNetwork()
                       .parseAddress("127.0.0.1:" + std::to_string(port))
                       .wait(io.waitScope);
    stream = address->connect().wait(io.waitScope);
    client = kj::heap<capnp::TwoPartyClient>(*stream);
    source = client->bootstrap().castAs<wire::LogSource>();
  }

  struct Outcome {
    bool error = false;
    wire::ReplicationError code = wire::ReplicationError::INVALID_ARGUMENT;
    std::string message;
    size_t batches = 0;
    uint64_t lastSeq = 0;
  };
  Outcome pull(const std::string& cluster, const std::string& follower, uint64_t epoch,
               uint64_t from, uint32_t waitMs = 0) {
    auto request = source.pullRequest();
    request.setClusterId(cluster);
    request.setFollower(follower);
    request.setEpoch(epoch);
    request.setFrom(from);
    request.setWaitMs(waitMs);
    request.setMaxBytes(1 << 20);
    auto response = request.send().wait(io.waitScope);
    Outcome outcome;
    auto result = response.getResult();
    if (result.isError()) {
      outcome.error = true;
      outcome.code = result.getError().getCode();
      outcome.message = result.getError().getMessage();
    } else {
      outcome.batches = result.getBatches().getBatches().size();
      outcome.lastSeq = result.getBatches().getLastSeq();
    }
    return outcome;
  }
};

TEST_CASE("bad pulls are refused with a typed error and change nothing",
          "[integration][replication]") {
  Broker leader(leaderArgs(1));
  createTopic(leader.admin(), "orders");
  publishPayloads(leader.producer(), "orders", 3);
  int port = leader.process().replicationPort();
  REQUIRE(port > 0);

  // Garbage on the replication port costs only that connection.
  {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    std::string garbage(4096, '\xff');
    CHECK(::write(fd, garbage.data(), garbage.size()) > 0);
    // The leader closes it (after, perhaps, a last word of its own).
    timeval timeout{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    char buffer[512];
    ssize_t n = 0;
    while ((n = ::read(fd, buffer, sizeof buffer)) > 0) {
    }
    CHECK(n == 0);
    ::close(fd);
  }

  RawPuller puller(port);
  using E = wire::ReplicationError;
  auto refused = [&](RawPuller::Outcome outcome, E code, const std::string& words) {
    INFO(outcome.message);
    CHECK(outcome.error);
    CHECK(outcome.code == code);
    CHECK_THAT(outcome.message, Catch::Matchers::Contains(words));
  };
  refused(puller.pull("other", "x1", 0, 1), E::WRONG_CLUSTER, "belongs to cluster sluice");
  refused(puller.pull("sluice", "x1", 7, 1), E::STALE_EPOCH, "epoch 7");
  refused(puller.pull("sluice", "x1", 0, 0), E::INVALID_ARGUMENT, "from must be >= 1");
  refused(puller.pull("sluice", "bad id!", 0, 1), E::INVALID_ARGUMENT, "follower id");
  refused(puller.pull("sluice", "", 0, 1), E::INVALID_ARGUMENT, "follower id");
  refused(puller.pull("sluice", "x1", 0, 1, 9000), E::INVALID_ARGUMENT, "above 5000");
  auto good = puller.pull("sluice", "x1", 0, 1);
  REQUIRE_FALSE(good.error);
  CHECK(good.batches == good.lastSeq);  // Everything from 1.
  CHECK(good.lastSeq >= 2);             // The topic and the publish.
  refused(puller.pull("sluice", "x1", 0, good.lastSeq + 2), E::OUTSIDE_WINDOW, "diverged");
  // Caught up: a pull from the end waits, then answers with nothing new (the broker's own
  // periodic commits, such as the dedup expiry sweep, may come first: they are pulled too).
  uint64_t end = good.lastSeq;
  bool idle = false;
  for (int i = 0; i < 20 && !idle; ++i) {
    auto next = puller.pull("sluice", "x1", 0, end + 1, 200);
    REQUIRE_FALSE(next.error);
    CHECK(next.lastSeq == end + next.batches);
    end += next.batches;
    idle = next.batches == 0;
  }
  CHECK(idle);

  // The leader still serves: the refusals were logged and nothing else changed.
  publishPayloads(leader.producer(), "orders", 1);
  CHECK(describeTopic(leader.admin(), "orders").messages == 4);
  CHECK_THAT(leader.process().stderrText(), Catch::Matchers::Contains("refused a pull"));
}

TEST_CASE(
    "a follower of another cluster, or one that holds batches the leader never wrote, "
    "applies nothing",
    "[integration][replication]") {
  Broker leader(leaderArgs(1));
  createTopic(leader.admin(), "orders");

  TempDir strangerDir;
  auto stranger = startFollower(strangerDir.path(), leader, "s1", {"--cluster-id", "other"});
  REQUIRE(eventually([&] {
    return stranger->stderrText().find("belongs to cluster sluice") != std::string::npos;
  }));

  // A store with writes of its own (here: a standalone broker's) is ahead of this leader's log.
  TempDir divergedDir;
  {
    auto standalone = SluicedProcess::start(divergedDir.path());
    Client client = connectTo(*standalone);
    for (int i = 0; i < 5; ++i)
      REQUIRE(client.admin().createTopic("own" + std::to_string(i)).ok());
    REQUIRE(standalone->stop() == 0);
  }
  std::string before = dumpOf(divergedDir.path());
  auto diverged = startFollower(divergedDir.path(), leader, "d1");
  REQUIRE(eventually([&] { return diverged->stderrText().find("diverged") != std::string::npos; }));
  stranger->kill(SIGKILL);
  diverged->kill(SIGKILL);
  CHECK(dumpOf(divergedDir.path()) == before);
  // Served on their own, neither store has the leader's topic.
  auto topicsOf = [](const std::string& dir) {
    auto standalone = SluicedProcess::start(dir);
    Client client = connectTo(*standalone);
    auto topics = client.admin().listTopics();
    REQUIRE(topics.ok());
    std::vector<std::string> names;
    for (const TopicInfo& topic : topics.value())
      names.push_back(topic.name);
    return names;
  };
  CHECK(topicsOf(strangerDir.path()).empty());
  CHECK(topicsOf(divergedDir.path()) ==
        std::vector<std::string>{"own0", "own1", "own2", "own3", "own4"});
}

}  // namespace
}  // namespace sluice::test
