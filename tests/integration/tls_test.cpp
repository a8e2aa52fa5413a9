// RPC over TLS: certificates made by the test itself (support/test_certs.h), a real sluiced with
// --listen-tls beside its plaintext listener, and clients through libsluice and the CLI. The
// broker's certificate is always checked; bad files stop the broker at start-up.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "integration/broker_fixture.h"
#include "support/http_get.h"
#include "support/run_process.h"
#include "support/test_certs.h"

namespace sluice::test {
namespace {

using Catch::Matchers::Contains;

CertOptions serverCert() {
  CertOptions options;
  options.commonName = "sluice-broker";
  options.dnsNames = {"localhost", "broker.test"};
  options.ipAddresses = {"127.0.0.1"};
  return options;
}

CertOptions clientCert(const std::string& name) {
  CertOptions options;
  options.commonName = name;
  options.dnsNames.clear();
  return options;
}

// A CA, a server certificate it signed, a CA for clients with one client, and a stranger CA
// with a client and a server of its own.
struct Pki {
  TempDir dir;
  TestCert ca{dir.path(), "ca", caOptions("Sluice Test CA")};
  TestCert server{dir.path(), "server", serverCert(), &ca};
  TestCert clientCa{dir.path(), "client-ca", caOptions("Sluice Test Client CA")};
  TestCert client{dir.path(), "client", clientCert("billing"), &clientCa};
  TestCert strangerCa{dir.path(), "stranger-ca", caOptions("Stranger CA")};
  TestCert strangerClient{dir.path(), "stranger-client", clientCert("billing"), &strangerCa};

  std::vector<std::string> serverArgs() const {
    return {"--listen-tls",    "127.0.0.1:0", "--tls-cert",
            server.certPath(), "--tls-key",   server.keyPath()};
  }
};

Options trusting(const std::string& caFile, const std::string& serverName = "localhost") {
  Options options;
  options.connectTimeout = 5s;
  options.tls.enabled = true;
  options.tls.caFile = caFile;
  options.tls.serverName = serverName;
  return options;
}

std::string tlsAddress(const SluicedProcess& process) {
  return "127.0.0.1:" + std::to_string(process.tlsPort());
}

// A raw TCP connection that says nothing, or what it is given.
class RawSocket {
 public:
  explicit RawSocket(int port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  }
  ~RawSocket() { ::close(fd_); }
  RawSocket(const RawSocket&) = delete;
  RawSocket& operator=(const RawSocket&) = delete;
  void send(const std::string& bytes) {
    REQUIRE(::write(fd_, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
  }

 private:
  int fd_;
};

TEST_CASE("a client that trusts the broker's CA publishes and consumes over TLS",
          "[integration][tls]") {
  Pki pki;
  Broker broker(pki.serverArgs());
  SluicedProcess& process = broker.process();
  REQUIRE(process.tlsPort() > 0);
  CHECK(process.tlsPort() != process.rpcPort());
  CHECK_THAT(process.stdoutText(), Contains("ready rpc=" + std::to_string(process.rpcPort()) +
                                            " tls=" + std::to_string(process.tlsPort())));

  auto connected = Client::connect(tlsAddress(process), trusting(pki.ca.certPath()));
  REQUIRE(outcome(connected) == "ok");
  Client client = std::move(connected).value();
  createTopic(client.admin(), "orders");
  auto producer = client.producer();
  CHECK(publishPayloads(producer, "orders", 50) == offsetRange(1, 50));
  auto consumer = subscribe(client, "orders", "billing");
  auto received = receiveMessages(consumer, 50);
  REQUIRE(received.size() == 50);
  CHECK(received[49].payload() == "m49");
  ackAll(received);
  // The plaintext listener serves the same broker.
  CHECK(describeGroup(broker.admin(), "orders", "billing").pending == 0);

  // Also by a name of the certificate other than the first.
  CHECK(outcome(Client::connect(tlsAddress(process), trusting(pki.ca.certPath(), "broker.test"))) ==
        "ok");

  // The admin endpoint serves HTTPS with the same certificate, and nothing in plaintext.
  auto metrics = httpsGet(process.adminPort(), "/metrics", pki.ca.certPath());
  CHECK(metrics.status == 200);
  CHECK_THAT(metrics.body, Contains("sluice_tls_certificate_expiry_seconds "));
  CHECK_THAT(metrics.body, Contains("sluice_tls_handshake_failures_total 0"));
  CHECK(httpsGet(process.adminPort(), "/healthz", pki.ca.certPath()).status == 200);
  CHECK_THROWS_WITH(httpsGet(process.adminPort(), "/healthz", pki.strangerCa.certPath()),
                    Contains("certificate verify failed"));
  int plainStatus = 0;
  try {
    plainStatus = httpGet(process.adminPort(), "/healthz").status;
  } catch (const std::runtime_error&) {
    // The server closed the connection: no reply at all.
  }
  CHECK(plainStatus == 0);
  CHECK(httpsGet(process.adminPort(), "/readyz", pki.ca.certPath()).status == 200);
}

TEST_CASE("the broker's certificate is always checked, and a failed handshake hurts no one else",
          "[integration][tls]") {
  Pki pki;
  Broker broker(pki.serverArgs());
  const std::string address = tlsAddress(broker.process());

  SECTION("a CA that did not sign it") {
    auto refused = Client::connect(address, trusting(pki.strangerCa.certPath()));
    CHECK_THAT(outcome(refused), IsError(ErrorCode::kConnectFailed));
    CHECK_THAT(outcome(refused), Contains("TLS handshake failed"));
  }
  SECTION("the system's CAs, which do not know the test CA") {
    Options options = trusting("");
    auto refused = Client::connect(address, options);
    CHECK_THAT(outcome(refused), Contains("TLS handshake failed"));
  }
  SECTION("a name the certificate does not carry") {
    auto refused = Client::connect(address, trusting(pki.ca.certPath(), "other.test"));
    CHECK_THAT(outcome(refused), Contains("TLS handshake failed"));
  }
  SECTION("a plaintext client on the TLS port") {
    Options plain;
    plain.connectTimeout = 2s;
    CHECK_THAT(outcome(Client::connect(address, plain)), IsError(ErrorCode::kConnectFailed));
  }
  SECTION("a TLS client on the plaintext port") {
    Options options = trusting(pki.ca.certPath());
    options.connectTimeout = 2s;
    CHECK_THAT(outcome(Client::connect(broker.process().address(), options)),
               IsError(ErrorCode::kConnectFailed));
  }
  // Each refusal was the refused connection's alone.
  CHECK(outcome(Client::connect(address, trusting(pki.ca.certPath()))) == "ok");
  createTopic(broker.admin(), "still-serving");
}

TEST_CASE("stalled and garbage handshakes cost one slot each, never the accept loop",
          "[integration][tls]") {
  Pki pki;
  Broker broker(pki.serverArgs());
  const int port = broker.process().tlsPort();
  std::vector<std::unique_ptr<RawSocket>> stalled;
  for (int i = 0; i < 20; ++i)
    stalled.push_back(std::make_unique<RawSocket>(port));  // Connect and say nothing.
  RawSocket garbage(port);
  garbage.send(std::string("GET / HTTP/1.1\r\nHost: x\r\n\r\n") + std::string(4096, '\x16'));

  // While those are held open, a real client gets through at once.
  auto connected = Client::connect(tlsAddress(broker.process()), trusting(pki.ca.certPath()));
  REQUIRE(outcome(connected) == "ok");
  createTopic(connected.value().admin(), "served");
  CHECK(describeTopic(broker.admin(), "served").messages == 0);
}

TEST_CASE("with a client CA, only clients with a certificate it signed get in",
          "[integration][tls]") {
  Pki pki;
  auto args = pki.serverArgs();
  args.insert(args.end(), {"--tls-client-ca", pki.clientCa.certPath()});
  Broker broker(args);
  const std::string address = tlsAddress(broker.process());

  Options withCert = trusting(pki.ca.certPath());
  withCert.tls.certFile = pki.client.certPath();
  withCert.tls.keyFile = pki.client.keyPath();
  auto admitted = Client::connect(address, withCert);
  REQUIRE(outcome(admitted) == "ok");
  createTopic(admitted.value().admin(), "mtls");

  // TLS 1.3 sends the server's verdict on the client certificate after the client's handshake
  // is done, so a refused client may learn of it at its first call rather than at connect.
  auto refusedAtConnectOrFirstCall = [&](const Options& options) {
    auto connected = Client::connect(address, options);
    if (!connected.ok()) {
      CHECK(connected.error().code == ErrorCode::kConnectFailed);
      return;
    }
    auto listed = connected.value().admin().listTopics();
    CHECK_FALSE(listed.ok());
  };
  SECTION("no client certificate") {
    refusedAtConnectOrFirstCall(trusting(pki.ca.certPath()));
  }
  SECTION("a client certificate from another CA") {
    Options stranger = trusting(pki.ca.certPath());
    stranger.tls.certFile = pki.strangerClient.certPath();
    stranger.tls.keyFile = pki.strangerClient.keyPath();
    refusedAtConnectOrFirstCall(stranger);
  }
  SECTION("an expired client certificate from the right CA") {
    CertOptions lapsed = clientCert("billing");
    lapsed.validFromSeconds = -2 * 24 * 3600;
    lapsed.validToSeconds = -24 * 3600;
    TestCert expiredClient(pki.dir.path(), "expired-client", lapsed, &pki.clientCa);
    Options expired = trusting(pki.ca.certPath());
    expired.tls.certFile = expiredClient.certPath();
    expired.tls.keyFile = expiredClient.keyPath();
    refusedAtConnectOrFirstCall(expired);
  }
  CHECK(describeTopic(broker.admin(), "mtls").messages == 0);
}

TEST_CASE("TLS options that cannot work are refused before connecting", "[integration][tls]") {
  Pki pki;
  Options noKey = trusting(pki.ca.certPath());
  noKey.tls.certFile = pki.client.certPath();
  CHECK_THAT(outcome(Client::connect("127.0.0.1:1", noKey)), IsError(ErrorCode::kInvalidArgument));
  Options missing = trusting(pki.dir.path() + "/absent.crt");
  auto refused = Client::connect("127.0.0.1:1", missing);
  CHECK_THAT(outcome(refused), IsError(ErrorCode::kInvalidArgument));
  CHECK_THAT(outcome(refused), Contains("absent.crt"));
  Options notEnabled;
  notEnabled.tls.caFile = pki.ca.certPath();
  CHECK_THAT(outcome(Client::connect("127.0.0.1:1", notEnabled)),
             IsError(ErrorCode::kInvalidArgument));
}

TEST_CASE("sluiced refuses bad TLS files at start-up: exit 2, one line naming the file",
          "[integration][tls]") {
  Pki pki;
  TempDir data;
  TestCert expired(
      pki.dir.path(), "expired",
      [] {
        CertOptions options = serverCert();
        options.validFromSeconds = -2 * 24 * 3600;
        options.validToSeconds = -24 * 3600;
        return options;
      }(),
      &pki.ca);
  const std::string noCerts = pki.dir.path() + "/empty-bundle.pem";
  {
    FILE* file = std::fopen(noCerts.c_str(), "w");
    REQUIRE(file != nullptr);
    std::fputs("not a certificate\n", file);
    std::fclose(file);
  }
  auto run = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {sluicedPath(), "--data",       data.path(),
                                     "--listen",    "127.0.0.1:0",  "--admin",
                                     "127.0.0.1:0", "--listen-tls", "127.0.0.1:0"};
    argv.insert(argv.end(), args.begin(), args.end());
    return runProcess(argv, "", {}, 20s);
  };
  struct Case {
    const char* what;
    std::vector<std::string> args;
    std::string mentions;
  };
  const std::string absent = pki.dir.path() + "/absent.key";
  for (const Case& c : std::vector<Case>{
           {"a key that is not the certificate's",
            {"--tls-cert", pki.server.certPath(), "--tls-key", pki.client.keyPath()},
            "does not match the certificate"},
           {"an expired certificate",
            {"--tls-cert", expired.certPath(), "--tls-key", expired.keyPath()},
            "expired"},
           {"an unreadable key",
            {"--tls-cert", pki.server.certPath(), "--tls-key", absent},
            "absent.key: cannot read it"},
           {"a client CA bundle with no certificate",
            {"--tls-cert", pki.server.certPath(), "--tls-key", pki.server.keyPath(),
             "--tls-client-ca", noCerts},
            "empty-bundle.pem: holds no PEM certificate"},
           {"a key file holding a certificate",
            {"--tls-cert", pki.server.certPath(), "--tls-key", pki.server.certPath()},
            "holds no PEM private key"},
           {"a TLS listener without a certificate", {}, "needs tls_cert and tls_key"},
       }) {
    INFO(c.what);
    RunResult result = run(c.args);
    CHECK(result.exitCode == 2);
    CHECK_THAT(result.stderrText, Contains(c.mentions));
    CHECK(result.stdoutText.find("ready") == std::string::npos);
    // One line.
    CHECK(result.stderrText.find('\n') == result.stderrText.size() - 1);
  }
  // A certificate without a listener is a mistake too.
  RunResult orphan = runProcess({sluicedPath(), "--data", data.path(), "--listen", "127.0.0.1:0",
                                 "--admin", "127.0.0.1:0", "--tls-cert", pki.server.certPath()},
                                "", {}, 20s);
  CHECK(orphan.exitCode == 2);
  CHECK_THAT(orphan.stderrText, Contains("is used only by the TLS listener"));

  // Off loopback without client certificates: refused before anything binds.
  RunResult open = runProcess(
      {sluicedPath(), "--data", data.path(), "--listen", "0.0.0.0:0", "--admin", "127.0.0.1:0"}, "",
      {}, 20s);
  CHECK(open.exitCode == 2);
  CHECK_THAT(open.stderrText, Contains("listen = \"0.0.0.0:0\" is not a loopback address"));
  RunResult openTls = runProcess({sluicedPath(), "--data", data.path(), "--listen", "127.0.0.1:0",
                                  "--admin", "127.0.0.1:0", "--listen-tls", "[::]:0", "--tls-cert",
                                  pki.server.certPath(), "--tls-key", pki.server.keyPath()},
                                 "", {}, 20s);
  CHECK(openTls.exitCode == 2);
  CHECK_THAT(openTls.stderrText, Contains("require client certificates"));
}

TEST_CASE("sluiced warns at start when anonymous clients are allowed", "[integration][tls]") {
  TempDir data;
  auto broker = SluicedProcess::start(data.path(), {"--allow-anonymous"});
  CHECK_THAT(broker->stderrText(), Contains("allow_anonymous: clients need no credential"));
}

TEST_CASE("the CLI speaks TLS with --tls-ca, and refuses a broker it cannot check",
          "[integration][tls][cli]") {
  Pki pki;
  Broker broker(pki.serverArgs());
  const std::string address = tlsAddress(broker.process());
  RunResult created =
      runProcess({sluiceCliPath(), "--broker", address, "--tls-ca", pki.ca.certPath(),
                  "--tls-server-name", "localhost", "topics", "create", "cli-tls"});
  INFO(created.stderrText);
  CHECK(created.exitCode == 0);
  CHECK(describeTopic(broker.admin(), "cli-tls").messages == 0);

  // The same from the environment.
  RunResult listed =
      runProcess({sluiceCliPath(), "--broker", address, "topics", "list"}, "",
                 {{"SLUICE_TLS_CA", pki.ca.certPath()}, {"SLUICE_TLS_SERVER_NAME", "localhost"}});
  CHECK(listed.exitCode == 0);
  CHECK_THAT(listed.stdoutText, Contains("cli-tls"));

  RunResult untrusted = runProcess({sluiceCliPath(), "--broker", address, "--tls",
                                    "--tls-server-name", "localhost", "topics", "list"});
  CHECK(untrusted.exitCode == 3);
  CHECK_THAT(untrusted.stderrText, Contains("TLS handshake failed"));
}

}  // namespace
}  // namespace sluice::test
