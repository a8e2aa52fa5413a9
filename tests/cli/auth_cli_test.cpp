// `sluice auth` and the token options against a real sluiced: stdout, stderr and exit codes.
// Assertions name error codes, not the broker's wording, which is the broker's to change.

#include <fstream>
#include <map>
#include <sstream>

#include <catch2/catch.hpp>

#include "cli_run.h"
#include "json.h"
#include "support/run_process.h"
#include "support/sluiced_process.h"
#include "support/temp_dir.h"

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using sluice::cli::Json;
using sluice::test::runCli;
using sluice::test::RunResult;
using sluice::test::SluicedProcess;
using sluice::test::splitLines;
using sluice::test::TempDir;

namespace {

// 40 characters: the broker takes an admin token of 32 to 512.
const std::string kAdminSecret = "admin-secret-for-the-cli-tests-0123456789";

void writeFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  REQUIRE(out.good());
}

// A broker with authentication on, its admin token in a file, and a way to run
// `sluice --broker <it> ARGS...` as someone.
struct AuthBroker {
  TempDir dir;
  std::string adminTokenFile = dir.path() + "/admin.token";
  std::unique_ptr<SluicedProcess> process = start();

  std::unique_ptr<SluicedProcess> start() {
    writeFile(adminTokenFile, kAdminSecret + "\n");
    return SluicedProcess::start(dir.path() + "/data",
                                 {"--auth", "--admin-token-file", adminTokenFile});
  }

  // As whoever `credential` names: {"--token-file", F}, {"--token", S}, or nothing.
  RunResult run(std::vector<std::string> args, std::vector<std::string> credential,
                std::map<std::string, std::string> env = {}) const {
    credential.insert(credential.begin(), {"--broker", process->address()});
    args.insert(args.begin(), credential.begin(), credential.end());
    return runCli(args, env);
  }
  RunResult asAdmin(std::vector<std::string> args) const {
    return run(std::move(args), {"--token-file", adminTokenFile});
  }
  std::string okAsAdmin(std::vector<std::string> args) const {
    RunResult result = asAdmin(args);
    INFO("stderr: " << result.stderrText);
    REQUIRE(result.exitCode == 0);
    return result.stdoutText;
  }
};

}  // namespace

TEST_CASE("auth usage errors exit 2 before connecting and name the bad value", "[cli][auth]") {
  // Nothing listens there; none of these gets as far as connecting.
  auto run = [](std::vector<std::string> args) {
    args.insert(args.begin(), {"--broker", "127.0.0.1:1"});
    RunResult result = runCli(args);
    CHECK(result.exitCode == 2);
    CHECK(result.stdoutText.empty());
    return result;
  };
  SECTION("a malformed rule") {
    CHECK_THAT(run({"auth", "principals", "create", "p", "--allow", "publsh:orders"}).stderrText,
               Contains("invalid rule \"publsh:orders\"") && Contains("unknown action"));
    CHECK_THAT(run({"auth", "principals", "set-rules", "p", "--deny", "consume"}).stderrText,
               Contains("invalid rule \"consume\""));
    CHECK_THAT(run({"auth", "grants", "mint", "--allow", "consume:", "--ttl", "1h"}).stderrText,
               Contains("no pattern"));
  }
  SECTION("a grant needs --allow and --ttl, and takes no deny rule") {
    run({"auth", "grants", "mint", "--allow", "consume:orders"});
    run({"auth", "grants", "mint", "--ttl", "1h"});
    run({"auth", "grants", "mint", "--allow", "consume:a", "--deny", "consume:b", "--ttl", "1h"});
    CHECK_THAT(run({"auth", "grants", "mint", "--allow", "consume:a", "--ttl", "1hour"}).stderrText,
               Contains("invalid duration \"1hour\""));
  }
  SECTION("a bad token option") {
    TempDir dir;
    std::string missing = dir.path() + "/missing.token";
    CHECK_THAT(run({"--token-file", missing, "auth", "whoami"}).stderrText,
               StartsWith("error: --token-file \"" + missing + "\""));
    std::string blank = dir.path() + "/blank.token";
    writeFile(blank, " \n\n");
    CHECK_THAT(run({"--token-file", blank, "stats"}).stderrText,
               Contains("\"" + blank + "\"") && Contains("no secret"));
    CHECK_THAT(run({"--token-file", dir.path(), "stats"}).stderrText, Contains("directory"));
    writeFile(dir.path() + "/ok.token", "secret\n");
    run({"--token-file", dir.path() + "/ok.token", "--token", "secret", "stats"});
    run({"--token", "", "stats"});
  }
  SECTION("a revoke names a number") {
    run({"auth", "revoke", "twelve"});
    run({"auth", "revoke"});
  }
}

TEST_CASE("auth help shows an example for each command", "[cli][auth]") {
  const std::vector<std::vector<std::string>> commands = {{"auth"},
                                                          {"auth", "whoami"},
                                                          {"auth", "principals", "create"},
                                                          {"auth", "principals", "set-rules"},
                                                          {"auth", "principals", "list"},
                                                          {"auth", "principals", "delete"},
                                                          {"auth", "tokens", "create"},
                                                          {"auth", "grants", "mint"},
                                                          {"auth", "credentials", "list"},
                                                          {"auth", "revoke"}};
  for (auto command : commands) {
    INFO(command.back());
    command.push_back("--help");
    RunResult help = runCli(command);
    CHECK(help.exitCode == 0);
    CHECK_THAT(help.stdoutText, Contains("Example"));
    CHECK_THAT(help.stdoutText, Contains("sluice auth"));
    CHECK_THAT(help.stdoutText, Contains("--token-file FILE"));
  }
}

TEST_CASE("auth whoami with authentication off answers anonymous with every right", "[cli][auth]") {
  TempDir data;
  auto process = SluicedProcess::start(data.path());
  RunResult result = runCli({"--broker", process->address(), "auth", "whoami", "--json"});
  INFO(result.stderrText);
  REQUIRE(result.exitCode == 0);
  Json identity = Json::parse(result.stdoutText);
  CHECK(identity["principal"] == "anonymous");
  CHECK(identity["authenticated"] == false);
  CHECK(identity["credential"].is_null());
}

TEST_CASE("with authentication on, the CLI authenticates from a file, the environment or argv",
          "[cli][auth]") {
  AuthBroker broker;

  SECTION("no credential: unauthenticated, exit 1; whoami says why") {
    RunResult result = broker.run({"topics", "list"}, {});
    CHECK(result.exitCode == 1);
    CHECK_THAT(result.stderrText, StartsWith("error: unauthenticated: "));
    RunResult whoami = broker.run({"auth", "whoami", "--json"}, {});
    INFO(whoami.stderrText);
    REQUIRE(whoami.exitCode == 0);
    Json identity = Json::parse(whoami.stdoutText);
    CHECK(identity["principal"].is_null());
    CHECK(identity["authenticated"] == false);
  }
  SECTION("a wrong secret: the connection is refused with unauthenticated, exit 1") {
    RunResult result = broker.run({"stats"}, {"--token", "not-the-secret"});
    CHECK(result.exitCode == 1);
    CHECK_THAT(result.stderrText, StartsWith("error: unauthenticated: "));
    CHECK(splitLines(result.stderrText).size() == 1);
    CHECK_THAT(result.stderrText, !Contains("not-the-secret"));
  }
  SECTION("the admin token from each source") {
    for (const auto& [credential, env] :
         std::vector<std::pair<std::vector<std::string>, std::map<std::string, std::string>>>{
             {{"--token-file", broker.adminTokenFile}, {}},
             {{"--token", kAdminSecret}, {}},
             {{}, {{"SLUICE_TOKEN", kAdminSecret}}},
             // The option wins over the environment.
             {{"--token-file", broker.adminTokenFile}, {{"SLUICE_TOKEN", "stale"}}}}) {
      RunResult result = broker.run({"auth", "whoami", "--json"}, credential, env);
      INFO(result.stderrText);
      REQUIRE(result.exitCode == 0);
      Json identity = Json::parse(result.stdoutText);
      CHECK(identity["principal"] == "admin");
      CHECK(identity["authenticated"] == true);
      CHECK(identity["credential"]["kind"] == "token");
    }
  }
}

TEST_CASE("principals, tokens, grants and revocation through the CLI", "[cli][auth]") {
  AuthBroker broker;
  broker.okAsAdmin({"topics", "create", "orders.eu"});
  broker.okAsAdmin({"topics", "create", "orders.secret"});
  broker.okAsAdmin({"topics", "create", "audit"});

  Json created = Json::parse(
      broker.okAsAdmin({"auth", "principals", "create", "billing", "--allow",
                        "publish,consume:orders.>", "--deny", "consume:orders.secret", "--json"}));
  CHECK(created["name"] == "billing");
  REQUIRE(created["rules"].size() == 2);
  CHECK(created["rules"][0]["actions"] == Json::array({"publish", "consume"}));
  CHECK(created["rules"][1]["allow"] == false);
  CHECK(broker.asAdmin({"auth", "principals", "create", "billing"}).exitCode == 1);
  CHECK_THAT(broker.okAsAdmin({"auth", "principals", "list"}),
             Contains("billing") && Contains("deny consume:orders.secret"));

  // The secret alone on stdout; what it is on stderr.
  RunResult token = broker.asAdmin({"auth", "tokens", "create", "billing", "--note", "svc"});
  INFO(token.stderrText);
  REQUIRE(token.exitCode == 0);
  REQUIRE(splitLines(token.stdoutText).size() == 1);
  std::string secret = splitLines(token.stdoutText)[0];
  CHECK_FALSE(secret.empty());
  CHECK_THAT(token.stderrText, Contains("billing"));
  TempDir dir;
  std::string tokenFile = dir.path() + "/billing.token";
  writeFile(tokenFile, token.stdoutText);
  std::vector<std::string> asBilling = {"--token-file", tokenFile};

  Json whoami = Json::parse(broker.run({"auth", "whoami", "--json"}, asBilling).stdoutText);
  CHECK(whoami["principal"] == "billing");
  CHECK(whoami["credential"]["note"] == "svc");
  uint64_t tokenId = whoami["credential"]["id"].get<uint64_t>();

  SECTION("the principal's rules decide, and a refusal is permissionDenied, exit 1") {
    CHECK(broker.run({"publish", "orders.eu", "hello"}, asBilling).exitCode == 0);
    RunResult denied = broker.run({"publish", "audit", "hello"}, asBilling);
    CHECK(denied.exitCode == 1);
    CHECK_THAT(denied.stderrText, StartsWith("error: permissionDenied: "));
    RunResult secretTopic = broker.run({"peek", "orders.secret"}, asBilling);
    CHECK(secretTopic.exitCode == 1);
    CHECK_THAT(secretTopic.stderrText, StartsWith("error: permissionDenied: "));
    CHECK(broker.run({"auth", "principals", "list"}, asBilling).exitCode == 1);
  }
  SECTION("set-rules replaces the rules") {
    broker.okAsAdmin({"auth", "principals", "set-rules", "billing", "--allow", "publish:audit"});
    CHECK(broker.run({"publish", "audit", "hello"}, asBilling).exitCode == 0);
    CHECK(broker.run({"publish", "orders.eu", "hello"}, asBilling).exitCode == 1);
  }
  SECTION("a grant minted by the principal works within its scope until its issuer is revoked") {
    RunResult minted = broker.run(
        {"auth", "grants", "mint", "--allow", "consume:orders.eu", "--ttl", "1h", "--json"},
        asBilling);
    INFO(minted.stderrText);
    REQUIRE(minted.exitCode == 0);
    Json grant = Json::parse(minted.stdoutText);
    CHECK(grant["kind"] == "grant");
    CHECK(grant["issuer"] == tokenId);
    CHECK_FALSE(grant["expires"].is_null());
    std::vector<std::string> asGrant = {"--token", grant["secret"].get<std::string>()};
    CHECK(broker.run({"peek", "orders.eu"}, asGrant).exitCode == 0);
    CHECK(broker.run({"publish", "orders.eu", "x"}, asGrant).exitCode == 1);

    Json listed = Json::parse(
        broker.okAsAdmin({"auth", "credentials", "list", "--principal", "billing", "--json"}));
    CHECK(listed["credentials"].size() == 2);

    // Refused without a terminal; with --yes, it goes, and the grant with it.
    CHECK(broker.asAdmin({"auth", "revoke", std::to_string(tokenId)}).exitCode == 2);
    Json revoked = Json::parse(
        broker.okAsAdmin({"auth", "revoke", std::to_string(tokenId), "--yes", "--json"}));
    CHECK(revoked["credentials_revoked"] == 2);
    RunResult after = broker.run({"peek", "orders.eu"}, asGrant);
    CHECK(after.exitCode == 1);
    CHECK_THAT(after.stderrText, StartsWith("error: unauthenticated: "));
  }
  SECTION("a grant cannot exceed its issuer's rights") {
    RunResult wide = broker.run(
        {"auth", "grants", "mint", "--allow", "consume:audit", "--ttl", "1h"}, asBilling);
    CHECK(wide.exitCode == 1);
    CHECK_THAT(wide.stderrText, StartsWith("error: permissionDenied: "));
  }
  SECTION("deleting the principal revokes its tokens") {
    CHECK(broker.asAdmin({"auth", "principals", "delete", "billing"}).exitCode == 2);
    Json deleted = Json::parse(
        broker.okAsAdmin({"auth", "principals", "delete", "billing", "--yes", "--json"}));
    CHECK(deleted["credentials_revoked"] == 1);
    CHECK(broker.run({"auth", "whoami"}, asBilling).exitCode == 1);
  }
}
