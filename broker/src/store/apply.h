#pragma once

// Applies write batches to an LMDB write transaction: the one place where durable state
// changes. Deterministic: the result depends only on the store's state and the batch (no
// clock, no randomness, no setting but the write-log window). Internal to store/.

#include <lmdb.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "core/write_ops.h"

namespace sluice::store {

class Env;

// A batch that does not fit the store's state (an append at the wrong offset, a topic id that
// does not match its name): the store and the batch's author disagree. The writer stops
// accepting writes rather than guess.
class ApplyError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

// Applies every op of `batch`, in order, inside `txn`. Throws LmdbError (LMDB failed) or
// ApplyError; the caller then aborts the transaction. With a write-log window, message bodies
// that an op removes are kept in `wlogSpill` while the log still holds their append.
void applyBatch(MDB_txn* txn, const Env& env, const core::WriteBatch& batch);

}  // namespace sluice::store
