#pragma once

// Replication of a broker's write log (schemas/cluster.capnp; the rules are in README.md here).
//
// Leader side: `ReplicationHub` knows each follower's position and the in-sync set, serves
// pulls (`LogSourceService`) and holds every commit's answer until the in-sync followers have
// it (`ReplicatedStore`, the core::Store the broker's logic writes through). Follower side:
// `Follower` pulls, applies the batches through the store's writer in order, and reconnects
// when the leader goes away. Thread: kj (the event loop each was made on).

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>
#include <kj/async.h>
#include <kj/time.h>

#include "cluster/member.h"
#include "core/cluster_view.h"
#include "core/storage.h"
#include "store/store.h"

namespace sluice::cluster {

// Checks a cluster or broker id (1 to 64 of [A-Za-z0-9._-]); the problem, or empty.
std::string problemWithId(const std::string& id, const char* what);

struct LeaderOptions {
  std::string clusterId;
  uint64_t epoch = 0;
  // Members a write must reach before it is acknowledged, the leader included. Below it,
  // commits wait for a follower to catch up and join the in-sync set.
  uint32_t minInsync = 1;
  // A follower not caught up for this long (silent, or falling behind) leaves the in-sync set;
  // one that catches up joins it again.
  kj::Duration replicaTimeout = 5 * kj::SECONDS;
  // With a control plane (cluster/member.h). leaderId and initialInSync: this broker and the
  // followers the record holds in sync (each is waited for until it pulls or times out).
  // persistInSync writes a new in-sync set (this broker first) by compare-and-swap and answers
  // whether it was written (false: this broker no longer leads); a follower leaves the set
  // here only after it left it there. mayAcknowledge is false while the lease may have
  // expired. Null: the set is kept here only, and acknowledgements are always allowed.
  std::string leaderId;
  std::vector<std::string> initialInSync;
  std::function<kj::Promise<bool>(std::vector<std::string>)> persistInSync;
  std::function<bool()> mayAcknowledge;
  // False for a follower id that is not a live member of the cluster (its pulls are refused,
  // so it never counts as in sync). Null: any id.
  std::function<bool(const std::string&)> isMember;
};

class ReplicationHub {
 public:
  ReplicationHub(store::Env& env, kj::Timer& timer, LeaderOptions options);
  ~ReplicationHub();

  const LeaderOptions& options() const { return options_; }
  // A commit holding batches up to `seq` is durable here: wakes the pulls waiting for it.
  void committed(uint64_t seq);
  uint64_t lastCommitted() const { return lastCommitted_; }
  // Resolves once every in-sync follower holds `seq` and the in-sync set (the leader included)
  // has at least minInsync members.
  kj::Promise<void> replicated(uint64_t seq);

  struct PullAnswer {
    std::vector<kj::Array<capnp::word>> batches;
    uint64_t lastSeq = 0;
  };
  // A follower's pull (validated by the caller): records that it holds everything before
  // `from`, then answers with what follows, waiting up to `wait` for a commit when nothing
  // does. Errors: kInvalidArgument when `from` is outside the kept log (message says which
  // side), kStorageFailed when the log cannot be read.
  kj::Promise<Result<PullAnswer>> pull(const std::string& follower, uint64_t from,
                                       kj::Duration wait, size_t maxBytes);

  size_t inSyncCount() const;  // The leader included.
  // The followers that have pulled or are expected, by id: their position and whether they
  // are in sync (addresses and liveness are the control plane's, not filled in here).
  std::vector<core::ReplicaView> followers() const;
  // kNotEnoughReplicas while fewer than minInsync members are in sync or acknowledgements are
  // not allowed (the lease); ok otherwise.
  Status admits() const;
  // Resolves when persistInSync answers false: another broker leads now.
  kj::Promise<void> deposed() { return deposed_.addBranch(); }

 private:
  struct Follower {
    uint64_t acked = 0;
    uint64_t shippedUpTo = 0;  // lastCommitted when it was last answered.
    // The last pull at which it held all it had been shipped.
    kj::TimePoint caughtUp = kj::origin<kj::TimePoint>();
    bool inSync = false;
    bool leaving = false;  // Timed out; still waited for until the record drops it.
    bool waiting = false;  // A pull of it waits at the log's end: it is caught up meanwhile.
  };
  struct Waiter {
    uint64_t seq = 0;
    kj::Own<kj::PromiseFulfiller<void>> fulfiller;
  };
  void settle();  // Answers the waiters whose batches are replicated now.
  bool replicatedUpTo(uint64_t seq) const;
  kj::Promise<void> watchLag();
  void persist();  // Writes the in-sync set to the control plane when it changed.
  std::vector<std::string> desiredInSync() const;
  Result<PullAnswer> read(uint64_t from, size_t maxBytes) const;

  store::Env& env_;
  kj::Timer& timer_;
  LeaderOptions options_;
  uint64_t lastCommitted_ = 0;
  std::map<std::string, Follower> followers_;
  std::vector<Waiter> waiters_;  // In seq order.
  kj::Own<kj::PromiseFulfiller<void>> newCommit_;
  kj::ForkedPromise<void> nextCommit_;
  kj::Promise<void> lagTask_;
  std::vector<std::string> persisted_;  // The set the control plane holds.
  bool persisting_ = false;
  kj::Own<kj::PromiseFulfiller<void>> deposedFulfiller_;
  kj::ForkedPromise<void> deposed_;
  kj::Promise<void> persistTask_ = nullptr;
  // Last, so destroyed first: the pulls and replication waits handed out (held by RPC
  // connections, which may outlive the hub by a turn of the loop) are cancelled while the
  // hub is whole, and never touch it afterwards.
  kj::Canceler handedOut_;
};

// The cluster as its leader sees it, for `sluice cluster status` and `topics describe`: the
// shard record, the live members (alive; null for static roles, where a follower counts as
// alive while it keeps caught up) and the hub's view of each follower. (Here, not in member.h:
// a program that uses only the membership, like the cluster tests, need not link the hub.)
core::ClusterView describeCluster(const ReplicationHub& hub, const ShardState& shard,
                                  const std::map<std::string, BrokerInfo>* alive);

// Serves the hub's LogSource (schemas/cluster.capnp) to followers on a replication address.
class LogServer {
 public:
  LogServer(ReplicationHub& hub, kj::Network& network);
  ~LogServer();
  // Binds `address` ("host:port"; port 0 picks one) and starts accepting; resolves to the port.
  kj::Promise<uint> listen(const std::string& address);

 private:
  kj::Network& network_;
  kj::Own<capnp::TwoPartyServer> server_;
  kj::Own<kj::ConnectionReceiver> receiver_;
  kj::Promise<void> accepting_ = nullptr;
};

// core::Store over the LMDB store that answers a commit only once it is replicated.
class ReplicatedStore final : public core::Store {
 public:
  ReplicatedStore(core::Store& inner, ReplicationHub& hub);
  ~ReplicatedStore() noexcept override;
  core::StoredState load() override { return inner_.load(); }
  std::unique_ptr<core::StoreSnapshot> snapshot() override { return inner_.snapshot(); }
  kj::Promise<Result<uint64_t>> commit(core::WriteBatch batch) override;
  void commitDetached(core::WriteBatch batch, const char* what) override;
  uint64_t usedBytes() const override { return inner_.usedBytes(); }
  uint64_t publishLimitBytes() const override { return inner_.publishLimitBytes(); }
  uint64_t maxStorageBytes() const override { return inner_.maxStorageBytes(); }
  uint64_t estimateAppendBytes(const std::vector<MessageData>& messages) const override {
    return inner_.estimateAppendBytes(messages);
  }
  std::optional<std::string> failure() const override { return inner_.failure(); }
  Status admitWrite() const override;
  core::StoreStats stats() const override { return inner_.stats(); }
  Result<std::unique_ptr<core::BackupCopy>> backup() override { return inner_.backup(); }

 private:
  class Detached;
  core::Store& inner_;
  ReplicationHub& hub_;
  kj::Own<kj::TaskSet> detached_;
  kj::Own<kj::TaskSet::ErrorHandler> errors_;
  kj::Canceler handedOut_;  // Last: commits handed out never reach this store once it is gone.
};

struct FollowerOptions {
  std::string leader;  // The leader's replication address, HOST:PORT.
  std::string clusterId;
  std::string brokerId;
  uint64_t epoch = 0;
  uint32_t waitMs = 1000;        // Long-poll of each pull.
  uint32_t maxBytes = 4u << 20;  // Per pull.
  kj::Duration retryMin = 100 * kj::MILLISECONDS;
  kj::Duration retryMax = 2 * kj::SECONDS;
};

class Follower {
 public:
  Follower(kj::Network& network, kj::Timer& timer, store::Env& env, store::Writer& writer,
           FollowerOptions options);
  ~Follower();
  // Pulls and applies until dropped; reconnects after every failure.
  kj::Promise<void> run();
  uint64_t appliedSeq() const { return applied_; }
  // Resolves with the leader's message once it refused a pull as outside its window: this
  // store must catch up from a snapshot (or it diverged). Call once.
  kj::Promise<std::string> needsSnapshot();

 private:
  struct Connection;
  kj::Promise<void> session();
  kj::Promise<void> pullLoop(Connection& connection);

  kj::Network& network_;
  kj::Timer& timer_;
  store::Writer& writer_;
  FollowerOptions options_;
  uint64_t applied_ = 0;
  kj::Duration retry_;
  std::string lastProblem_;
  kj::Own<kj::PromiseFulfiller<std::string>> needsSnapshot_;
};

}  // namespace sluice::cluster
