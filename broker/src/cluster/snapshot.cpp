#include "cluster/snapshot.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>

#include <capnp/rpc-twoparty.h>
#include <kj/debug.h>

#include "common/log.h"
#include "sluice/schemas/rpc.capnp.h"

namespace sluice::cluster {
namespace {

struct File {
  int fd = -1;
  uint64_t written = 0;
  ~File() {
    if (fd >= 0) ::close(fd);
  }
};

// Writes each chunk the leader streams. Thread: kj.
class SnapshotSink final : public wire::BackupSink::Server {
 public:
  explicit SnapshotSink(std::shared_ptr<File> file) : file_(std::move(file)) {}

 protected:
  kj::Promise<void> write(WriteContext context) override {
    auto chunk = context.getParams().getChunk();
    size_t done = 0;
    while (done < chunk.size()) {
      ssize_t n = ::write(file_->fd, chunk.begin() + done, chunk.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) KJ_FAIL_SYSCALL("write(snapshot)", errno);
      done += static_cast<size_t>(n);
    }
    file_->written += done;
    return kj::READY_NOW;
  }

 private:
  std::shared_ptr<File> file_;
};

struct Session {
  kj::Own<kj::AsyncIoStream> stream;
  capnp::TwoPartyClient client;
  explicit Session(kj::Own<kj::AsyncIoStream> s) : stream(kj::mv(s)), client(*stream) {}
};

}  // namespace

kj::Promise<uint64_t> fetchSnapshot(kj::Network& network, const std::string& rpcAddress,
                                    const std::string& path) {
  auto file = std::make_shared<File>();
  file->fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (file->fd < 0) KJ_FAIL_SYSCALL("open(snapshot)", errno, path);
  return network.parseAddress(rpcAddress)
      .then([](kj::Own<kj::NetworkAddress> address) {
        return address->connect().attach(kj::mv(address));
      })
      .then([file](kj::Own<kj::AsyncIoStream> stream) {
        auto session = kj::heap<Session>(kj::mv(stream));
        auto broker = session->client.bootstrap().castAs<wire::Broker>();
        auto admin = broker.adminRequest().send().getAdmin();
        auto request = admin.backupRequest();
        request.setSink(kj::heap<SnapshotSink>(file));
        return request.send()
            .then([file](capnp::Response<wire::Admin::BackupResults> response) {
              auto result = response.getResult();
              if (result.isError()) {
                KJ_FAIL_REQUIRE("the leader refused the snapshot",
                                result.getError().getMessage().cStr());
              }
              KJ_REQUIRE(result.getCount() == file->written, "the snapshot arrived incomplete",
                         result.getCount(), file->written);
              if (::fsync(file->fd) != 0) KJ_FAIL_SYSCALL("fsync(snapshot)", errno);
              return file->written;
            })
            .attach(kj::mv(session));
      });
}

void installSnapshot(const std::string& snapshotPath, const std::string& dataDir) {
  namespace fs = std::filesystem;
  fs::path target = fs::path(dataDir) / "data.mdb";
  if (::rename(snapshotPath.c_str(), target.c_str()) != 0)
    KJ_FAIL_SYSCALL("rename(snapshot)", errno, snapshotPath, target.string());
  int dir = ::open(dataDir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    (void)::fsync(dir);
    ::close(dir);
  }
}

}  // namespace sluice::cluster
