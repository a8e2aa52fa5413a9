#include "cluster/member.h"

#include <algorithm>

#include <kj/debug.h>
#include <nlohmann/json.hpp>

#include "common/log.h"

namespace sluice::cluster {
namespace {

using Json = nlohmann::json;

// Epoch starts the record keeps; a store older than all of them catches up from a snapshot.
constexpr size_t kEpochHistory = 64;

auto log() {
  return namedLog("cluster");
}

bool contains(const std::vector<std::string>& ids, const std::string& id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

}  // namespace

std::string ShardState::toJson() const {
  Json epochList = Json::array();
  for (const EpochStart& start : epochs)
    epochList.push_back(Json::array({start.epoch, start.firstSeq}));
  Json out{{"leader", leader}, {"epoch", epoch}, {"in_sync", inSync}, {"epochs", epochList}};
  return out.dump();
}

ShardState ShardState::fromJson(const std::string& text, int64_t modRevision) {
  Json in = Json::parse(text, nullptr, false);
  ShardState out;
  out.modRevision = modRevision;
  try {
    KJ_REQUIRE(in.is_object(), "the shard record is not a JSON object");
    out.leader = in.at("leader").get<std::string>();
    out.epoch = in.at("epoch").get<uint64_t>();
    out.inSync = in.at("in_sync").get<std::vector<std::string>>();
    for (const Json& start : in.at("epochs"))
      out.epochs.push_back(EpochStart{start.at(0).get<uint64_t>(), start.at(1).get<uint64_t>()});
  } catch (const Json::exception& e) {
    KJ_FAIL_REQUIRE("the shard record does not parse", e.what(), text);
  }
  return out;
}

Role decideRole(const ShardState& shard, const std::map<std::string, BrokerInfo>& alive,
                const std::string& me, uint64_t lastSeq) {
  Role role;
  auto lead = [&](std::vector<std::string> inSync) {
    role.kind = Role::Kind::kLead;
    role.next = shard;
    role.next.leader = me;
    role.next.epoch = shard.epoch + 1;
    inSync.erase(std::remove(inSync.begin(), inSync.end(), me), inSync.end());
    inSync.insert(inSync.begin(), me);  // The leader first, as the record always has it.
    role.next.inSync = std::move(inSync);
    role.next.epochs.push_back(EpochStart{role.next.epoch, lastSeq + 1});
    if (role.next.epochs.size() > kEpochHistory) role.next.epochs.erase(role.next.epochs.begin());
    return role;
  };
  if (shard.modRevision == 0) return lead({me});  // The first broker of a new cluster.
  // Leading before a restart: lead again, in a new epoch (its log holds all it ever shipped).
  if (shard.leader == me) return lead(shard.inSync);
  if (auto leader = alive.find(shard.leader); leader != alive.end()) {
    role.kind = Role::Kind::kFollow;
    role.leader = leader->second;
    return role;
  }
  // The leader's lease has expired. Any member of the in-sync set holds every acknowledged
  // write and may take over; the others wait for it.
  if (contains(shard.inSync, me)) {
    std::vector<std::string> rest;
    for (const std::string& id : shard.inSync)
      if (id != shard.leader) rest.push_back(id);
    return lead(rest);
  }
  role.why = "leader " + shard.leader + " is gone and this broker is not in the in-sync set";
  return role;
}

bool diverged(const ShardState& shard, uint64_t storeEpoch, uint64_t lastSeq) {
  if (shard.epochs.empty()) return false;
  if (storeEpoch > shard.epoch) return true;  // Written by an epoch the cluster never had.
  for (const EpochStart& start : shard.epochs) {
    if (start.epoch > storeEpoch) return lastSeq >= start.firstSeq;
  }
  return false;  // The store is in the current epoch.
}

// ---- ClusterMember ----

ClusterMember::ClusterMember(kj::Timer& timer, kj::Network& network, MemberOptions options)
    : timer_(timer),
      options_(std::move(options)),
      etcd_(timer, network, options_.etcd, options_.requestTimeout),
      renewedAt_(kj::origin<kj::TimePoint>()) {}

ClusterMember::~ClusterMember() = default;

std::string ClusterMember::prefix() const {
  return "/sluice/" + options_.clusterId + "/";
}
std::string ClusterMember::brokerKey(const std::string& id) const {
  return prefix() + "brokers/" + id;
}
std::string ClusterMember::registration() const {
  Json info{{"rpc", options_.rpcAddress}, {"replication", options_.replicationAddress}};
  if (!options_.tlsAddress.empty()) info["tls"] = options_.tlsAddress;
  return info.dump();
}

std::string ClusterMember::shardKey() const {
  return prefix() + "shard";
}

kj::Promise<void> ClusterMember::join() {
  kj::TimePoint sentAt = timer_.now();
  return etcd_.grantLease(options_.leaseTtlSeconds)
      .then([this, sentAt](Lease lease) {
        lease_ = lease.id;
        renewedAt_ = sentAt;
        return etcd_.put(brokerKey(options_.brokerId), registration(), lease_);
      })
      .then([this](int64_t revision) {
        log()->info("cluster: joined cluster={} broker_id={} lease_ttl={}s", options_.clusterId,
                    options_.brokerId, options_.leaseTtlSeconds);
        renewing_ = renew().eagerlyEvaluate(nullptr);
        watching_ = watch(revision + 1).eagerlyEvaluate(nullptr);
      });
}

kj::Promise<void> ClusterMember::leave() {
  renewing_ = nullptr;
  watching_ = nullptr;
  if (lease_ == 0) return kj::READY_NOW;
  return etcd_.revokeLease(lease_).catch_([](kj::Exception&&) {});
}

kj::Promise<void> ClusterMember::renew() {
  kj::Duration period = options_.leaseTtlSeconds * kj::SECONDS / 4;
  return timer_.afterDelay(period).then([this]() {
    kj::TimePoint sentAt = timer_.now();
    return etcd_.keepAlive(lease_)
        .then(
            [this, sentAt](int64_t) -> kj::Promise<void> {
              renewedAt_ = sentAt;
              return kj::READY_NOW;
            },
            [this](kj::Exception&& e) -> kj::Promise<void> {
              if (e.getType() != kj::Exception::Type::FAILED) {
                log()->warn("cluster: cannot renew the lease: {}", e.getDescription().cStr());
                return kj::READY_NOW;
              }
              // Expired: the cluster has counted this broker out. Join again as new.
              log()->warn("cluster: the lease expired; joining again");
              kj::TimePoint again = timer_.now();
              return etcd_.grantLease(options_.leaseTtlSeconds)
                  .then([this, again](Lease lease) {
                    lease_ = lease.id;
                    renewedAt_ = again;
                    return etcd_.put(brokerKey(options_.brokerId), registration(), lease_);
                  })
                  .then([](int64_t) {}, [](kj::Exception&&) {});
            })
        .then([this]() { return renew(); });
  });
}

bool ClusterMember::leaseValid() const {
  kj::Duration ttl = options_.leaseTtlSeconds * kj::SECONDS;
  kj::Duration margin = std::min<kj::Duration>(ttl / 4, 500 * kj::MILLISECONDS);
  return timer_.now() - renewedAt_ < ttl - margin;
}

kj::Promise<void> ClusterMember::watch(int64_t fromRevision) {
  return etcd_
      .watchPrefix(prefix(), fromRevision,
                   [this](const std::vector<WatchEvent>&) {
                     auto waiting = std::move(waiting_);
                     waiting_.clear();
                     for (auto& fulfiller : waiting)
                       fulfiller->fulfill();
                   })
      .then([]() {}, [](kj::Exception&&) {})
      .then([this]() { return timer_.afterDelay(200 * kj::MILLISECONDS); })
      .then([this]() { return watch(0); });  // Missed changes are read again by the callers.
}

kj::Promise<void> ClusterMember::changed(kj::Duration atMost) {
  auto paf = kj::newPromiseAndFulfiller<void>();
  waiting_.push_back(kj::mv(paf.fulfiller));
  return paf.promise.exclusiveJoin(timer_.afterDelay(atMost));
}

kj::Promise<ShardState> ClusterMember::shard() {
  return etcd_.get(shardKey()).then([](RangeResult range) {
    if (range.kvs.empty()) return ShardState{};
    return ShardState::fromJson(range.kvs[0].value, range.kvs[0].modRevision);
  });
}

kj::Promise<std::map<std::string, BrokerInfo>> ClusterMember::brokers() {
  std::string brokersPrefix = prefix() + "brokers/";
  return etcd_.getPrefix(brokersPrefix).then([brokersPrefix](RangeResult range) {
    std::map<std::string, BrokerInfo> out;
    for (const KeyValue& kv : range.kvs) {
      Json info = Json::parse(kv.value, nullptr, false);
      if (!info.is_object()) continue;
      BrokerInfo broker;
      broker.id = kv.key.substr(brokersPrefix.size());
      broker.rpc = info.value("rpc", "");
      broker.replication = info.value("replication", "");
      broker.tls = info.value("tls", "");
      out[broker.id] = broker;
    }
    return out;
  });
}

kj::Promise<int64_t> ClusterMember::swapShard(const ShardState& expected, const ShardState& next) {
  Compare unchanged = expected.modRevision == 0
                          ? Compare::absent(shardKey())
                          : Compare::modRevisionIs(shardKey(), expected.modRevision);
  return etcd_.txn({unchanged}, {TxnOp::put(shardKey(), next.toJson())}).then([](TxnResult result) {
    return result.succeeded ? result.revision : int64_t{0};
  });
}

}  // namespace sluice::cluster
