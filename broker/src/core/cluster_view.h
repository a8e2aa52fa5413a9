#pragma once

// What a cluster's leader reports about replication (cluster/README.md), in plain values the
// broker's views, RPC and HTTP answers are built from.

#include <cstdint>
#include <string>
#include <vector>

namespace sluice::core {

// One broker of a cluster as its leader sees it.
struct ReplicaView {
  std::string id;
  std::string rpcAddress, replicationAddress;  // Empty when not known (a static follower).
  std::string tlsAddress;                      // Empty: not known, or no TLS listener.
  bool alive = false;          // It holds a live membership (or, statically, it pulls).
  bool inSync = false;         // A write is acknowledged only once it holds it.
  uint64_t ackedSeq = 0;       // The last batch it holds (the leader: its last commit).
  int64_t caughtUpAgoMs = -1;  // Since it last held all it had been sent; -1: never.
};

// The replication state a leader reports (cluster/README.md). clusterId is empty for a
// standalone broker.
struct ClusterView {
  std::string clusterId, leader;  // The leader: the broker that answers.
  uint64_t epoch = 0;
  uint32_t minInsync = 1;
  uint64_t lastSeq = 0;  // The leader's last committed batch.
  std::vector<std::string> inSync;
  std::vector<ReplicaView> brokers;  // The leader first, then the others by id.
};

}  // namespace sluice::core
