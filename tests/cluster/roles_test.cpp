// The rules that decide a broker's role and whether its store diverged (cluster/member.h),
// without etcd: the cases cluster/README.md lists.

#include <catch2/catch.hpp>

#include "cluster/member.h"

namespace sluice::cluster {
namespace {

std::map<std::string, BrokerInfo> aliveOf(std::initializer_list<const char*> ids) {
  std::map<std::string, BrokerInfo> out;
  for (const char* id : ids)
    out[id] = BrokerInfo{id, std::string(id) + ":rpc", std::string(id) + ":repl"};
  return out;
}

ShardState shardOf(std::string leader, uint64_t epoch, std::vector<std::string> inSync,
                   std::vector<EpochStart> epochs) {
  ShardState shard;
  shard.leader = std::move(leader);
  shard.epoch = epoch;
  shard.inSync = std::move(inSync);
  shard.epochs = std::move(epochs);
  shard.modRevision = 7;
  return shard;
}

TEST_CASE("the first broker of a new cluster leads epoch 1 from its next sequence number",
          "[cluster][roles]") {
  Role role = decideRole(ShardState{}, aliveOf({"b1"}), "b1", 0);
  REQUIRE(role.kind == Role::Kind::kLead);
  CHECK(role.next.leader == "b1");
  CHECK(role.next.epoch == 1);
  CHECK(role.next.inSync == std::vector<std::string>{"b1"});
  REQUIRE(role.next.epochs.size() == 1);
  CHECK(role.next.epochs[0].firstSeq == 1);
}

TEST_CASE("a live leader is followed; a dead one is replaced by an in-sync member only",
          "[cluster][roles]") {
  ShardState shard = shardOf("b1", 3, {"b1", "b2", "b3"}, {{1, 1}, {2, 40}, {3, 90}});
  Role follow = decideRole(shard, aliveOf({"b1", "b2", "b3"}), "b2", 120);
  REQUIRE(follow.kind == Role::Kind::kFollow);
  CHECK(follow.leader.replication == "b1:repl");

  Role takeOver = decideRole(shard, aliveOf({"b2", "b3"}), "b3", 118);
  REQUIRE(takeOver.kind == Role::Kind::kLead);
  CHECK(takeOver.next.epoch == 4);
  CHECK(takeOver.next.inSync == std::vector<std::string>{"b3", "b2"});
  CHECK(takeOver.next.epochs.back().epoch == 4);
  CHECK(takeOver.next.epochs.back().firstSeq == 119);

  ShardState narrow = shardOf("b1", 3, {"b1", "b2"}, {{3, 90}});
  Role outsider = decideRole(narrow, aliveOf({"b2", "b3"}), "b3", 200);
  CHECK(outsider.kind == Role::Kind::kWait);
  CHECK_THAT(outsider.why, Catch::Matchers::Contains("not in the in-sync set"));

  // A leader that restarted leads again, in a new epoch.
  Role again = decideRole(shard, aliveOf({"b1", "b2"}), "b1", 130);
  REQUIRE(again.kind == Role::Kind::kLead);
  CHECK(again.next.epoch == 4);
}

TEST_CASE("a store diverged when it holds batches at or after the start of a later epoch",
          "[cluster][roles]") {
  ShardState shard = shardOf("b3", 3, {"b3"}, {{1, 1}, {2, 10}, {3, 25}});
  CHECK_FALSE(diverged(shard, 0, 0));   // Empty.
  CHECK_FALSE(diverged(shard, 1, 9));   // Epoch 1's batches, all before epoch 2 began.
  CHECK(diverged(shard, 1, 10));        // Epoch 1 wrote a 10th batch; epoch 2 wrote its own.
  CHECK_FALSE(diverged(shard, 2, 24));  // Within epoch 2.
  CHECK(diverged(shard, 2, 30));
  CHECK_FALSE(diverged(shard, 3, 500));  // The current epoch: any length.
  CHECK(diverged(shard, 4, 30));         // An epoch the cluster never had.
  CHECK(diverged(shard, 0, 3));          // A standalone store's own batches.
}

TEST_CASE("the shard record round-trips through JSON and rejects what it cannot read",
          "[cluster][roles]") {
  ShardState shard = shardOf("b2", 5, {"b2", "b1"}, {{4, 12}, {5, 30}});
  ShardState back = ShardState::fromJson(shard.toJson(), 9);
  CHECK(back.leader == "b2");
  CHECK(back.epoch == 5);
  CHECK(back.inSync == shard.inSync);
  REQUIRE(back.epochs.size() == 2);
  CHECK(back.epochs[1].firstSeq == 30);
  CHECK(back.modRevision == 9);
  CHECK_THROWS(ShardState::fromJson("not json", 1));
  CHECK_THROWS(ShardState::fromJson(R"({"leader": 3})", 1));
}

}  // namespace
}  // namespace sluice::cluster
