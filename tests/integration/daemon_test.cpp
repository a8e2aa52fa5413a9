// The sluiced command line: the ready line, SIGTERM, and its flags.

#include <algorithm>

#include "integration/broker_fixture.h"

namespace sluice::test {
namespace {

TEST_CASE("sluiced prints one ready line and exits 0 on SIGTERM", "[integration]") {
  TempDir data;
  auto broker = SluicedProcess::start(data.path());
  CHECK(broker->rpcPort() > 0);
  {
    Client client = connectTo(*broker);
    CHECK(client.connected());
    CHECK(client.admin().createTopic("t").ok());
  }
  CHECK(broker->stop() == 0);
  std::string out = broker->stdoutText();
  INFO("stdout: " << out);
  CHECK_THAT(out, Catch::Matchers::StartsWith("ready rpc=" + std::to_string(broker->rpcPort())));
  CHECK(std::count(out.begin(), out.end(), '\n') == 1);
  if (out.find(" admin=") != std::string::npos) {
    CHECK(broker->adminPort() > 0);
    CHECK(broker->adminPort() != broker->rpcPort());
  }
}

TEST_CASE("two brokers run side by side without a fixed port", "[integration]") {
  TempDir first, second;
  auto a = SluicedProcess::start(first.path());
  auto b = SluicedProcess::start(second.path());
  CHECK(a->rpcPort() != b->rpcPort());
  Client toA = connectTo(*a);
  Client toB = connectTo(*b);
  REQUIRE(toA.admin().createTopic("only.on.a").ok());
  CHECK_THAT(outcome(toB.admin().describeTopic("only.on.a")), IsError(ErrorCode::kTopicNotFound));
}

TEST_CASE("sluiced takes a --max-storage size in bytes or with a binary unit", "[integration]") {
  auto limitFor = [](const std::string& size) {
    TempDir data;
    auto broker = SluicedProcess::start(data.path(), {"--max-storage", size});
    Client client = connectTo(*broker);
    auto stats = client.admin().stats();
    INFO("--max-storage " << size << ": " << outcome(stats));
    REQUIRE(stats.ok());
    return stats.value().storageLimit;
  };
  CHECK(limitFor("20MiB") == 20ull << 20);
  CHECK(limitFor("2GiB") == 2ull << 30);
  CHECK(limitFor("17000000") == 17000000ull);
  CHECK(limitFor("65536KiB") == 64ull << 20);
}

TEST_CASE("sluiced refuses a malformed flag with a message and no ready line", "[integration]") {
  TempDir data;
  std::string what;
  try {
    SluicedProcess::start(data.path(), {"--max-storage", "lots"});
  } catch (const std::runtime_error& e) {
    what = e.what();
  }
  INFO(what);
  CHECK_THAT(what, Catch::Matchers::StartsWith("sluiced exited before printing its ready line"));
  // The harness appends the broker's stderr after "stderr:"; the reason must name the flag.
  auto log = what.find("stderr:");
  REQUIRE(log != std::string::npos);
  CHECK_THAT(what.substr(log), Catch::Matchers::Contains("--max-storage"));
}

}  // namespace
}  // namespace sluice::test
