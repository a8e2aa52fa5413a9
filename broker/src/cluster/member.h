#pragma once

// A broker's membership of a cluster coordinated by etcd (cluster/README.md has the rules):
// its key on a lease, the shard record (leader, epoch, in-sync set, where each epoch began)
// changed only by compare-and-swap, the decision of what this broker is (leader, follower of
// whom, or waiting), and the lease deadline past which a leader must not acknowledge.
// Thread: kj.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <kj/async-io.h>
#include <kj/time.h>

#include "cluster/etcd.h"

namespace sluice::cluster {

struct MemberOptions {
  std::vector<std::string> etcd;  // Client endpoints, host:port.
  std::string clusterId;
  std::string brokerId;
  std::string rpcAddress;          // Where clients reach this broker when it leads.
  std::string replicationAddress;  // Where followers reach it when it leads.
  std::string tlsAddress;          // Where TLS clients reach it; empty: no TLS listener.
  int64_t leaseTtlSeconds = 2;
  kj::Duration requestTimeout = 1 * kj::SECONDS;
};

struct BrokerInfo {
  std::string id;
  std::string rpc;
  std::string replication;
  std::string tls = {};  // Empty: no TLS listener. (`= {}`: {id, rpc, replication} stays valid.)
};

struct EpochStart {
  uint64_t epoch = 0;
  uint64_t firstSeq = 0;  // The sequence number of the epoch's BeginEpochOp.
};

// The shard record: one key, every change a compare-and-swap on its mod revision.
struct ShardState {
  std::string leader;
  uint64_t epoch = 0;
  std::vector<std::string> inSync;  // The leader included.
  std::vector<EpochStart> epochs;   // Oldest first; the last is `epoch`.
  int64_t modRevision = 0;          // 0: no record yet.

  std::string toJson() const;
  // Errors: an exception (FAILED) naming what is wrong.
  static ShardState fromJson(const std::string& text, int64_t modRevision);
};

// What a broker is to be, given the cluster's state.
struct Role {
  enum class Kind { kLead, kFollow, kWait };
  Kind kind = Kind::kWait;
  ShardState next;    // kLead: the record to write (by CAS over the current one).
  BrokerInfo leader;  // kFollow.
  std::string why;    // kWait: the reason, for the log.
};
Role decideRole(const ShardState& shard, const std::map<std::string, BrokerInfo>& alive,
                const std::string& me, uint64_t lastSeq);

// Whether a store whose last batch is `lastSeq`, written in `storeEpoch` (its last
// BeginEpochOp; 0: none), holds batches the shard's history does not: the first epoch after
// storeEpoch began at or before lastSeq.
bool diverged(const ShardState& shard, uint64_t storeEpoch, uint64_t lastSeq);

class ClusterMember {
 public:
  ClusterMember(kj::Timer& timer, kj::Network& network, MemberOptions options);
  ~ClusterMember();

  const MemberOptions& options() const { return options_; }
  // Grants the lease, writes this broker's key on it and starts renewing it and watching the
  // cluster's keys. Fails when etcd cannot be reached.
  kj::Promise<void> join();
  // Revokes the lease (a clean stop: the key goes at once).
  kj::Promise<void> leave();

  kj::Promise<ShardState> shard();
  kj::Promise<std::map<std::string, BrokerInfo>> brokers();
  // Writes `next` if the record is still at `expected`'s revision (0: absent); the written
  // record's revision, or 0 when the record had changed and nothing was written.
  kj::Promise<int64_t> swapShard(const ShardState& expected, const ShardState& next);
  // Resolves at the next change of any key of the cluster (or within `atMost`).
  kj::Promise<void> changed(kj::Duration atMost = 1 * kj::SECONDS);

  // True while the lease surely has not expired in etcd: the last renewal etcd answered was
  // sent less than the TTL minus a margin ago. A leader acknowledges nothing once this is false.
  bool leaseValid() const;

 private:
  kj::Promise<void> renew();
  kj::Promise<void> watch(int64_t fromRevision);
  std::string prefix() const;
  std::string brokerKey(const std::string& id) const;
  std::string shardKey() const;
  std::string registration() const;  // The value of this broker's key: its addresses.

  kj::Timer& timer_;
  MemberOptions options_;
  EtcdClient etcd_;
  int64_t lease_ = 0;
  kj::TimePoint renewedAt_;  // When the last answered renewal was sent.
  kj::Promise<void> renewing_ = nullptr;
  kj::Promise<void> watching_ = nullptr;
  std::vector<kj::Own<kj::PromiseFulfiller<void>>> waiting_;
};

}  // namespace sluice::cluster
