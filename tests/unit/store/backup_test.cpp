// CompactCopy: an online compacted copy of a live store through a pipe.

#include "store/backup.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>

#include "store_fixture.h"

namespace sluice::store::test {
namespace {

using Catch::Matchers::Contains;

// Reads `fd` (non-blocking) until EOF, or until `limit` bytes when limit > 0.
std::string drain(int fd, size_t limit = 0) {
  std::string out;
  char buffer[65536];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    REQUIRE(::poll(&p, 1, 10000) == 1);
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    REQUIRE(n >= 0);
    if (n == 0) return out;
    out.append(buffer, static_cast<size_t>(n));
    if (limit > 0 && out.size() >= limit) return out;
  }
}

TEST_CASE("a compact copy of a live store opens as the same store", "[store]") {
  TestStore store;
  store.create("t");
  store.append("t", messages(300, 3000));  // Overflow pages, several MiB.
  auto copy = CompactCopy::start(store.env());
  REQUIRE(copy.status().toString() == "ok");
  int fd = copy.value()->takeReadFd();
  REQUIRE(fd >= 0);
  // Writes go on while the copy runs; the copy is the store as of its start or later.
  store.append("t", messages(10, 10));
  std::string bytes = drain(fd);
  ::close(fd);
  Status finished = copy.value()->finished().wait(store.ws());
  CHECK(finished.ok());
  copy.value().reset();
  CHECK(bytes.size() > 300u * 3000);

  TempDir restored;
  std::ofstream(restored.path() + "/data.mdb", std::ios::binary) << bytes;
  EnvOptions options;
  options.dir = restored.path();
  options.maxStorageBytes = 64u << 20;
  auto env = Env::open(options);
  REQUIRE(env.status().toString() == "ok");
  CHECK(env.value()->check().ok());
  ReadTxn read(*env.value());
  auto topic = read.topic("t");
  REQUIRE(topic.has_value());
  CHECK((topic->messages == 300 || topic->messages == 310));
  auto first = read.readMessage(topic->id, 1);
  REQUIRE(first.has_value());
  CHECK(first->data.payload == std::string(3000, 'x'));
}

TEST_CASE("closing the read end stops the copy with an error; destruction joins", "[store]") {
  TestStore store;
  store.create("t");
  store.append("t", messages(2000, 3000));  // Far more than the pipe holds.
  auto copy = CompactCopy::start(store.env());
  REQUIRE(copy.status().toString() == "ok");
  int fd = copy.value()->takeReadFd();
  drain(fd, 100000);
  ::close(fd);
  Status finished = copy.value()->finished().wait(store.ws());
  CHECK(finished.code() == Code::kStorageFailed);
  CHECK_THAT(finished.message(), Contains("mdb_env_copyfd2"));
  copy.value().reset();  // Joins the copy thread.
}

TEST_CASE("destroying a copy whose read end was never taken ends it", "[store]") {
  TestStore store;
  store.create("t");
  store.append("t", messages(2000, 3000));
  auto copy = CompactCopy::start(store.env());
  REQUIRE(copy.status().toString() == "ok");
  copy.value().reset();  // Closes the read end, then joins; must not hang.
  SUCCEED();
}

}  // namespace
}  // namespace sluice::store::test
