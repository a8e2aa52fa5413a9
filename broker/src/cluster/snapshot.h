#pragma once

// Catch-up from a snapshot: a follower whose store diverged from the shard's history, or
// that is older than its leader's kept write log, copies the leader's whole store (the online,
// compacted copy of Admin.backup, over the leader's client RPC address) and replaces its own
// with it while its store is closed. Thread: kj.

#include <cstdint>
#include <string>

#include <kj/async-io.h>

namespace sluice::cluster {

// Streams the leader's store into `path` (created or truncated, mode 0600) and fsyncs it;
// resolves with its size. Rejects (kj::Exception) when the leader cannot be reached, refuses,
// or the copy arrives incomplete.
kj::Promise<uint64_t> fetchSnapshot(kj::Network& network, const std::string& rpcAddress,
                                    const std::string& path);

// Makes the fetched snapshot the store of `dataDir` (rename over data.mdb, directory fsync'd).
// The store must be closed. Throws kj::Exception on failure.
void installSnapshot(const std::string& snapshotPath, const std::string& dataDir);

}  // namespace sluice::cluster
