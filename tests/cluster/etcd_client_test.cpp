// EtcdClient against a real three-member etcd cluster: the operations the control plane uses,
// their failure modes, and going on when a member dies.

#include <kj/async-io.h>
#include <kj/debug.h>
#include <catch2/catch.hpp>

#include <chrono>

#include "cluster/etcd.h"
#include "support/etcd_cluster.h"

using sluice::cluster::Compare;
using sluice::cluster::EtcdClient;
using sluice::cluster::TxnOp;
using sluice::cluster::WatchEvent;
using sluice::test::EtcdCluster;

namespace {

struct Loop {
  kj::AsyncIoContext io = kj::setupAsyncIo();
  kj::Timer& timer() { return io.provider->getTimer(); }
  kj::Network& network() { return io.provider->getNetwork(); }
  kj::WaitScope& wait() { return io.waitScope; }
};

// The description of the exception `promise` rejects with; fails the test if it resolves.
template <class T>
kj::Exception failureOf(kj::Promise<T>&& promise, kj::WaitScope& wait) {
  kj::Maybe<kj::Exception> caught;
  promise.then([](auto&&) {}, [&](kj::Exception&& e) { caught = kj::mv(e); }).wait(wait);
  KJ_IF_MAYBE (e, caught) {
    return kj::mv(*e);
  }
  FAIL("the request succeeded");
  return KJ_EXCEPTION(FAILED, "unreachable");
}

}  // namespace

TEST_CASE("etcd client: put, get, prefix and delete round-trip with rising revisions", "[etcd]") {
  EtcdCluster cluster;
  Loop loop;
  EtcdClient etcd(loop.timer(), loop.network(), cluster.endpoints());
  int64_t first = etcd.put("/sluice/t/a", "one").wait(loop.wait());
  int64_t second = etcd.put("/sluice/t/b", std::string("bin\0ary\xff", 8)).wait(loop.wait());
  etcd.put("/sluice/u", "other").wait(loop.wait());
  CHECK(second > first);

  auto a = etcd.get("/sluice/t/a").wait(loop.wait());
  REQUIRE(a.kvs.size() == 1);
  CHECK(a.kvs[0].value == "one");
  CHECK(a.kvs[0].version == 1);
  CHECK(a.kvs[0].modRevision == first);
  CHECK(etcd.get("/sluice/t/none").wait(loop.wait()).kvs.empty());

  auto prefix = etcd.getPrefix("/sluice/t/").wait(loop.wait());
  REQUIRE(prefix.kvs.size() == 2);
  CHECK(prefix.kvs[0].key == "/sluice/t/a");
  CHECK(prefix.kvs[1].value == std::string("bin\0ary\xff", 8));
  CHECK(prefix.revision >= second);

  CHECK(etcd.delPrefix("/sluice/t/").wait(loop.wait()) == 2);
  CHECK(etcd.del("/sluice/t/a").wait(loop.wait()) == 0);
  CHECK(etcd.getPrefix("/sluice/t/").wait(loop.wait()).kvs.empty());
  CHECK(etcd.get("/sluice/u").wait(loop.wait()).kvs.size() == 1);
}

TEST_CASE("etcd client: a compare-and-swap succeeds once, and reads in the same transaction",
          "[etcd]") {
  EtcdCluster cluster;
  Loop loop;
  EtcdClient etcd(loop.timer(), loop.network(), cluster.endpoints());
  auto claim = [&](const std::string& who) {
    return etcd
        .txn({Compare::absent("/sluice/controller")}, {TxnOp::put("/sluice/controller", who)},
             {TxnOp::get("/sluice/controller")})
        .wait(loop.wait());
  };
  auto won = claim("broker-1");
  CHECK(won.succeeded);
  CHECK(won.reads.empty());
  auto lost = claim("broker-2");
  CHECK_FALSE(lost.succeeded);
  REQUIRE(lost.reads.size() == 1);
  REQUIRE(lost.reads[0].kvs.size() == 1);
  CHECK(lost.reads[0].kvs[0].value == "broker-1");

  // A swap conditioned on the revision read: the first of two writers wins.
  int64_t revision = lost.reads[0].kvs[0].modRevision;
  auto swap = [&](const std::string& value) {
    return etcd
        .txn({Compare::modRevisionIs("/sluice/controller", revision)},
             {TxnOp::put("/sluice/controller", value)})
        .wait(loop.wait());
  };
  CHECK(swap("epoch-2").succeeded);
  CHECK_FALSE(swap("epoch-2-again").succeeded);
  CHECK(etcd.txn({Compare::valueIs("/sluice/controller", "epoch-2")},
                 {TxnOp::del("/sluice/controller")})
            .wait(loop.wait())
            .succeeded);
  CHECK(etcd.get("/sluice/controller").wait(loop.wait()).kvs.empty());
}

TEST_CASE("etcd client: a key on a lease lives while kept alive and goes with the lease",
          "[etcd]") {
  EtcdCluster cluster;
  Loop loop;
  EtcdClient etcd(loop.timer(), loop.network(), cluster.endpoints());
  auto lease = etcd.grantLease(5).wait(loop.wait());
  CHECK(lease.id != 0);
  CHECK(lease.ttlSeconds == 5);
  etcd.put("/sluice/brokers/1", "127.0.0.1:1", lease.id).wait(loop.wait());
  auto member = etcd.get("/sluice/brokers/1").wait(loop.wait());
  REQUIRE(member.kvs.size() == 1);
  CHECK(member.kvs[0].lease == lease.id);
  CHECK(etcd.keepAlive(lease.id).wait(loop.wait()) == 5);

  etcd.revokeLease(lease.id).wait(loop.wait());
  CHECK(etcd.get("/sluice/brokers/1").wait(loop.wait()).kvs.empty());
  auto gone = failureOf(etcd.keepAlive(lease.id), loop.wait());
  CHECK(gone.getType() == kj::Exception::Type::FAILED);
  CHECK_THAT(gone.getDescription().cStr(), Catch::Contains("expired or was revoked"));

  // A put on a lease that does not exist is refused by etcd, not retried.
  auto refused = failureOf(etcd.put("/sluice/brokers/2", "x", lease.id), loop.wait());
  CHECK(refused.getType() == kj::Exception::Type::FAILED);
  CHECK_THAT(refused.getDescription().cStr(), Catch::Contains("lease not found"));
}

TEST_CASE("etcd client: a watch sees puts and deletes in order, from a past revision too",
          "[etcd]") {
  EtcdCluster cluster;
  Loop loop;
  EtcdClient etcd(loop.timer(), loop.network(), cluster.endpoints());
  int64_t start = etcd.put("/sluice/shards/1", "leader=a").wait(loop.wait());
  etcd.put("/sluice/other", "not watched").wait(loop.wait());
  etcd.put("/sluice/shards/2", "leader=b").wait(loop.wait());

  std::vector<WatchEvent> seen;
  auto paf = kj::newPromiseAndFulfiller<void>();
  auto watching = etcd.watchPrefix("/sluice/shards/", start, [&](const auto& events) {
    seen.insert(seen.end(), events.begin(), events.end());
    if (seen.size() >= 4) paf.fulfiller->fulfill();
  });
  auto done = paf.promise.exclusiveJoin(watching.then([] { FAIL("the watch ended"); }));
  etcd.del("/sluice/shards/1").wait(loop.wait());
  etcd.put("/sluice/shards/2", "leader=c").wait(loop.wait());
  loop.timer().timeoutAfter(10 * kj::SECONDS, kj::mv(done)).wait(loop.wait());

  REQUIRE(seen.size() == 4);
  CHECK(seen[0].kv.key == "/sluice/shards/1");
  CHECK(seen[0].kv.modRevision == start);
  CHECK(seen[1].kv.value == "leader=b");
  CHECK(seen[2].type == WatchEvent::Type::kDelete);
  CHECK(seen[2].kv.key == "/sluice/shards/1");
  CHECK(seen[3].type == WatchEvent::Type::kPut);
  CHECK(seen[3].kv.value == "leader=c");
  for (size_t i = 1; i < seen.size(); ++i)
    CHECK(seen[i].kv.modRevision > seen[i - 1].kv.modRevision);
}

TEST_CASE("etcd client: requests go on through the other members when one is killed", "[etcd]") {
  EtcdCluster cluster;
  Loop loop;
  EtcdClient etcd(loop.timer(), loop.network(), cluster.endpoints(), 3 * kj::SECONDS);
  etcd.put("/sluice/k", "before").wait(loop.wait());
  std::string first = etcd.endpoint();
  cluster.kill(0);  // The member the client talks to.
  CHECK(etcd.put("/sluice/k", "after").wait(loop.wait()) > 0);
  CHECK(etcd.endpoint() != first);
  CHECK(etcd.get("/sluice/k").wait(loop.wait()).kvs.at(0).value == "after");
}

TEST_CASE("etcd client: without a quorum, a write fails with DISCONNECTED within its timeout",
          "[etcd]") {
  EtcdCluster cluster;
  Loop loop;
  EtcdClient etcd(loop.timer(), loop.network(), cluster.endpoints(), 1 * kj::SECONDS);
  etcd.put("/sluice/k", "v").wait(loop.wait());
  cluster.kill(1);
  cluster.kill(2);
  auto started = std::chrono::steady_clock::now();
  auto failed = failureOf(etcd.put("/sluice/k", "lost"), loop.wait());
  auto took = std::chrono::steady_clock::now() - started;
  // Three endpoints tried, each for at most the 1 s timeout.
  CHECK(took < std::chrono::seconds(10));
  CHECK(failed.getType() == kj::Exception::Type::DISCONNECTED);
}

TEST_CASE("etcd client: a closed endpoint is an error, not a hang; prefix ends", "[etcd]") {
  Loop loop;
  int closed = sluice::test::freeLoopbackPort();
  EtcdClient etcd(loop.timer(), loop.network(), {"127.0.0.1:" + std::to_string(closed)},
                  2 * kj::SECONDS);
  auto refused = failureOf(etcd.get("/sluice/k"), loop.wait());
  CHECK(refused.getType() == kj::Exception::Type::DISCONNECTED);
  CHECK_THAT(refused.getDescription().cStr(), Catch::Contains("no endpoint answered"));
  CHECK(EtcdClient::prefixEnd("/a/") == "/a0");
  CHECK(EtcdClient::prefixEnd(std::string("a\xff", 2)) == "b");
  CHECK(EtcdClient::prefixEnd("") == std::string(1, '\0'));
}
