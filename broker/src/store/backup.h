#pragma once

// An online, consistent, compacted copy of the whole store (an LMDB data.mdb file), streamed
// through a pipe: `mdb_env_copyfd2(MDB_CP_COMPACT)` runs on its own thread and writes into the
// pipe; the caller drains the read end (on the KJ thread, with async I/O). A full pipe blocks
// the copy thread, so a slow reader slows the copy down and memory stays bounded.
//
// The copy holds one LMDB read transaction from start to end: it is the store as of start(),
// the writer is never blocked, and pages freed meanwhile are reused only after the copy ends.

#include <memory>
#include <thread>

#include <kj/async.h>

#include "common/status.h"
#include "core/storage.h"
#include "store/store.h"

namespace sluice::store {

// Thread: created and destroyed on one thread with a KJ event loop (the caller's); the copy
// runs on its own thread.
class CompactCopy final : public core::BackupCopy {
 public:
  // Starts the copy of `env`, which must outlive this object.
  // Errors: kStorageFailed (no pipe or thread could be created).
  static Result<std::unique_ptr<CompactCopy>> start(const Env& env);
  // Closes the read end if it is still held here (the copy then stops with EPIPE) and joins
  // the copy thread. A caller that took the read end must close it before destroying this.
  ~CompactCopy() override;
  CompactCopy(const CompactCopy&) = delete;
  CompactCopy& operator=(const CompactCopy&) = delete;

  // The pipe's read end (non-blocking, close-on-exec). The caller owns it from here on. It
  // reaches EOF once the copy thread has finished.
  int takeReadFd() override;
  // Resolves on the starting thread's event loop once the copy thread has finished: ok, or
  // kStorageFailed naming the LMDB error. Call at most once.
  kj::Promise<Status> finished() override;

 private:
  CompactCopy() = default;
  void run(const Env& env, int writeFd);

  int readFd_ = -1;
  kj::Promise<Status> finished_ = nullptr;
  kj::Own<kj::CrossThreadPromiseFulfiller<Status>> fulfiller_;
  std::thread thread_;
};

}  // namespace sluice::store
