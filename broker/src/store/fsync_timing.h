#pragma once

// Times every fdatasync() and fsync() this process makes: LMDB's flush of each commit's pages,
// the sync of the opt-in async mode, the final sync at shutdown. LMDB makes those calls inside
// mdb_txn_commit, out of our reach, so fsync_timing.cpp defines the two functions in the
// broker's executable: the dynamic linker binds liblmdb's calls to them, and they time the libc
// call found with dlsym(RTLD_NEXT). LMDB writes its meta page with O_DSYNC, which is not a
// separate call: that second flush shows in the commit latency, not here.
// Thread: any; the histogram takes samples from several threads.

#include "common/histogram.h"

namespace sluice::store {

// Seconds per fdatasync()/fsync() call since the process started.
const Histogram& fsyncSeconds();

}  // namespace sluice::store
