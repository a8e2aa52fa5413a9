// Authentication and permissions against a real sluiced with --auth: principals and their
// rules, tokens, scoped grants, revocation of live connections, mutual-TLS identities, and the
// refusals a misbehaving client gets. Everything through libsluice (the CLI in tests/cli).

#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "integration/broker_fixture.h"
#include "support/http_get.h"
#include "support/run_process.h"
#include "support/test_certs.h"

namespace sluice::test {
namespace {

using Catch::Matchers::Contains;
namespace fs = std::filesystem;

const std::string kAdminToken = "admin-token-for-tests-0123456789abcdef0123";

Rule allow(std::vector<Action> actions, std::string pattern) {
  return Rule{true, std::move(actions), std::move(pattern)};
}
Rule deny(std::vector<Action> actions, std::string pattern) {
  return Rule{false, std::move(actions), std::move(pattern)};
}

// A sluiced with --auth whose first admin token comes from a file, and clients by secret.
class AuthBroker {
 public:
  explicit AuthBroker(std::vector<std::string> extraArgs = {}, const std::string* dataDir = nullptr)
      : dataDir_(dataDir != nullptr ? *dataDir : data_.path()) {
    std::ofstream(files_.path() + "/admin-token") << kAdminToken << "\n";
    args_ = {"--auth", "--admin-token-file", files_.path() + "/admin-token"};
    args_.insert(args_.end(), extraArgs.begin(), extraArgs.end());
    process_ = SluicedProcess::start(dataDir_, args_);
    admin_.emplace(as(kAdminToken));
  }

  SluicedProcess& process() { return *process_; }
  Client& adminClient() { return *admin_; }
  Admin admin() { return admin_->admin(); }
  const std::string& dataDir() const { return dataDir_; }

  // REQUIREs a connection authenticated with `secret`.
  Client as(const std::string& secret, Options options = {}) {
    options.token = secret;
    auto client = Client::connect(process_->address(), options);
    INFO(outcome(client));
    REQUIRE(client.ok());
    return std::move(client).value();
  }
  Result<Client> tryAs(const std::string& secret) {
    Options options;
    options.token = secret;
    return Client::connect(process_->address(), options);
  }
  // A principal with `rules` and a token of it; returns the token's secret.
  std::string principal(const std::string& name, std::vector<Rule> rules) {
    auto made = admin().createPrincipal(name, std::move(rules));
    INFO(outcome(made));
    REQUIRE(made.ok());
    auto token = admin().createToken(name, "test");
    INFO(outcome(token));
    REQUIRE(token.ok());
    CHECK(token.value().credential.principal == name);
    return token.value().secret;
  }
  void restart() {
    admin_.reset();
    REQUIRE(process_->stop() == 0);
    process_ = SluicedProcess::start(dataDir_, args_);
    admin_.emplace(as(kAdminToken));
  }

 private:
  TempDir data_, files_;
  std::string dataDir_;
  std::vector<std::string> args_;
  std::unique_ptr<SluicedProcess> process_;
  std::optional<Client> admin_;
};

std::string publishOutcome(Client& client, const std::string& topic) {
  auto producer = client.producer();
  return outcome(producer.publish(topic, textMessage("x")));
}

std::string consumeOutcome(Client& client, const std::string& topic) {
  auto consumer = client.subscribe(topic, "g");
  return outcome(consumer);
}

std::string manageOutcome(Client& client, const std::string& topic) {
  return outcome(client.admin().createGroup(topic, "managed"));
}

std::string describeOutcome(Client& client, const std::string& topic) {
  return outcome(client.admin().describeTopic(topic));
}

TEST_CASE("permission matrix: principals x actions x topic patterns, deny wins",
          "[integration][auth]") {
  AuthBroker broker;
  for (const char* topic : {"orders.eu", "orders.eu.paid", "orders.secret.keys", "orders",
                            "billing.runs", "billing.runs.daily", "payments"}) {
    createTopic(broker.admin(), topic);
  }
  std::string billingSecret =
      broker.principal("billing", {allow({Action::kPublish, Action::kConsume}, "orders.>"),
                                   deny({Action::kConsume}, "orders.secret.>"),
                                   allow({Action::kManage}, "billing.*")});
  std::string auditorSecret = broker.principal(
      "auditor",
      {allow({Action::kConsume}, ">"), deny({Action::kConsume, Action::kPublish}, "payments")});
  std::string emptySecret = broker.principal("nobody", {});
  Client billing = broker.as(billingSecret);
  Client auditor = broker.as(auditorSecret);
  Client nobody = broker.as(emptySecret);

  struct Row {
    Client* who;
    const char* name;
    std::string (*act)(Client&, const std::string&);
    const char* action;
    const char* topic;
    bool allowed;
  };
  std::vector<Row> rows = {
      {&billing, "billing", publishOutcome, "publish to", "orders.eu", true},
      {&billing, "billing", publishOutcome, "publish to", "orders.eu.paid", true},
      {&billing, "billing", publishOutcome, "publish to", "orders", false},  // `>`: 1 or more.
      {&billing, "billing", publishOutcome, "publish to", "orders.secret.keys", true},
      {&billing, "billing", consumeOutcome, "consume from", "orders.eu", true},
      {&billing, "billing", consumeOutcome, "consume from", "orders.secret.keys", false},
      {&billing, "billing", consumeOutcome, "consume from", "payments", false},
      {&billing, "billing", manageOutcome, "manage", "billing.runs", true},
      {&billing, "billing", manageOutcome, "manage", "billing.runs.daily", false},  // `*`: one.
      {&billing, "billing", manageOutcome, "manage", "orders.eu", false},
      {&billing, "billing", describeOutcome, "describe", "orders.eu", true},
      {&billing, "billing", describeOutcome, "describe", "payments", false},
      {&auditor, "auditor", consumeOutcome, "consume from", "orders.secret.keys", true},
      {&auditor, "auditor", consumeOutcome, "consume from", "payments", false},
      {&auditor, "auditor", publishOutcome, "publish to", "orders.eu", false},
      {&auditor, "auditor", manageOutcome, "manage", "orders.eu", false},
      {&nobody, "nobody", publishOutcome, "publish to", "orders.eu", false},
      {&nobody, "nobody", consumeOutcome, "consume from", "orders.eu", false},
      {&nobody, "nobody", describeOutcome, "describe", "orders.eu", false},
  };
  for (const Row& row : rows) {
    INFO(row.name << " " << row.action << " " << row.topic);
    std::string got = row.act(*row.who, row.topic);
    if (row.allowed) {
      CHECK(got == "ok");
    } else {
      CHECK_THAT(got, IsError(ErrorCode::kPermissionDenied));
      CHECK_THAT(got, Contains(std::string("\"") + row.name + "\"") && Contains(row.action) &&
                          Contains(std::string("\"") + row.topic + "\""));
    }
  }
  // Listing shows only the topics a principal may describe; admin calls need admin.
  auto listed = billing.admin().listTopics();
  REQUIRE(listed.ok());
  std::vector<std::string> names;
  for (const TopicInfo& topic : listed.value())
    names.push_back(topic.name);
  CHECK(names == std::vector<std::string>{"billing.runs", "orders.eu", "orders.eu.paid",
                                          "orders.secret.keys"});
  CHECK_THAT(outcome(billing.admin().listPrincipals()), IsError(ErrorCode::kPermissionDenied));
  CHECK_THAT(outcome(billing.admin().createToken("auditor")),
             IsError(ErrorCode::kPermissionDenied));
  TempDir backups;
  CHECK_THAT(outcome(billing.admin().backup(backups.path() + "/b.mdb")),
             IsError(ErrorCode::kPermissionDenied));
  auto who = billing.admin().whoami();
  REQUIRE(who.ok());
  CHECK(who.value().principal == "billing");
  CHECK(who.value().authenticated);
  CHECK(who.value().rules.size() == 3);
}

TEST_CASE("without a valid credential a connection can do nothing but authenticate",
          "[integration][auth]") {
  AuthBroker broker;
  createTopic(broker.admin(), "orders");
  auto plain = Client::connect(broker.process().address());
  REQUIRE(plain.ok());
  Client anonymous = std::move(plain).value();
  CHECK_THAT(publishOutcome(anonymous, "orders"), IsError(ErrorCode::kUnauthenticated));
  CHECK_THAT(consumeOutcome(anonymous, "orders"), IsError(ErrorCode::kUnauthenticated));
  CHECK_THAT(outcome(anonymous.admin().listTopics()), IsError(ErrorCode::kUnauthenticated));
  CHECK_THAT(outcome(anonymous.admin().mintGrant({allow({Action::kPublish}, "orders")}, 1h)),
             IsError(ErrorCode::kUnauthenticated));
  auto who = anonymous.admin().whoami();
  REQUIRE(who.ok());
  CHECK_FALSE(who.value().authenticated);

  for (const std::string& wrong :
       {std::string("sluice_0000"), std::string(600, 'x'), kAdminToken + "x"}) {
    auto refused = broker.tryAs(wrong);
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().code == ErrorCode::kUnauthenticated);
    CHECK_THAT(refused.error().message, !Contains(wrong));
  }
  // Nothing stored changed: one topic, no message.
  CHECK(describeTopic(broker.admin(), "orders").messages == 0);
}

TEST_CASE("revocation closes a live subscription and stops a publisher mid-stream",
          "[integration][auth]") {
  AuthBroker broker;
  createTopic(broker.admin(), "orders.eu");
  createTopic(broker.admin(), "orders.us");
  std::string secret =
      broker.principal("worker", {allow({Action::kPublish, Action::kConsume}, "orders.>")});
  Client worker = broker.as(secret);
  auto eu = subscribe(worker, "orders.eu", "g");
  auto us = subscribe(worker, "orders.us", "g");
  auto producer = worker.producer();
  REQUIRE(producer.publish("orders.eu", textMessage("one")).ok());
  REQUIRE(receiveMessages(eu, 1).size() == 1);

  SECTION("a rule change closes only the subscription that lost its right") {
    auto changed = broker.admin().setRules(
        "worker", {allow({Action::kPublish}, "orders.>"), allow({Action::kConsume}, "orders.us")});
    REQUIRE(changed.ok());
    auto closed = eu.receive(5s);
    CHECK_THAT(outcome(closed), IsError(ErrorCode::kPermissionDenied) && Contains("orders.eu"));
    REQUIRE(producer.publish("orders.us", textMessage("two")).ok());
    auto still = us.receive(5s);
    REQUIRE(still.ok());
    CHECK(still.value().payload() == "two");
  }
  SECTION("revoking the token ends both and refuses the next publish") {
    auto credentials = broker.admin().listCredentials("worker");
    REQUIRE(credentials.ok());
    REQUIRE(credentials.value().size() == 1);
    auto revoked = broker.admin().revoke(credentials.value()[0].id);
    REQUIRE(revoked.ok());
    CHECK(revoked.value() == 1);
    CHECK_THAT(outcome(eu.receive(5s)), IsError(ErrorCode::kUnauthenticated));
    CHECK_THAT(outcome(us.receive(5s)), IsError(ErrorCode::kUnauthenticated));
    // A publisher with batches in flight: every later one is refused; what was acknowledged
    // before stays, nothing after is stored.
    std::vector<std::future<Result<PublishAck>>> inFlight;
    for (int i = 0; i < 20; ++i)
      inFlight.push_back(producer.publishAsync("orders.eu", textMessage("after")));
    for (auto& f : inFlight)
      CHECK_THAT(outcome(f.get()), IsError(ErrorCode::kUnauthenticated));
    CHECK(describeTopic(broker.admin(), "orders.eu").messages == 1);
    CHECK_THAT(outcome(broker.tryAs(secret)), IsError(ErrorCode::kUnauthenticated));
    auto who = worker.admin().whoami();
    REQUIRE(who.ok());
    CHECK_FALSE(who.value().authenticated);
    CHECK(who.value().principal.empty());
  }
  SECTION("deleting the principal does the same") {
    auto removed = broker.admin().deletePrincipal("worker");
    REQUIRE(removed.ok());
    CHECK(removed.value() == 1);
    CHECK_THAT(outcome(eu.receive(5s)), IsError(ErrorCode::kUnauthenticated));
    CHECK_THAT(publishOutcome(worker, "orders.eu"), IsError(ErrorCode::kUnauthenticated));
  }
}

TEST_CASE("grants: mint narrower, refuse wider, expire, die with their issuer",
          "[integration][auth]") {
  AuthBroker broker;
  createTopic(broker.admin(), "orders.eu");
  createTopic(broker.admin(), "orders.us");
  std::string secret =
      broker.principal("svc", {allow({Action::kPublish, Action::kConsume}, "orders.>")});
  Client svc = broker.as(secret);

  auto grant = svc.admin().mintGrant({allow({Action::kPublish}, "orders.eu")}, 1h, "eu feeder");
  INFO(outcome(grant));
  REQUIRE(grant.ok());
  CHECK(grant.value().credential.scoped);
  CHECK(grant.value().credential.principal == "svc");
  CHECK(grant.value().credential.expiresAtMs > nowMs());
  Client bearer = broker.as(grant.value().secret);
  CHECK(publishOutcome(bearer, "orders.eu") == "ok");
  CHECK_THAT(publishOutcome(bearer, "orders.us"),
             IsError(ErrorCode::kPermissionDenied) && Contains("scope of grant"));
  CHECK_THAT(consumeOutcome(bearer, "orders.eu"), IsError(ErrorCode::kPermissionDenied));

  // Wider than the issuer: refused, naming the rule; nothing is minted.
  for (const Rule& wider : {allow({Action::kPublish}, ">"), allow({Action::kManage}, "orders.eu"),
                            allow({Action::kConsume}, "orders.eu")}) {
    Client& issuer = wider.actions[0] == Action::kConsume ? bearer : svc;
    auto refused = issuer.admin().mintGrant({wider}, 1h);
    CHECK_THAT(outcome(refused), IsError(ErrorCode::kPermissionDenied) && Contains("wider"));
  }
  CHECK_THAT(outcome(svc.admin().mintGrant({deny({Action::kPublish}, "orders.eu")}, 1h)),
             IsError(ErrorCode::kInvalidArgument));
  CHECK_THAT(outcome(svc.admin().mintGrant({allow({Action::kPublish}, "orders.eu")}, 10ms)),
             IsError(ErrorCode::kInvalidArgument));
  auto mine = svc.admin().listCredentials();
  REQUIRE(mine.ok());
  CHECK(mine.value().size() == 2);  // The token and its one grant.

  SECTION("an expired grant is refused") {
    auto brief = svc.admin().mintGrant({allow({Action::kPublish}, "orders.eu")}, 1s);
    REQUIRE(brief.ok());
    Client shortLived = broker.as(brief.value().secret);
    CHECK(publishOutcome(shortLived, "orders.eu") == "ok");
    // The condition is the time itself.
    std::this_thread::sleep_until(std::chrono::system_clock::time_point(
        std::chrono::milliseconds(brief.value().credential.expiresAtMs + 1)));
    CHECK_THAT(publishOutcome(shortLived, "orders.eu"),
               IsError(ErrorCode::kUnauthenticated) && Contains("expired"));
    CHECK_THAT(outcome(broker.tryAs(brief.value().secret)), IsError(ErrorCode::kUnauthenticated));
  }
  SECTION("revoking the issuer revokes the grant, and grants of it") {
    auto nested = bearer.admin().mintGrant({allow({Action::kPublish}, "orders.eu")}, 1h);
    REQUIRE(nested.ok());
    CHECK(nested.value().credential.issuer == grant.value().credential.id);
    Client nestedBearer = broker.as(nested.value().secret);
    auto who = svc.admin().whoami();
    REQUIRE(who.ok());
    auto revoked = svc.admin().revoke(who.value().credential.id);
    REQUIRE(revoked.ok());
    CHECK(revoked.value() == 3);
    CHECK_THAT(publishOutcome(bearer, "orders.eu"), IsError(ErrorCode::kUnauthenticated));
    CHECK_THAT(publishOutcome(nestedBearer, "orders.eu"), IsError(ErrorCode::kUnauthenticated));
  }
  SECTION("a bearer cannot revoke its issuer, the issuer can revoke the bearer") {
    auto who = svc.admin().whoami();
    REQUIRE(who.ok());
    CHECK_THAT(outcome(bearer.admin().revoke(who.value().credential.id)),
               IsError(ErrorCode::kPermissionDenied));
    auto revoked = svc.admin().revoke(grant.value().credential.id);
    REQUIRE(revoked.ok());
    CHECK_THAT(publishOutcome(bearer, "orders.eu"), IsError(ErrorCode::kUnauthenticated));
    CHECK(publishOutcome(svc, "orders.eu") == "ok");
  }
}

TEST_CASE("principals, tokens and grants survive a restart and a backup restore",
          "[integration][auth]") {
  AuthBroker broker;
  createTopic(broker.admin(), "orders.eu");
  std::string secret = broker.principal("svc", {allow({Action::kPublish}, "orders.>")});
  Client svc = broker.as(secret);
  auto kept = svc.admin().mintGrant({allow({Action::kPublish}, "orders.eu")}, 1h, "kept");
  auto dropped = svc.admin().mintGrant({allow({Action::kPublish}, "orders.eu")}, 1h, "dropped");
  REQUIRE(kept.ok());
  REQUIRE(dropped.ok());
  REQUIRE(svc.admin().revoke(dropped.value().credential.id).ok());

  TempDir backups;
  std::string file = backups.path() + "/sluice.mdb";
  REQUIRE(broker.admin().backup(file).ok());

  broker.restart();
  {
    Client bearer = broker.as(kept.value().secret);
    CHECK(publishOutcome(bearer, "orders.eu") == "ok");
    CHECK_THAT(outcome(broker.tryAs(dropped.value().secret)), IsError(ErrorCode::kUnauthenticated));
  }

  // Restored on a fresh directory, without any admin token given: the store carries them.
  TempDir restored;
  fs::copy_file(file, restored.path() + "/data.mdb");
  auto process = SluicedProcess::start(restored.path(), {"--auth"});
  Options options;
  options.token = kept.value().secret;
  auto bearer = Client::connect(process->address(), options);
  REQUIRE(bearer.ok());
  CHECK(publishOutcome(bearer.value(), "orders.eu") == "ok");
  options.token = dropped.value().secret;
  CHECK_THAT(outcome(Client::connect(process->address(), options)),
             IsError(ErrorCode::kUnauthenticated));
}

TEST_CASE("a client certificate's common name is its principal over mutual TLS",
          "[integration][auth][tls]") {
  TempDir pkiDir;
  CertOptions serverOptions;
  serverOptions.commonName = "sluice-broker";
  serverOptions.dnsNames = {"localhost"};
  TestCert ca{pkiDir.path(), "ca", caOptions("Auth Test CA")};
  TestCert server{pkiDir.path(), "server", serverOptions, &ca};
  auto client = [&](const std::string& name) {
    CertOptions options;
    options.commonName = name;
    options.dnsNames.clear();
    return TestCert{pkiDir.path(), "client-" + name, options, &ca};
  };
  TestCert billingCert = client("billing");
  TestCert strangerCert = client("stranger");
  AuthBroker broker({"--listen-tls", "127.0.0.1:0", "--tls-cert", server.certPath(), "--tls-key",
                     server.keyPath(), "--tls-client-ca", ca.certPath()});
  createTopic(broker.admin(), "orders.eu");
  broker.principal("billing", {allow({Action::kPublish}, "orders.>")});

  auto tlsAs = [&](const TestCert& cert) {
    Options options;
    options.tls.enabled = true;
    options.tls.caFile = ca.certPath();
    options.tls.certFile = cert.certPath();
    options.tls.keyFile = cert.keyPath();
    options.tls.serverName = "localhost";
    auto connected =
        Client::connect("127.0.0.1:" + std::to_string(broker.process().tlsPort()), options);
    REQUIRE(connected.ok());
    return std::move(connected).value();
  };
  Client billing = tlsAs(billingCert);
  CHECK(publishOutcome(billing, "orders.eu") == "ok");
  CHECK_THAT(consumeOutcome(billing, "orders.eu"), IsError(ErrorCode::kPermissionDenied));
  auto who = billing.admin().whoami();
  REQUIRE(who.ok());
  CHECK(who.value().principal == "billing");
  CHECK(who.value().credential.id == 0);
  // It mints grants as any principal does.
  auto grant = billing.admin().mintGrant({allow({Action::kPublish}, "orders.eu")}, 1h);
  REQUIRE(grant.ok());
  Client bearer = broker.as(grant.value().secret);
  CHECK(publishOutcome(bearer, "orders.eu") == "ok");

  // A certificate of no principal: authenticated by TLS, but no one here.
  Client stranger = tlsAs(strangerCert);
  CHECK_THAT(publishOutcome(stranger, "orders.eu"), IsError(ErrorCode::kUnauthenticated));
  // Deleting the principal ends its certificate's rights too, on the live connection.
  REQUIRE(broker.admin().deletePrincipal("billing").ok());
  CHECK_THAT(publishOutcome(billing, "orders.eu"), IsError(ErrorCode::kUnauthenticated));
}

TEST_CASE("failed authentications are counted and slow down their peer", "[integration][auth]") {
  AuthBroker broker;
  for (int i = 0; i < 5; ++i)
    CHECK_THAT(outcome(broker.tryAs("wrong-secret-" + std::to_string(i))),
               IsError(ErrorCode::kUnauthenticated));
  // From the fifth failure on, this address waits before every answer (100 ms, doubling).
  auto start = std::chrono::steady_clock::now();
  CHECK_THAT(outcome(broker.tryAs("wrong-secret-again")), IsError(ErrorCode::kUnauthenticated));
  CHECK(std::chrono::steady_clock::now() - start >= 100ms);
  auto metrics = httpGet(broker.process().adminPort(), "/metrics");
  CHECK_THAT(metrics.body, Contains("sluice_auth_failures_total 6"));
  // Logged once for the burst, not once per failure.
  std::string log = broker.process().stderrText();
  size_t first = log.find("authentication failures");
  REQUIRE(first != std::string::npos);
  CHECK(log.find("authentication failures", first + 1) == std::string::npos);
}

TEST_CASE("start-up refuses authentication without any way in, and a short admin token",
          "[integration][auth]") {
  TempDir data, files;
  auto run = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {sluicedPath(), "--data",  data.path(),  "--listen",
                                     "127.0.0.1:0", "--admin", "127.0.0.1:0"};
    argv.insert(argv.end(), args.begin(), args.end());
    return runProcess(argv);
  };
  RunResult none = run({"--auth"});
  CHECK(none.exitCode == 2);
  CHECK_THAT(none.stderrText, Contains("no principal yet"));
  std::ofstream(files.path() + "/short") << "tooshort\n";
  RunResult tooShort = run({"--auth", "--admin-token-file", files.path() + "/short"});
  CHECK(tooShort.exitCode == 2);
  CHECK_THAT(tooShort.stderrText, Contains("32 to 512 characters"));
  CHECK_THAT(tooShort.stderrText, !Contains("tooshort"));
  RunResult missing = run({"--auth", "--admin-token-file", files.path() + "/none"});
  CHECK(missing.exitCode == 2);
  CHECK_THAT(missing.stderrText, Contains(files.path() + "/none"));
  // With authentication on, a listener off loopback is allowed (clients must authenticate).
  RunResult open = runProcess({sluicedPath(), "--listen", "0.0.0.0:0", "--print-config", "--auth"});
  CHECK(open.exitCode == 0);
  RunResult closed = runProcess({sluicedPath(), "--listen", "0.0.0.0:0", "--print-config"});
  CHECK(closed.exitCode == 2);
}

}  // namespace
}  // namespace sluice::test
