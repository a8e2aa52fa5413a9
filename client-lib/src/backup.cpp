// Admin::backup: receives the broker's compacted store copy as a stream of chunks and writes
// it to a local file, atomically (temp file, fsync, rename, fsync of the directory).

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <string>
#include <utility>

#include <kj/debug.h>

#include "connection.h"
#include "convert.h"

namespace sluice {
namespace {

Error invalid(std::string message) {
  return Error{ErrorCode::kInvalidArgument, std::move(message)};
}

std::string errnoText(int err) {
  return std::strerror(err);
}

// The temporary file shared by the caller's thread and the I/O thread. Preferably an
// unnamed O_TMPFILE in the target's directory, so that a process killed mid-backup leaves
// nothing behind; it gets the name `tempPath` only once complete and synced. Where the
// filesystem has no O_TMPFILE, `tempPath` is a named file from the start.
// Thread: any; the fields under mu_ are guarded by it.
class BackupFile {
 public:
  BackupFile(int fd, std::string tempPath, bool unnamed)
      : fd_(fd), tempPath_(std::move(tempPath)), unnamed_(unnamed) {}
  ~BackupFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  BackupFile(const BackupFile&) = delete;
  BackupFile& operator=(const BackupFile&) = delete;

  // Thread: kj. Appends `chunk`; false (with error() set) when the write failed or the caller
  // gave up.
  bool append(kj::ArrayPtr<const kj::byte> chunk) {
    std::lock_guard<std::mutex> lock(mu_);
    if (fd_ < 0 || !error_.empty()) return false;
    const kj::byte* at = chunk.begin();
    size_t left = chunk.size();
    while (left > 0) {
      ssize_t n = ::write(fd_, at, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        int err = n < 0 ? errno : EIO;
        error_ = "cannot write " + tempPath_ + ": " + errnoText(err);
        return false;
      }
      at += n;
      left -= static_cast<size_t>(n);
    }
    written_ += chunk.size();
    received_.fetch_add(chunk.size(), std::memory_order_relaxed);
    return true;
  }

  // Thread: caller. Stops further writes. When `keep`: fsyncs the file, gives it the name
  // tempPath (if unnamed) and closes it; returns the first error (a write's, the fsync's, the
  // link's), or empty. Otherwise, or on an error, closes it and removes tempPath if it exists.
  std::string finish(bool keep) {
    std::lock_guard<std::mutex> lock(mu_);
    if (fd_ >= 0) {
      if (keep && error_.empty() && ::fsync(fd_) != 0) {
        int err = errno;
        error_ = "cannot fsync " + tempPath_ + ": " + errnoText(err);
      }
      if (keep && error_.empty() && unnamed_) {
        std::string self = "/proc/self/fd/" + std::to_string(fd_);
        if (::linkat(AT_FDCWD, self.c_str(), AT_FDCWD, tempPath_.c_str(), AT_SYMLINK_FOLLOW) != 0) {
          int err = errno;
          error_ = "cannot name " + tempPath_ + ": " + errnoText(err);
        } else {
          unnamed_ = false;
        }
      }
      if (::close(fd_) != 0 && keep && error_.empty()) {
        int err = errno;
        error_ = "cannot close " + tempPath_ + ": " + errnoText(err);
      }
      fd_ = -1;
    }
    if ((!keep || !error_.empty()) && !unnamed_) ::unlink(tempPath_.c_str());
    return error_;
  }

  uint64_t written() {
    std::lock_guard<std::mutex> lock(mu_);
    return written_;
  }
  // Bytes received so far; read without the lock to see progress while a write runs.
  uint64_t received() const { return received_.load(std::memory_order_relaxed); }
  std::string error() {
    std::lock_guard<std::mutex> lock(mu_);
    return error_;
  }

 private:
  std::mutex mu_;
  int fd_;
  const std::string tempPath_;
  bool unnamed_;  // No directory entry yet (O_TMPFILE).
  std::string error_;
  uint64_t written_ = 0;
  std::atomic<uint64_t> received_{0};
};

// The sink the broker streams to. Thread: kj (the client's I/O thread).
class BackupSinkService final : public wire::BackupSink::Server {
 public:
  explicit BackupSinkService(std::shared_ptr<BackupFile> file) : file_(std::move(file)) {}

 protected:
  kj::Promise<void> write(WriteContext context) override {
    if (!file_->append(context.getParams().getChunk())) {
      // Failing a streaming call makes the broker's next send fail, which stops its copy.
      return KJ_EXCEPTION(FAILED, "backup aborted by the client", file_->error().c_str());
    }
    return kj::READY_NOW;
  }

 private:
  std::shared_ptr<BackupFile> file_;
};

// Opens the temporary file for `target` in `dir`: unnamed (O_TMPFILE) when the filesystem and
// /proc allow naming it later, else a fresh named file. Sets *tempPath to the name it has or
// will get; returns the fd, or -1 with errno set.
int openTempFile(const std::string& dir, const std::string& target, std::string* tempPath,
                 bool* unnamed) {
  namespace fs = std::filesystem;
  std::string pattern =
      (fs::path(dir) / ("." + fs::path(target).filename().string() + ".tmp-XXXXXX")).string();
  if (::access("/proc/self/fd", X_OK) == 0) {
    int fd = ::open(dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
    if (fd >= 0) {
      // A name that is free now, with mkstemp's randomness; linkat fails if it is taken later.
      std::string name = pattern;
      int probe = ::mkostemp(name.data(), O_CLOEXEC);
      if (probe >= 0) {
        ::close(probe);
        ::unlink(name.c_str());
        *tempPath = name;
        *unnamed = true;
        return fd;
      }
      int err = errno;
      ::close(fd);
      errno = err;
      return -1;
    }
    // EOPNOTSUPP or EISDIR: no O_TMPFILE on this filesystem; permission errors recur below.
  }
  *tempPath = pattern;
  *unnamed = false;
  return ::mkostemp(tempPath->data(), O_CLOEXEC);
}

// Syncs the directory so that the rename itself survives a crash.
void syncDirectory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

}  // namespace

Result<uint64_t> Admin::backup(const std::string& path) {
  namespace fs = std::filesystem;
  constexpr const char* kWhat = "backup";
  if (!connection_) {
    return Error{ErrorCode::kDisconnected,
                 "this Admin has no connection (it was default-constructed or moved from)"};
  }
  if (auto problem = connection_->checkMayBlock(kWhat)) return *problem;
  if (path.empty()) return invalid("backup path must not be empty");
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    return invalid("backup path " + path + " is a directory; give the file to write");
  }
  fs::path target(path);
  std::string dir = target.has_parent_path() ? target.parent_path().string() : ".";
  struct stat dirStat {};
  if (::stat(dir.c_str(), &dirStat) != 0) {
    int err = errno;
    return invalid("backup directory " + dir + " does not exist (" + errnoText(err) + ")");
  }
  if (!S_ISDIR(dirStat.st_mode)) return invalid("backup directory " + dir + " is not a directory");
  std::string tempPath;
  bool unnamed = false;
  int fd = openTempFile(dir, path, &tempPath, &unnamed);
  if (fd < 0) {
    int err = errno;
    return invalid("cannot write in backup directory " + dir + ": " + errnoText(err));
  }
  auto file = std::make_shared<BackupFile>(fd, tempPath, unnamed);
  auto discard = [&](Error error) -> Result<uint64_t> {
    file->finish(false);
    return error;
  };

  auto completion = std::make_shared<detail::Completion<uint64_t>>();
  auto future = completion->future();
  bool queued = connection_->post([file, completion](detail::IoState& io) mutable {
    io.track<uint64_t>(kj::evalNow([&]() {
                         auto request = io.admin.backupRequest();
                         request.setSink(kj::heap<BackupSinkService>(file));
                         return request.send().then([](auto&& response) -> Result<uint64_t> {
                           return detail::fromWire(response.getResult());
                         });
                       }),
                       std::move(*completion));
  });
  if (!queued) return discard(detail::disconnectedError());

  // No total limit: a big store takes long. Give up only when nothing arrives for a whole
  // call timeout.
  auto idle = detail::saturatedTimeout(connection_->options().callTimeout);
  uint64_t seen = file->received();
  while (future.wait_for(idle) != std::future_status::ready) {
    uint64_t now = file->received();
    if (now == seen) {
      return discard(Error{ErrorCode::kTimeout,
                           "backup received nothing from the broker for " +
                               std::to_string(connection_->options().callTimeout.count()) +
                               " ms (after " + std::to_string(now) + " bytes)"});
    }
    seen = now;
  }
  Result<uint64_t> sent = future.get();
  if (!sent.ok()) {
    // A local write failure is the cause when the broker saw our sink fail.
    std::string local = file->error();
    if (!local.empty()) return discard(Error{ErrorCode::kInternal, local});
    return discard(sent.error());
  }
  uint64_t written = file->written();
  if (written != sent.value()) {
    return discard(Error{ErrorCode::kInternal, "backup incomplete: the broker sent " +
                                                   std::to_string(sent.value()) + " bytes, " +
                                                   std::to_string(written) + " arrived"});
  }
  std::string problem = file->finish(true);  // Removes the temporary file on failure.
  if (!problem.empty()) return Error{ErrorCode::kInternal, problem};
  if (::rename(tempPath.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tempPath.c_str());
    return Error{ErrorCode::kInternal,
                 "cannot rename " + tempPath + " to " + path + ": " + errnoText(err)};
  }
  syncDirectory(dir);
  return written;
}

}  // namespace sluice
