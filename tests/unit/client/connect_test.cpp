#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "sluice/client.h"

using namespace sluice;
using namespace std::chrono_literals;

namespace {

// A TCP socket bound to 127.0.0.1 on a port the kernel picks; listening if asked.
class LoopbackSocket {
 public:
  explicit LoopbackSocket(bool listening) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
    socklen_t length = sizeof(address);
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) == 0);
    port_ = ntohs(address.sin_port);
    if (listening) REQUIRE(::listen(fd_, 16) == 0);
  }
  ~LoopbackSocket() { close(); }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  int port_ = 0;
};

}  // namespace

TEST_CASE("a malformed address is rejected as an invalid argument that states the rule",
          "[client]") {
  const char* addresses[] = {"",           "localhost", "localhost:",  ":7400",
                             "host:port",  "host:0",    "host:65536",  "host:-1",
                             "::1:7400",   "[::1]",     "[::1]7400",   "[]:7400",
                             "ho st:7400", "a/b:7400",  "host:123456", "host:7400x"};
  for (const char* address : addresses) {
    INFO("address: \"" << address << "\"");
    auto client = Client::connect(address, Options{200ms, 200ms});
    REQUIRE_FALSE(client.ok());
    CHECK(client.error().code == ErrorCode::kInvalidArgument);
    CHECK_THAT(client.error().message, Catch::Matchers::Contains("host:port"));
  }
}

TEST_CASE("connecting to a closed loopback port fails fast with connectFailed", "[client]") {
  LoopbackSocket socket(/*listening=*/false);
  std::string address = socket.address();
  socket.close();

  auto started = std::chrono::steady_clock::now();
  auto client = Client::connect(address, Options{2000ms, 2000ms});
  auto took = std::chrono::steady_clock::now() - started;
  REQUIRE_FALSE(client.ok());
  CHECK(client.error().code == ErrorCode::kConnectFailed);
  CHECK_THAT(client.error().message, Catch::Matchers::Contains(address));
  CHECK(took < 2000ms);
}

TEST_CASE("a peer that accepts but never answers fails with connectFailed after connectTimeout",
          "[client]") {
  // The kernel completes the TCP handshake from the listen backlog; nobody ever reads.
  LoopbackSocket socket(/*listening=*/true);

  auto started = std::chrono::steady_clock::now();
  auto client = Client::connect(socket.address(), Options{300ms, 300ms});
  auto took = std::chrono::steady_clock::now() - started;
  REQUIRE_FALSE(client.ok());
  CHECK(client.error().code == ErrorCode::kConnectFailed);
  CHECK_THAT(client.error().message, Catch::Matchers::Contains("within 300 ms"));
  CHECK_THAT(client.error().message, Catch::Matchers::Contains(socket.address()));
  CHECK(took >= 300ms);
  CHECK(took < 5s);
}

TEST_CASE("handles made without a connection answer disconnected instead of crashing", "[client]") {
  Producer producer;
  CHECK(producer.publish("orders", "x").error().code == ErrorCode::kDisconnected);
  CHECK(producer.publishAsync("orders", OutgoingMessage{}).get().error().code ==
        ErrorCode::kDisconnected);
  CHECK(producer.flush().error().code == ErrorCode::kDisconnected);
  Consumer consumer;
  CHECK(consumer.receive(0ms).error().code == ErrorCode::kDisconnected);
  CHECK(consumer.id() == 0);
  consumer.close();
  Admin admin;
  CHECK(admin.stats().error().code == ErrorCode::kDisconnected);
  Message message;
  CHECK(message.ack().error().code == ErrorCode::kInvalidArgument);
}
