#include "store/backup.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>

namespace sluice::store {
namespace {

// Larger than the default 64 KiB so that the copy thread runs ahead of the reader by a
// useful amount; best effort (capped by /proc/sys/fs/pipe-max-size).
constexpr int kPipeBytes = 1 << 20;

}  // namespace

Result<std::unique_ptr<CompactCopy>> CompactCopy::start(const Env& env) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return Status(Code::kStorageFailed,
                  std::string("backup: cannot create a pipe: ") + std::strerror(errno));
  }
  (void)::fcntl(fds[1], F_SETPIPE_SZ, kPipeBytes);
  // The read end is for async I/O; the write end stays blocking: a full pipe parks the copy.
  if (::fcntl(fds[0], F_SETFL, O_NONBLOCK) != 0) {
    int err = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    return Status(Code::kStorageFailed,
                  std::string("backup: cannot configure the pipe: ") + std::strerror(err));
  }
  std::unique_ptr<CompactCopy> copy(new CompactCopy());
  copy->readFd_ = fds[0];
  auto paf = kj::newPromiseAndCrossThreadFulfiller<Status>();
  copy->finished_ = kj::mv(paf.promise);
  copy->fulfiller_ = kj::mv(paf.fulfiller);
  try {
    copy->thread_ =
        std::thread([raw = copy.get(), &env, writeFd = fds[1]] { raw->run(env, writeFd); });
  } catch (const std::system_error& e) {
    ::close(fds[1]);
    return Status(Code::kStorageFailed, std::string("backup: cannot start a thread: ") + e.what());
  }
  return Result<std::unique_ptr<CompactCopy>>(std::move(copy));
}

// Thread: the copy's own. Owns writeFd; closing it is the reader's EOF.
void CompactCopy::run(const Env& env, int writeFd) {
  Status status;
  try {
    // LMDB blocks SIGPIPE in its writer thread and turns a closed reader into EPIPE.
    int rc = mdb_env_copyfd2(env.raw(), writeFd, MDB_CP_COMPACT);
    if (rc != 0) {
      status = Status(Code::kStorageFailed,
                      std::string("backup: mdb_env_copyfd2 failed: ") + mdb_strerror(rc));
    }
  } catch (...) {
    status = Status(Code::kStorageFailed, "backup: unexpected exception in the copy thread");
  }
  ::close(writeFd);
  fulfiller_->fulfill(kj::mv(status));
}

CompactCopy::~CompactCopy() {
  if (readFd_ >= 0) ::close(readFd_);
  if (thread_.joinable()) thread_.join();
}

int CompactCopy::takeReadFd() {
  int fd = readFd_;
  readFd_ = -1;
  return fd;
}

kj::Promise<Status> CompactCopy::finished() {
  return kj::mv(finished_);
}

}  // namespace sluice::store
