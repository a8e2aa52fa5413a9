// A cluster of three brokers on a real three-member etcd cluster, all on loopback and free
// ports: the leader is killed with SIGKILL again and again while a producer (with message ids)
// and a consumer group keep working through whichever broker leads. No acknowledged publish is
// lost, no acknowledged message is delivered to its group again, and once every broker has
// caught up, the three stores are equal and pass --check.
//
// SLUICE_FAILOVER_CYCLES sets the number of kills (default 20); the time from each kill to the
// next acknowledged publish is printed.

#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <future>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>
#include <sluice/sluice.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "cluster/member.h"
#include "sluice/schemas/rpc.capnp.h"
#include "support/etcd_cluster.h"
#include "support/http_get.h"
#include "support/run_process.h"
#include "support/sluiced_process.h"
#include "support/temp_dir.h"
#include "support/test_certs.h"

namespace sluice::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct Node {
  std::string id;
  int rpcPort = 0;
  int replicationPort = 0;
  std::unique_ptr<TempDir> dir;
  std::unique_ptr<SluicedProcess> process;
  std::string pastLogs;  // Of its earlier runs.
  std::string address() const { return "127.0.0.1:" + std::to_string(rpcPort); }
};

class Cluster {
 public:
  // brokers: how many to start now (of `total`).
  explicit Cluster(int total, int brokers = -1) {
    for (const std::string& endpoint : etcd_.endpoints())
      endpoints_ += (endpoints_.empty() ? "" : ",") + endpoint;
    for (int i = 0; i < total; ++i) {
      Node node;
      node.id = "b" + std::to_string(i + 1);
      node.rpcPort = freeLoopbackPort();
      node.replicationPort = freeLoopbackPort();
      node.dir = std::make_unique<TempDir>();
      nodes_.push_back(std::move(node));
    }
    for (int i = 0; i < (brokers < 0 ? total : brokers); ++i)
      start(i);
  }

  EtcdCluster& etcd() { return etcd_; }
  Node& node(int i) { return nodes_[i]; }
  int size() const { return static_cast<int>(nodes_.size()); }

  // How many times a broker's log said it installed a snapshot (its runs so far).
  int snapshotsInstalled() {
    int count = 0;
    for (Node& node : nodes_) {
      std::string text = node.pastLogs + (node.process ? node.process->stderrText() : "");
      for (size_t at = text.find("installed a snapshot"); at != std::string::npos;
           at = text.find("installed a snapshot", at + 1))
        ++count;
    }
    return count;
  }

  void start(int i, std::vector<std::string> extra = {}) {
    Node& node = nodes_[i];
    if (node.process) node.pastLogs += node.process->stderrText();
    std::vector<std::string> args = {"--etcd",
                                     endpoints_,
                                     "--broker-id",
                                     node.id,
                                     "--listen",
                                     "127.0.0.1:" + std::to_string(node.rpcPort),
                                     "--replication-listen",
                                     "127.0.0.1:" + std::to_string(node.replicationPort),
                                     "--replica-timeout",
                                     "1s",
                                     "--log-level",
                                     "info"};
    args.insert(args.end(), extra.begin(), extra.end());
    node.process = SluicedProcess::start(node.dir->path(), args);
  }

  // The shard record and the live brokers, as etcd has them now; nullopt if unreadable.
  std::optional<std::pair<cluster::ShardState, std::map<std::string, cluster::BrokerInfo>>>
  readState() {
    auto io = kj::setupAsyncIo();
    cluster::MemberOptions options;
    options.etcd = etcd_.endpoints();
    options.clusterId = "sluice";
    options.brokerId = "test-reader";
    cluster::ClusterMember reader(io.provider->getTimer(), io.provider->getNetwork(), options);
    try {
      auto shard = reader.shard().wait(io.waitScope);
      return std::make_pair(std::move(shard), reader.brokers().wait(io.waitScope));
    } catch (const kj::Exception&) {
      return std::nullopt;
    }
  }

  // The broker that leads, by the shard record (its lease alive); -1 if none.
  int leader() {
    auto state = readState();
    if (!state || state->second.count(state->first.leader) == 0) return -1;
    for (int i = 0; i < size(); ++i)
      if (nodes_[i].id == state->first.leader) return i;
    return -1;
  }

  // Once every broker is in the record's in-sync set: the index of the one that leads.
  int leaderOfAllInSync() {
    REQUIRE(eventually([&] { return inSyncCount() == nodes_.size(); }, 30s));
    int index = leader();
    REQUIRE(index >= 0);
    return index;
  }

  size_t inSyncCount() {
    auto state = readState();
    return state ? state->first.inSync.size() : 0;
  }

  // Every broker's client address, comma-separated.
  std::string seeds() const {
    std::string out;
    for (const Node& node : nodes_)
      out += (out.empty() ? "" : ",") + node.address();
    return out;
  }

  // A client of whichever broker serves clients: the library tries the list in order, and a
  // follower names its leader. A new leader writes the record before it serves on its client
  // port, so this tries again until one serves or `within` has passed (0: one round only).
  std::optional<Client> connectAny(std::chrono::milliseconds within = 30s) {
    Options options;
    options.connectTimeout = 500ms;
    options.callTimeout = 3s;
    auto deadline = Clock::now() + within;
    for (;;) {
      auto client = Client::connect(seeds(), options);
      if (client.ok()) return std::move(client).value();
      if (Clock::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(50ms);  // Back-off between rounds, not synchronisation.
    }
  }

 private:
  EtcdCluster etcd_{3};
  std::string endpoints_;
  std::vector<Node> nodes_;
};

bool retryable(ErrorCode code) {
  return code == ErrorCode::kDisconnected || code == ErrorCode::kConnectFailed ||
         code == ErrorCode::kTimeout || code == ErrorCode::kShuttingDown ||
         code == ErrorCode::kNotEnoughReplicas;
}

RunResult sluiced(std::vector<std::string> args) {
  args.insert(args.begin(), sluicedPath());
  return runProcess(std::move(args), "", {}, std::chrono::seconds(60));
}

// Waits until all brokers are in the in-sync set, publishes a barrier through the leader (so
// each holds everything before it), kills them all and CHECKs that their stores pass --check
// and are equal.
void checkEqualStores(Cluster& cluster) {
  REQUIRE(eventually([&] { return cluster.inSyncCount() == static_cast<size_t>(cluster.size()); },
                     60s));
  REQUIRE(eventually(
      [&] {
        auto client = cluster.connectAny();
        return client && client->producer().publish("orders", "barrier").ok();
      },
      30s));
  for (int i = 0; i < cluster.size(); ++i)
    cluster.node(i).process->kill(SIGKILL);
  std::string first;
  for (int i = 0; i < cluster.size(); ++i) {
    RunResult check = sluiced({"--check", "--data", cluster.node(i).dir->path()});
    INFO(cluster.node(i).id << ": " << check.stderrText);
    CHECK(check.exitCode == 0);
    RunResult dump = sluiced({"--dump", "--data", cluster.node(i).dir->path()});
    REQUIRE(dump.exitCode == 0);
    if (i == 0) {
      first = dump.stdoutText;
      CHECK(first.size() > 100);
    } else {
      CHECK(dump.stdoutText == first);
    }
  }
}

// The commits a broker made since it started (sluice_commits_total on its /metrics); its admin
// port is the last one its log names. -1 when it cannot be read.
int64_t commitsOf(const SluicedProcess& process) {
  std::string log = process.stderrText();
  auto at = log.rfind("admin_port=");
  if (at == std::string::npos) return -1;
  int port = std::atoi(log.c_str() + at + 11);
  HttpReply reply = httpGet(port, "/metrics");
  auto line = reply.body.find("\nsluice_commits_total ");
  if (reply.status != 200 || line == std::string::npos) return -1;
  return std::atoll(reply.body.c_str() + line + 22);
}

std::vector<Message> peekAll(Client& client) {
  std::vector<Message> out;
  for (uint64_t from = 1;;) {
    auto page = client.admin().peek("orders", from, 1000);
    REQUIRE(page.ok());
    if (page.value().empty()) return out;
    from = page.value().back().offset() + 1;
    for (Message& message : page.value())
      out.push_back(std::move(message));
  }
}

// A member of `etcd` that is not its raft leader (by each member's maintenance status).
int etcdFollower(EtcdCluster& etcd) {
  for (int i = 0; i < 3; ++i) {
    std::string body = "{}";
    HttpReply reply = httpRequest(etcd.clientPort(i),
                                  "POST /v3/maintenance/status HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                  "Content-Type: application/json\r\nConnection: close\r\n"
                                  "Content-Length: " +
                                      std::to_string(body.size()) + "\r\n\r\n" + body);
    auto status = nlohmann::json::parse(reply.body, nullptr, false);
    if (status.is_discarded() || !status.contains("header")) continue;
    if (status["header"].value("member_id", "") != status.value("leader", "")) return i;
  }
  FAIL("no etcd member answered its status as a follower");
  return -1;
}

int cycles() {
  const char* text = std::getenv("SLUICE_FAILOVER_CYCLES");
  return text != nullptr ? std::max(1, std::atoi(text)) : 20;
}

// SLUICE_FAILOVER_SOAK=<minutes>: kill leaders for that long instead of a number of cycles.
std::optional<std::chrono::minutes> soak() {
  const char* text = std::getenv("SLUICE_FAILOVER_SOAK");
  if (text == nullptr || std::atoi(text) <= 0) return std::nullopt;
  return std::chrono::minutes(std::atoi(text));
}

TEST_CASE(
    "kill -9 of the leader, again and again: no acknowledged publish lost, no "
    "acknowledged message redelivered, equal stores",
    "[cluster][failover]") {
  Cluster cluster(3);
  REQUIRE(eventually([&] { return cluster.leader() >= 0; }, 30s));
  REQUIRE(eventually([&] { return cluster.inSyncCount() == 3; }, 30s));
  {
    auto client = cluster.connectAny();
    REQUIRE(client);
    TopicSettings settings;
    settings.dedupWindow = std::chrono::hours(1);
    REQUIRE(client->admin().createTopic("orders", settings).ok());
  }

  std::atomic<bool> stop{false};
  std::mutex mu;
  std::map<std::string, uint64_t> acked;  // Message id -> offset.
  std::atomic<uint64_t> ackCount{0};
  std::string producerProblem;
  // The producer and the consumer each connect once, with the list of brokers: their Client
  // reconnects to each new leader by itself. A publish that failed (in flight at a kill) is
  // retried with the same id; the consumer is subscribed again by its Client (if
  // that is refused, it subscribes again itself).
  std::thread producer([&] {
    std::optional<Client> client;
    while (!client && !stop)
      client = cluster.connectAny();
    Producer publisher = client->producer();
    for (uint64_t i = 0; !stop; ++i) {
      OutgoingMessage message;
      message.id = "m" + std::to_string(i);
      message.payload = message.id;
      while (!stop) {
        auto ack = publisher.publish("orders", message);
        if (ack.ok()) {
          std::lock_guard<std::mutex> lock(mu);
          acked[message.id] = ack.value().offset;
          ++ackCount;
          break;
        }
        if (!retryable(ack.error().code)) {
          std::lock_guard<std::mutex> lock(mu);
          producerProblem = ack.error().toString();
          stop = true;
          return;
        }
        // Retried with the same id, through whichever broker leads now.
      }
    }
  });

  std::set<uint64_t> settled;  // Offsets acknowledged to the group.
  std::vector<uint64_t> redelivered;
  std::string consumerProblem;
  std::atomic<int> subscribes{0};  // By the test: the Client subscribes again by itself.
  std::thread consumer([&] {
    std::optional<Client> client;
    while (!client && !stop)
      client = cluster.connectAny();
    std::optional<Consumer> subscription;
    while (!stop) {
      if (!subscription) {
        SubscribeOptions options;
        options.prefetch = 16;
        auto subscribed = client->subscribe("orders", "audit", options);
        if (!subscribed.ok()) {
          if (!retryable(subscribed.error().code)) {
            std::lock_guard<std::mutex> lock(mu);
            consumerProblem = subscribed.error().toString();
            stop = true;
          }
          continue;
        }
        subscription = std::move(subscribed).value();
        ++subscribes;
      }
      auto message = subscription->receive(200ms);
      if (!message.ok()) {
        if (message.error().code == ErrorCode::kTimeout) continue;
        subscription.reset();
        continue;
      }
      std::lock_guard<std::mutex> lock(mu);
      if (settled.count(message.value().offset()) > 0)
        redelivered.push_back(message.value().offset());
      auto done = message.value().ack();
      if (done.ok()) {
        settled.insert(message.value().offset());
      } else if (!retryable(done.error().code) && done.error().code != ErrorCode::kStaleDelivery &&
                 done.error().code != ErrorCode::kNotPending) {
        consumerProblem = done.error().toString();
      }
    }
  });

  std::vector<double> failoverSeconds;
  int kills = cycles();
  auto soakUntil = soak() ? std::optional(Clock::now() + *soak()) : std::nullopt;
  for (int cycle = 0; (soakUntil ? Clock::now() < *soakUntil : cycle < kills) && !stop; ++cycle) {
    uint64_t before = ackCount;
    REQUIRE(eventually([&] { return ackCount >= before + 20; }, 30s));
    int leader = cluster.leader();
    REQUIRE(leader >= 0);
    uint64_t atKill = ackCount;
    cluster.node(leader).process->kill(SIGKILL);
    auto killed = Clock::now();
    // The producer has one publish in flight: the second ack after the kill was sent after it.
    REQUIRE(eventually([&] { return ackCount >= atKill + 2; }, 30s));
    failoverSeconds.push_back(std::chrono::duration<double>(Clock::now() - killed).count());
    REQUIRE(eventually([&] {
      int now = cluster.leader();
      return now >= 0 && now != leader;
    }));
    cluster.start(leader);  // Rejoins as a follower (from a snapshot if its tail diverged).
  }
  stop = true;
  producer.join();
  consumer.join();
  CHECK(producerProblem.empty());
  CHECK(consumerProblem.empty());
  CHECK(redelivered.empty());

  std::sort(failoverSeconds.begin(), failoverSeconds.end());
  std::cout << "failover (kill -9 of the leader to the next acknowledged publish) over "
            << failoverSeconds.size() << " kills: p50 "
            << failoverSeconds[failoverSeconds.size() / 2] << " s, max " << failoverSeconds.back()
            << " s; " << acked.size() << " publishes acknowledged; " << cluster.snapshotsInstalled()
            << " catch-ups from a snapshot; the consumer subscribed " << subscribes
            << " time(s) and acknowledged " << settled.size() << "\n";

  // Every acknowledged publish is there once, at the offset it was acknowledged with.
  auto client = cluster.connectAny();
  REQUIRE(client);
  std::map<std::string, uint64_t> stored;
  std::map<std::string, int> copies;
  for (const Message& message : peekAll(*client)) {
    stored[message.id()] = message.offset();
    ++copies[message.id()];
  }
  size_t lost = 0;
  for (const auto& [id, offset] : acked) {
    auto found = stored.find(id);
    if (found == stored.end() || found->second != offset) ++lost;
  }
  CHECK(lost == 0);
  for (const auto& [id, count] : copies)
    CHECK(count == 1);
  client->close();
  checkEqualStores(cluster);
}

TEST_CASE("a dead leader's unacknowledged tail is dropped: it rejoins from a snapshot",
          "[cluster][failover]") {
  Cluster cluster(3);
  REQUIRE(eventually([&] { return cluster.leader() >= 0; }, 30s));
  int old = cluster.leaderOfAllInSync();
  auto client = cluster.connectAny();
  REQUIRE(client);
  REQUIRE(client->admin().createTopic("orders").ok());
  for (int i = 1; i <= 5; ++i)
    REQUIRE(client->producer().publish("orders", "acked-" + std::to_string(i)).ok());

  // Both followers die; the leader commits a sixth message that no follower will ever hold,
  // so it is never acknowledged; then the leader dies too, before it could drop the
  // followers from the in-sync set (--replica-timeout 1s).
  std::vector<int> followers;
  for (int i = 0; i < cluster.size(); ++i)
    if (i != old) followers.push_back(i);
  for (int i : followers)
    cluster.node(i).process->kill(SIGKILL);
  // An idle broker commits nothing on its own (no ids to expire here), so the next commit is
  // the publish's.
  int64_t commits = commitsOf(*cluster.node(old).process);
  REQUIRE(commits > 0);
  OutgoingMessage neverAcked;
  neverAcked.payload = "never-acked";
  auto unacknowledged = client->producer().publishAsync("orders", neverAcked);
  REQUIRE(eventually([&] { return commitsOf(*cluster.node(old).process) == commits + 1; }));
  // Not acknowledged, and not visible: a peek shows only what the in-sync set holds.
  auto sixth = client->admin().peek("orders", 6, 1);
  REQUIRE(sixth.ok());
  CHECK(sixth.value().empty());
  cluster.node(old).process->kill(SIGKILL);
  CHECK_FALSE(unacknowledged.get().ok());

  // A follower takes over; the sixth offset is written anew.
  for (int i : followers)
    cluster.start(i);
  REQUIRE(eventually(
      [&] {
        int now = cluster.leader();
        return now >= 0 && now != old;
      },
      30s));
  auto after = cluster.connectAny();
  REQUIRE(after);
  auto again = after->producer().publish("orders", "after-failover");
  REQUIRE(again.ok());
  CHECK(again.value().offset == 6);

  // The old leader's store holds a batch the new epoch never wrote: a snapshot replaces it.
  cluster.start(old);
  REQUIRE(eventually(
      [&] {
        return cluster.node(old).process->stderrText().find("installed a snapshot") !=
               std::string::npos;
      },
      30s));
  std::vector<std::string> payloads;
  for (const Message& message : peekAll(*after))
    payloads.push_back(message.payload());
  CHECK(payloads == std::vector<std::string>{"acked-1", "acked-2", "acked-3", "acked-4", "acked-5",
                                             "after-failover"});
  after->close();
  checkEqualStores(cluster);
}

TEST_CASE("kill -9 of one etcd member changes nothing; of a follower, writes go on without it",
          "[cluster][failover]") {
  Cluster cluster(3);
  int leader = cluster.leaderOfAllInSync();
  auto client = cluster.connectAny();
  REQUIRE(client);
  REQUIRE(client->admin().createTopic("orders").ok());
  Producer producer = client->producer();
  REQUIRE(producer.publish("orders", "one").ok());

  // etcd keeps its quorum with two of three members: same leader, same epoch, writes go on.
  // (A member that is etcd's own raft leader is another case: during etcd's election no
  // lease can be renewed, and the brokers' leader may step down; see cluster/README.md.)
  cluster.etcd().kill(etcdFollower(cluster.etcd()));
  for (int i = 0; i < 20; ++i)
    REQUIRE(producer.publish("orders", "etcd-" + std::to_string(i)).ok());
  CHECK(cluster.leader() == leader);

  // A follower dies: acknowledgements wait for it at most --replica-timeout (1 s here), then
  // go on with the other; the record drops it from the in-sync set.
  int follower = (leader + 1) % cluster.size();
  cluster.node(follower).process->kill(SIGKILL);
  for (int i = 0; i < 20; ++i)
    REQUIRE(producer.publish("orders", "follower-" + std::to_string(i)).ok());
  REQUIRE(eventually([&] { return cluster.inSyncCount() == 2; }));
  CHECK(cluster.leader() == leader);

  // What an operator sees: `sluice cluster status` and `topics describe` through the same list
  // of brokers (only the leader answers).
  auto cli = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {sluiceCliPath(), "--json", "--broker", cluster.seeds()});
    RunResult run = runProcess(std::move(args), "", {}, std::chrono::seconds(30));
    INFO(run.stderrText);
    REQUIRE(run.exitCode == 0);
    return nlohmann::json::parse(run.stdoutText);
  };
  // The dead broker's membership ends with its lease (2 s), which can be after it left the
  // in-sync set.
  nlohmann::json status;
  REQUIRE(eventually([&] {
    status = cli({"cluster", "status"});
    for (const auto& broker : status["brokers"])
      if (broker["id"] == cluster.node(follower).id) return broker["alive"] == false;
    return false;
  }));
  auto state = cluster.readState();
  REQUIRE(state);
  CHECK(status["cluster"] == "sluice");
  CHECK(status["leader"] == cluster.node(leader).id);
  CHECK(status["epoch"] == state->first.epoch);
  CHECK(status["in_sync"] == state->first.inSync);
  REQUIRE(status["brokers"].size() == 3);
  CHECK(status["brokers"][0]["id"] == cluster.node(leader).id);
  CHECK(status["brokers"][0]["rpc"] == cluster.node(leader).address());
  for (const auto& broker : status["brokers"]) {
    INFO(broker.dump());
    bool dead = broker["id"] == cluster.node(follower).id;
    CHECK(broker["alive"] == !dead);
    CHECK(broker["in_sync"] == !dead);
    if (dead) CHECK(broker["lag"].get<uint64_t>() > 0);
  }
  nlohmann::json topic = cli({"topics", "describe", "orders"});
  CHECK(topic["leader"] == cluster.node(leader).id);
  CHECK(topic["replicas"].size() == 3);
  CHECK(topic["in_sync"] == state->first.inSync);

  // Back, it catches up from its own position and joins again.
  cluster.start(follower);
  REQUIRE(eventually([&] { return cluster.inSyncCount() == 3; }, 30s));
  client->close();
  checkEqualStores(cluster);
}

TEST_CASE(
    "a leader cut off past its lease (frozen by SIGSTOP) acknowledges nothing when it wakes, "
    "and rejoins without divergence",
    "[cluster][failover]") {
  // SIGSTOP cuts the leader off from etcd, its followers and its clients at once, as a network
  // partition would, while its sockets stay open: what it does on waking is what an isolated
  // leader does when the partition heals.
  Cluster cluster(3);
  int old = cluster.leaderOfAllInSync();
  // A client of the old leader alone (no list, so it never moves to another broker).
  Options options;
  options.callTimeout = 30s;
  auto stale = Client::connect(cluster.node(old).address(), options);
  REQUIRE(stale.ok());
  REQUIRE(stale.value().admin().createTopic("orders").ok());
  Producer staleProducer = stale.value().producer();
  REQUIRE(staleProducer.publish("orders", "before").ok());

  pid_t frozen = cluster.node(old).process->pid();
  REQUIRE(::kill(frozen, SIGSTOP) == 0);  // Not SluicedProcess::kill: that waits for an exit.
  REQUIRE(eventually(
      [&] {
        int now = cluster.leader();
        return now >= 0 && now != old;
      },
      30s));
  auto current = cluster.connectAny();
  REQUIRE(current);
  REQUIRE(eventually([&] { return current->producer().publish("orders", "new-leader").ok(); }));
  // Sent to the frozen leader: it waits in its socket until it wakes.
  OutgoingMessage late;
  late.id = "late";
  late.payload = "late";
  auto lateAck = staleProducer.publishAsync("orders", late);

  REQUIRE(::kill(frozen, SIGCONT) == 0);
  // Its lease is long gone: the write is refused or the connection dropped, never acknowledged.
  REQUIRE(lateAck.wait_for(20s) == std::future_status::ready);
  auto answer = lateAck.get();
  CHECK_FALSE(answer.ok());
  // It rejoins as a follower of the new leader (from a snapshot if it wrote anything after).
  REQUIRE(eventually([&] { return cluster.inSyncCount() == 3; }, 60s));
  std::vector<Message> stored = peekAll(*current);
  std::vector<std::string> payloads;
  for (const Message& message : stored)
    payloads.push_back(message.payload());
  CHECK(payloads == std::vector<std::string>{"before", "new-leader"});
  current->close();
  stale.value().close();
  checkEqualStores(cluster);
}

TEST_CASE(
    "with two of three etcd members down nothing is acknowledged; with one back, service "
    "resumes by itself",
    "[cluster][failover]") {
  Cluster cluster(3);
  int leader = cluster.leaderOfAllInSync();
  auto client = cluster.connectAny();
  REQUIRE(client);
  REQUIRE(client->admin().createTopic("orders").ok());
  Producer producer = client->producer();
  std::vector<uint64_t> acked;
  for (int i = 0; i < 10; ++i) {
    auto ack = producer.publish("orders", "before-" + std::to_string(i));
    REQUIRE(ack.ok());
    acked.push_back(ack.value().offset);
  }

  // etcd without its quorum cannot renew the leader's lease: the leader stops acknowledging
  // within the lease's margin and steps down. No broker can take the lead meanwhile.
  cluster.etcd().kill(0);
  cluster.etcd().kill(1);
  SluicedProcess& old = *cluster.node(leader).process;
  REQUIRE(
      eventually([&] { return old.stderrText().find("stepping down") != std::string::npos; }, 15s));
  OutgoingMessage refused;
  refused.id = "during";
  refused.payload = "during";
  CHECK_FALSE(producer.publish("orders", refused).ok());
  CHECK_FALSE(cluster.connectAny(0ms));  // Nobody serves clients.
  for (int i = 0; i < cluster.size(); ++i) {
    INFO(cluster.node(i).id);
    CHECK(cluster.node(i).process->running());  // They wait for etcd; none exits.
  }

  // One member back: etcd has its quorum again, the record still names the leader, and it
  // leads again in a new epoch. The same Client reconnects, and the retried publish is
  // stored once.
  cluster.etcd().restart(0);
  REQUIRE(eventually([&] { return producer.publish("orders", refused).ok(); }, 60s));
  auto state = cluster.readState();
  REQUIRE(state);
  CHECK(state->first.leader == cluster.node(leader).id);
  CHECK(state->first.epoch >= 2);
  std::vector<Message> stored = peekAll(*client);
  std::vector<uint64_t> offsets;
  int during = 0;
  for (const Message& message : stored) {
    offsets.push_back(message.offset());
    during += message.id() == "during" ? 1 : 0;
  }
  for (uint64_t offset : acked)
    CHECK(std::find(offsets.begin(), offsets.end(), offset) != offsets.end());
  CHECK(during == 1);
  client->close();
  checkEqualStores(cluster);
}

// What a broker answers to Broker.hello, and what it answers to a publish, asked raw.
struct RawHello {
  bool serves = false;
  std::string brokerId, leader, leaderRpc, leaderTls, why;
  std::vector<std::string> brokers;
  std::string publishFailure;  // Empty: the publish was answered.
};

RawHello askRaw(const std::string& address) {
  auto io = kj::setupAsyncIo();
  auto stream = io.provider->getNetwork()
                    .parseAddress(address)
                    .wait(io.waitScope)
                    ->connect()
                    .wait(io.waitScope);
  capnp::TwoPartyClient client(*stream);
  auto broker = client.bootstrap().castAs<wire::Broker>();
  auto response = broker.helloRequest().send().wait(io.waitScope);  // Owns what answer reads.
  auto answer = response.getHello();
  RawHello out;
  out.serves = answer.getServes();
  out.brokerId = answer.getBrokerId();
  out.leader = answer.getLeader();
  out.leaderRpc = answer.getLeaderRpc();
  out.leaderTls = answer.getLeaderTls();
  out.why = answer.getWhy();
  for (auto b : answer.getBrokers())
    out.brokers.push_back(b.getRpc());
  std::sort(out.brokers.begin(), out.brokers.end());
  auto publish = broker.publishRequest();
  publish.setTopic("orders");
  publish.initMessages(1)[0].setPayload(kj::StringPtr("raw").asBytes());
  try {
    publish.send().wait(io.waitScope);
  } catch (const kj::Exception& e) {
    out.publishFailure = e.getDescription().cStr();
  }
  return out;
}

TEST_CASE(
    "any member's address is enough: a follower names the leader, and a client of it alone "
    "follows two failovers",
    "[cluster][failover]") {
  Cluster cluster(3);
  int leader = cluster.leaderOfAllInSync();
  int seed = (leader + 1) % cluster.size();
  std::vector<std::string> all;
  for (int i = 0; i < cluster.size(); ++i)
    all.push_back(cluster.node(i).address());
  std::sort(all.begin(), all.end());

  // Asked raw: the follower names the leader and the live brokers, and serves nothing else.
  RawHello follower = askRaw(cluster.node(seed).address());
  CHECK_FALSE(follower.serves);
  CHECK(follower.brokerId == cluster.node(seed).id);
  CHECK(follower.leader == cluster.node(leader).id);
  CHECK(follower.leaderRpc == cluster.node(leader).address());
  CHECK(follower.brokers == all);
  CHECK_THAT(follower.why, Catch::Matchers::Contains("follows " + cluster.node(leader).id));
  CHECK_THAT(follower.publishFailure,
             Catch::Matchers::Contains("connect to the leader " + cluster.node(leader).id + " at " +
                                       cluster.node(leader).address()));
  RawHello served = askRaw(cluster.node(leader).address());
  CHECK(served.serves);
  CHECK(served.brokerId == cluster.node(leader).id);
  CHECK(served.leaderRpc == cluster.node(leader).address());
  CHECK(served.brokers == all);
  CHECK(served.publishFailure.empty());  // Answered (topicNotFound), not refused.

  // The CLI given the follower alone is answered by the leader.
  RunResult status = runProcess(
      {sluiceCliPath(), "--json", "--broker", cluster.node(seed).address(), "cluster", "status"},
      "", {}, std::chrono::seconds(30));
  INFO(status.stderrText);
  REQUIRE(status.exitCode == 0);
  CHECK(nlohmann::json::parse(status.stdoutText)["leader"] == cluster.node(leader).id);

  // A client given the follower alone.
  Options options;
  options.connectTimeout = 500ms;
  options.callTimeout = 3s;
  auto connected = Client::connect(cluster.node(seed).address(), options);
  REQUIRE(connected.ok());
  Client& client = connected.value();
  REQUIRE(client.admin().createTopic("orders").ok());
  Producer producer = client.producer();
  auto publish = [&](const std::string& id) {
    OutgoingMessage message;
    message.id = id;
    message.payload = id;
    return eventually([&] { return producer.publish("orders", message).ok(); }, 30s);
  };
  REQUIRE(publish("one"));

  // The leader dies: the client reconnects (through its only address, or another it learned)
  // to the new leader.
  cluster.node(leader).process->kill(SIGKILL);
  REQUIRE(publish("two"));
  int second = cluster.leader();
  REQUIRE(second >= 0);
  REQUIRE(second != leader);

  // The old leader returns and catches up; then the new leader dies. If that is the only
  // address the client was given, it goes on through the brokers the cluster named.
  cluster.start(leader);
  REQUIRE(eventually([&] { return cluster.inSyncCount() == 3; }, 60s));
  cluster.node(second).process->kill(SIGKILL);
  REQUIRE(publish("three"));
  int third = cluster.leader();
  CHECK(third != second);

  std::vector<std::string> ids;
  for (const Message& message : peekAll(client))
    ids.push_back(message.id());
  CHECK(ids == std::vector<std::string>{"one", "two", "three"});
  client.close();
  cluster.start(second);
  checkEqualStores(cluster);
}

TEST_CASE("a TLS client given a follower's TLS address is served by the leader over TLS",
          "[cluster]") {
  TempDir certs;
  TestCert ca(certs.path(), "ca", caOptions("Sluice test CA"));
  TestCert server(certs.path(), "server", CertOptions(), &ca);  // For "localhost".
  Cluster cluster(3, 0);
  std::vector<std::string> tls;
  for (int i = 0; i < cluster.size(); ++i) {
    tls.push_back("127.0.0.1:" + std::to_string(freeLoopbackPort()));
    cluster.start(i, {"--listen-tls", tls.back(), "--tls-cert", server.certPath(), "--tls-key",
                      server.keyPath()});
  }
  int leader = cluster.leaderOfAllInSync();
  int seed = (leader + 1) % cluster.size();
  RawHello follower = askRaw(cluster.node(seed).address());
  CHECK(follower.leaderTls == tls[leader]);

  Options options;
  options.tls.enabled = true;
  options.tls.caFile = ca.certPath();
  options.tls.serverName = "localhost";  // Each broker's certificate names it.
  options.callTimeout = 3s;
  auto connected = Client::connect(tls[seed], options);
  INFO((connected.ok() ? "" : connected.error().message));
  REQUIRE(connected.ok());
  Client& client = connected.value();
  auto status = client.admin().clusterStatus();
  REQUIRE(status.ok());
  CHECK(status.value().leader == cluster.node(leader).id);
  REQUIRE(client.admin().createTopic("orders").ok());
  REQUIRE(client.producer().publish("orders", "over tls").ok());
  client.close();
}

TEST_CASE("the CLI's consume, given one follower, goes on across a failover by itself",
          "[cluster][failover]") {
  Cluster cluster(3);
  int leader = cluster.leaderOfAllInSync();
  int seed = (leader + 1) % cluster.size();
  auto client = cluster.connectAny();
  REQUIRE(client);
  REQUIRE(client->admin().createTopic("orders").ok());
  REQUIRE(client->admin().createGroup("orders", "workers").ok());
  Producer producer = client->producer();
  auto publish = [&](const std::string& id) {
    OutgoingMessage message;
    message.id = id;
    message.payload = id;
    uint64_t offset = 0;
    REQUIRE(eventually(
        [&] {
          auto ack = producer.publish("orders", message);
          if (ack.ok()) offset = ack.value().offset;
          return ack.ok();
        },
        30s));
    return offset;
  };
  std::set<std::string> sent;
  uint64_t last = 0;
  for (int i = 0; i < 10; ++i) {
    sent.insert("before-" + std::to_string(i));
    last = publish("before-" + std::to_string(i));
  }

  // `sluice consume` given the follower alone: it is served by the leader.
  auto consumed = std::async(std::launch::async, [&] {
    return runProcess({sluiceCliPath(), "--json", "--broker", cluster.node(seed).address(),
                       "consume", "orders", "--group", "workers", "--count", "20"},
                      "", {}, std::chrono::seconds(120));
  });
  // Every message so far acknowledged: none is in flight when the leader dies.
  REQUIRE(eventually(
      [&] {
        auto group = client->admin().describeGroup("orders", "workers");
        return group.ok() && group.value().ackFloor > last;
      },
      30s));
  cluster.node(leader).process->kill(SIGKILL);
  for (int i = 0; i < 10; ++i) {
    sent.insert("after-" + std::to_string(i));
    publish("after-" + std::to_string(i));
  }

  REQUIRE(consumed.wait_for(90s) == std::future_status::ready);
  RunResult run = consumed.get();
  INFO(run.stderrText);
  INFO(run.stdoutText);
  REQUIRE(run.exitCode == 0);
  std::multiset<std::string> printed;
  std::istringstream lines(run.stdoutText);
  for (std::string line; std::getline(lines, line);)
    printed.insert(nlohmann::json::parse(line)["payload"].get<std::string>());
  CHECK(std::set<std::string>(printed.begin(), printed.end()) == sent);
  CHECK(printed.size() == sent.size());  // Each once: none was redelivered.
  client->close();
  cluster.start(leader);
  checkEqualStores(cluster);
}

TEST_CASE("a store of another cluster, or a standalone store with data, is refused", "[cluster]") {
  Cluster cluster(3, 1);  // b1 leads; b2 and b3 are not started yet.
  REQUIRE(eventually([&] { return cluster.leader() == 0; }, 30s));

  // b2's store was a member of cluster "other" (on the same etcd).
  cluster.start(1, {"--cluster-id", "other"});
  REQUIRE(eventually([&] {
    return cluster.node(1).process->stderrText().find("leading epoch=1") != std::string::npos;
  }));
  REQUIRE(cluster.node(1).process->stop() == 0);
  // Started as a member of this cluster, a broker exits 2 naming why, and changes nothing.
  auto refusedToJoin = [&](int i, const std::string& why) {
    cluster.start(i);
    REQUIRE(eventually([&] { return !cluster.node(i).process->running(); }));
    CHECK(WEXITSTATUS(cluster.node(i).process->kill(SIGKILL)) == 2);
    CHECK_THAT(cluster.node(i).process->stderrText(), Catch::Matchers::Contains(why));
  };
  refusedToJoin(1, "belongs to cluster other, not sluice");

  // b3's store was a standalone broker's, with a topic of its own.
  {
    auto standalone = SluicedProcess::start(cluster.node(2).dir->path());
    Client client = connectTo(*standalone);
    REQUIRE(client.admin().createTopic("mine").ok());
    REQUIRE(standalone->stop() == 0);
  }
  refusedToJoin(2, "was never in a cluster");
  // Neither store was touched: the standalone one still has its topic alone.
  auto standalone = SluicedProcess::start(cluster.node(2).dir->path());
  Client client = connectTo(*standalone);
  auto topics = client.admin().listTopics();
  REQUIRE(topics.ok());
  REQUIRE(topics.value().size() == 1);
  CHECK(topics.value()[0].name == "mine");
}

}  // namespace
}  // namespace sluice::test
