@0xc1a55e3d52f0b7a1;
# Replication between brokers: a shard's leader serves its write log on its replication address,
# and each follower pulls it, applies the batches in order (they are deterministic) and, by its
# next pull, tells the leader how far it has committed and fsync'd. The leader acknowledges a
# write only once every member of the in-sync set has it.
#
# Compatibility: fields and methods are only ever added, never renumbered or removed.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("sluice::wire");

enum ReplicationError {
  invalidArgument @0;  # A malformed request (empty or invalid broker id, from = 0).
  wrongCluster @1;     # The follower belongs to another cluster; nothing changed.
  staleEpoch @2;       # The request's epoch is not the leader's: the follower's view of who
                       # leads is out of date (or the leader's). Nothing changed.
  outsideWindow @3;    # `from` is older than the leader's kept write log (the follower must
                       # catch up from a snapshot) or past its end (the follower holds batches
                       # the leader never wrote: it diverged).
  notLeader @4;        # This broker does not lead the shard (any more).
  storageFailed @5;    # The leader could not read its log.
  notMember @6;        # The follower is not a live member of the cluster (no broker key of
                       # its own in the control plane); nothing changed.
}

struct ShippedBatches {
  epoch @0 :UInt64;      # The leader's epoch.
  lastSeq @1 :UInt64;    # The leader's last committed sequence number.
  batches @2 :List(Data);
  # Consecutive write batches from `from`, each in the write log's shipped form (schemas/
  # records.capnp WriteBatch, message bodies inline). Empty when nothing new was committed
  # within the wait.
}

struct PullResult {
  union {
    batches @0 :ShippedBatches;
    error :group {
      code @1 :ReplicationError;
      message @2 :Text;
    }
  }
}

interface LogSource {
  pull @0 (clusterId :Text, follower :Text, epoch :UInt64, from :UInt64, waitMs :UInt32,
           maxBytes :UInt32) -> (result :PullResult);
  # Batches from sequence number `from` on, up to about maxBytes (at least one batch). `from`
  # also says that the follower has committed and fsync'd every batch before it. When nothing
  # at or after `from` is committed yet, waits up to waitMs (at most 5,000) for it.
}
