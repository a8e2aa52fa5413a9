#pragma once

// The write log: committed batches by sequence number, in the `wlog` database, within a
// window of EnvOptions::logWindowBytes and, when set, EnvOptions::logMaxAgeMs. An append's entry
// holds no message bodies: they are read back from `messages`, or from `wlogSpill` where an op
// removed them while the entry was kept. `wlogFloor` holds, per topic, the first offset whose
// append is still in the log. Internal to store/. Thread: the transaction's.

#include <lmdb.h>

#include <cstdint>
#include <vector>

#include "common/status.h"
#include "core/write_ops.h"

namespace sluice::store {

class Env;

uint64_t lastLoggedSeq(MDB_txn* txn, const Env& env);  // 0 for a new store
void setLastLoggedSeq(MDB_txn* txn, const Env& env, uint64_t seq);
// Records batch `seq`, committed at loggedAtMs (a no-op without a window).
void logBatch(MDB_txn* txn, const Env& env, uint64_t seq, const core::WriteBatch& batch,
              int64_t loggedAtMs);
// Drops the oldest entries (and their spilled bodies) until the log fits its window: its size,
// and, with a maximum age, no entry logged at or before nowMs - logMaxAgeMs. The age is
// checked at each commit, so an idle broker keeps its last entries until the next one.
void trimLog(MDB_txn* txn, const Env& env, int64_t nowMs);
// At open: without a window, empties the log; with one, starts it where the store is now if
// it holds nothing (bodies appended before are not covered).
void openLog(MDB_txn* txn, const Env& env);
// Up to `max` batches from `from`, bodies included. Errors: kInvalidArgument.
Result<std::vector<core::LoggedBatch>> readLogRange(MDB_txn* txn, const Env& env, uint64_t from,
                                                    size_t max);

}  // namespace sluice::store
