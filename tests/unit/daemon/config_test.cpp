#include "config.h"

#include <map>

#include <catch2/catch.hpp>

namespace sluice::daemon {
namespace {

using Catch::Matchers::Contains;

EnvLookup fakeEnv(std::map<std::string, std::string> values) {
  return [values = std::move(values)](const std::string& name) -> std::optional<std::string> {
    auto it = values.find(name);
    if (it == values.end()) return std::nullopt;
    return it->second;
  };
}

ParseOutcome parse(std::vector<const char*> args, std::map<std::string, std::string> env = {}) {
  args.insert(args.begin(), "sluiced");
  return parseCommandLine(static_cast<int>(args.size()), args.data(), fakeEnv(std::move(env)));
}

TEST_CASE("storage sizes take binary and decimal units, auto, and at least 16MiB", "[daemon]") {
  struct Row {
    const char* text;
    uint64_t bytes;
  };
  for (Row row : {Row{"auto", 0}, Row{"16MiB", 16ull << 20}, Row{"20GiB", 20ull << 30},
                  Row{"20gib", 20ull << 30}, Row{"1TiB", 1ull << 40}, Row{"65536KiB", 64ull << 20},
                  Row{"17000000", 17000000}, Row{"17000000B", 17000000}, Row{"2GB", 2000000000ull},
                  Row{"17MB", 17000000}}) {
    INFO(row.text);
    auto size = parseStorageSize(row.text);
    REQUIRE(size.ok());
    CHECK(size.value() == row.bytes);
  }
  for (const char* bad : {"", "lots", "1MiB", "16777215", "20G", "20 GiB", "-1GiB", "1.5GiB",
                          "99999999999999999999", "20000000TiB", "0"}) {
    INFO(bad);
    auto size = parseStorageSize(bad);
    REQUIRE_FALSE(size.ok());
    CHECK_THAT(size.status().message(), Contains("at least 16MiB"));
  }
}

TEST_CASE("a TOML file sets every key, and unknown keys and wrong types are errors", "[daemon]") {
  Config config;
  Status status = applyToml(
      "data = \"/var/lib/sluice\"\nlisten = \"0.0.0.0:7400\"\nadmin = \"[::1]:0\"\n"
      "max_storage = 34359738368\nlog_level = \"warn\"\nlog_format = \"json\"\n"
      "auto_create_topics = true\ndurability = \"async\"\n",
      "f.toml", config);
  REQUIRE(status.ok());
  CHECK(config.data == "/var/lib/sluice");
  CHECK(config.listen == "0.0.0.0:7400");
  CHECK(config.admin == "[::1]:0");
  CHECK(config.maxStorage == 32ull << 30);
  CHECK(config.logLevel == "warn");
  CHECK(config.logFormat == "json");
  CHECK(config.autoCreateTopics);
  CHECK(config.durability == "async");

  struct Bad {
    const char* toml;
    std::vector<const char*> mentions;
  };
  for (const Bad& bad : {
           Bad{"colour = \"blue\"\n", {"unknown key \"colour\"", "f.toml line 1", "log_format"}},
           Bad{"[admin]\nlisten = \"x:1\"\n", {"admin = a table", "HOST:PORT"}},
           Bad{"[server]\nlisten = \"x:1\"\n", {"unknown key \"server\"", "allowed keys"}},
           Bad{"listen = 7400\n", {"listen = 7400", "HOST:PORT"}},
           Bad{"listen = \"localhost\"\n", {"listen = \"localhost\"", "HOST:PORT"}},
           Bad{"admin = \"::1:80\"\n", {"admin = \"::1:80\"", "[::1]:7400"}},
           Bad{"max_storage = -5\n", {"max_storage = -5", "at least 16MiB"}},
           Bad{"max_storage = true\n", {"max_storage = true", "auto"}},
           Bad{"auto_create_topics = 1\n", {"auto_create_topics = 1", "true or false"}},
           Bad{"durability = \"SYNC\"\n", {"durability = \"SYNC\"", "sync or async"}},
           Bad{"data = \"\"\n", {"data = \"\"", "non-empty"}},
           Bad{"log_level = \"verbose\"\n", {"log_level", "\"verbose\"", "trace, debug"}},
           Bad{"data = \"x\"\ndata = \"y\"\n", {"f.toml line 2", "TOML"}},
       }) {
    INFO(bad.toml);
    Config c;
    Status s = applyToml(bad.toml, "f.toml", c);
    REQUIRE_FALSE(s.ok());
    CHECK(s.code() == Code::kInvalidArgument);
    CHECK(s.message().find('\n') == std::string::npos);
    for (const char* m : bad.mentions)
      CHECK_THAT(s.message(), Contains(m));
  }
}

TEST_CASE("toToml round-trips through applyToml, odd characters included", "[daemon]") {
  Config config;
  config.data = "/tmp/a \"quoted\" dir\\with\ttab";
  config.maxStorage = (5ull << 30) + 1;
  config.autoCreateTopics = true;
  config.logFormat = "json";
  std::string text = toToml(config);
  Config back;
  back.data = "other";
  REQUIRE(applyToml(text, "printed", back).ok());
  CHECK(back.data == config.data);
  CHECK(back.maxStorage == config.maxStorage);
  CHECK(back.autoCreateTopics);
  CHECK(back.logFormat == "json");
  CHECK_THAT(toToml(Config{}), Contains("max_storage = \"auto\""));
  Config gib;
  gib.maxStorage = 20ull << 30;
  CHECK_THAT(toToml(gib), Contains("max_storage = \"20GiB\""));
}

TEST_CASE("environment variables override flags, which override the defaults", "[daemon]") {
  auto outcome = parse({"--listen", "127.0.0.1:1", "--log-level", "debug", "--auto-create-topics"},
                       {{"SLUICE_LISTEN", "127.0.0.1:2"},
                        {"SLUICE_DATA", ""},
                        {"SLUICE_AUTO_CREATE_TOPICS", "0"},
                        {"SLUICE_UNRELATED", "x"}});
  REQUIRE(outcome.invocation);
  const Config& c = outcome.invocation->config;
  CHECK(c.listen == "127.0.0.1:2");
  CHECK(c.logLevel == "debug");
  CHECK(c.data == "./data");  // Empty variable: unset.
  CHECK_FALSE(c.autoCreateTopics);
  CHECK(outcome.invocation->mode == Mode::kServe);

  auto print = parse({"--print-config"});
  REQUIRE(print.invocation);
  CHECK(print.invocation->mode == Mode::kPrintConfig);
  auto check = parse({"--check"});
  REQUIRE(check.invocation);
  CHECK(check.invocation->mode == Mode::kCheck);
}

TEST_CASE("invalid flags and variables end the parse with exit code 2", "[daemon]") {
  CHECK(parse({"--durability", "fast"}).exitCode == 2);
  CHECK_FALSE(parse({"--durability", "fast"}).invocation);
  CHECK(parse({"--max-storage", "1KiB"}).exitCode == 2);
  CHECK(parse({}, {{"SLUICE_LOG_FORMAT", "xml"}}).exitCode == 2);
  CHECK(parse({"--no-such-flag"}).exitCode == 2);
  CHECK(parse({"--check", "--print-config"}).exitCode == 2);
  CHECK(parse({"--config", "/nonexistent/sluice.toml"}).exitCode == 2);
  CHECK(parse({"--help"}).exitCode == 0);
  CHECK_FALSE(parse({"--help"}).invocation);
}

TEST_CASE("the write log's maximum age takes a duration and needs a window", "[daemon]") {
  auto both = parse({"--write-log-window", "1GiB", "--write-log-max-age", "1h30m"});
  REQUIRE(both.invocation);
  CHECK(both.invocation->config.writeLogMaxAgeMs == 5'400'000);
  CHECK_THAT(toToml(both.invocation->config), Contains("write_log_max_age = \"90m\""));
  Config back;
  REQUIRE(applyToml(toToml(both.invocation->config), "printed", back).ok());
  CHECK(back.writeLogMaxAgeMs == 5'400'000);
  CHECK_THAT(toToml(Config{}), Contains("write_log_max_age = \"0\""));

  Config alone;
  alone.writeLogMaxAgeMs = 60'000;
  Status refused = checkCombination(alone);
  CHECK(refused.code() == Code::kInvalidArgument);
  CHECK_THAT(refused.message(), Contains("write_log_max_age = 1m needs write_log_window"));
  CHECK(parse({"--write-log-max-age", "1m"}).exitCode == 2);
  CHECK(parse({}, {{"SLUICE_WRITE_LOG_MAX_AGE", "1m"}, {"SLUICE_WRITE_LOG_WINDOW", "64MiB"}})
            .invocation);

  Config c;
  Status bad = applyToml("write_log_max_age = \"an hour\"\n", "f.toml", c);
  CHECK(bad.code() == Code::kInvalidArgument);
  CHECK_THAT(bad.message(), Contains("write_log_max_age = \"an hour\""));
  CHECK_THAT(bad.message(), Contains("ms, s, m, h or d"));
  CHECK(parse({"--write-log-window", "1GiB", "--write-log-max-age", "-5s"}).exitCode == 2);
}

TEST_CASE("replication settings: a leader or a follower, with ids, on loopback, fsync'd",
          "[daemon]") {
  auto leader = parse({"--replication-listen", "127.0.0.1:0", "--min-insync", "3",
                       "--replica-timeout", "750ms", "--cluster-id", "eu-1.orders"});
  REQUIRE(leader.invocation);
  CHECK(leader.invocation->config.minInsync == 3);
  CHECK(leader.invocation->config.replicaTimeoutMs == 750);
  CHECK(leader.invocation->config.clusterId == "eu-1.orders");
  Config back;
  REQUIRE(applyToml(toToml(leader.invocation->config), "printed", back).ok());
  CHECK(back.minInsync == 3);
  CHECK(back.replicationListen == "127.0.0.1:0");
  auto follower = parse({}, {{"SLUICE_FOLLOW", "127.0.0.1:7402"}, {"SLUICE_BROKER_ID", "b2"}});
  REQUIRE(follower.invocation);
  CHECK(follower.invocation->config.follow == "127.0.0.1:7402");

  auto refusal = [](Config config) { return checkCombination(config).message(); };
  Config both;
  both.replicationListen = "127.0.0.1:7402";
  both.follow = "127.0.0.1:7403";
  both.brokerId = "b1";
  CHECK_THAT(refusal(both), Contains("either leads"));
  Config anonymous;
  anonymous.follow = "127.0.0.1:7402";
  CHECK_THAT(refusal(anonymous), Contains("follow = \"127.0.0.1:7402\" needs broker_id"));
  Config async;
  async.replicationListen = "127.0.0.1:7402";
  async.durability = "async";
  CHECK_THAT(refusal(async), Contains("cannot be replicated"));
  Config open;
  open.replicationListen = "0.0.0.0:7402";
  CHECK_THAT(refusal(open), Contains("not a loopback address"));

  CHECK(parse({"--min-insync", "0"}).exitCode == 2);
  CHECK(parse({"--min-insync", "17"}).exitCode == 2);
  CHECK(parse({"--replica-timeout", "10ms"}).exitCode == 2);
  CHECK(parse({"--cluster-id", "has space"}).exitCode == 2);
  std::string longId(65, 'b');
  CHECK(parse({"--broker-id", longId.c_str()}).exitCode == 2);
  CHECK(parse({"--follow", "127.0.0.1:0", "--broker-id", "b1"}).exitCode == 2);
  // A cluster member: etcd decides its role, so it needs an id and fixed ports.
  auto member = parse({"--etcd", "127.0.0.1:2379,127.0.0.1:2381", "--broker-id", "b1", "--listen",
                       "127.0.0.1:7400", "--replication-listen", "127.0.0.1:7402"});
  REQUIRE(member.invocation);
  CHECK(member.invocation->config.etcd == "127.0.0.1:2379,127.0.0.1:2381");
  Config noId;
  noId.etcd = "127.0.0.1:2379";
  noId.replicationListen = "127.0.0.1:7402";
  CHECK_THAT(refusal(noId), Contains("needs broker_id"));
  Config anyPort = noId;
  anyPort.brokerId = "b1";
  anyPort.listen = "127.0.0.1:0";
  CHECK_THAT(refusal(anyPort), Contains("needs fixed ports"));
  Config told = anyPort;
  told.listen = "127.0.0.1:7400";
  told.follow = "127.0.0.1:7502";
  CHECK_THAT(refusal(told), Contains("etcd decides whom to follow"));
  CHECK(parse({"--etcd", "127.0.0.1:2379,"}).exitCode == 2);
  CHECK(parse({"--etcd", "nohost"}).exitCode == 2);
  Config fromFile;
  CHECK(applyToml("min_insync = 2\nreplica_timeout = \"2s\"\n", "f.toml", fromFile).ok());
  CHECK(fromFile.replicaTimeoutMs == 2000);
}

TEST_CASE("a TLS listener takes its files from every layer and needs a certificate and key",
          "[daemon]") {
  auto flags = parse({"--listen-tls", "0.0.0.0:7443", "--tls-cert", "/etc/sluice/tls.crt",
                      "--tls-key", "/etc/sluice/tls.key", "--allow-anonymous"});
  REQUIRE(flags.invocation);
  CHECK(flags.invocation->config.listenTls == "0.0.0.0:7443");
  CHECK(flags.invocation->config.tlsCert == "/etc/sluice/tls.crt");
  CHECK(flags.invocation->config.tlsClientCa.empty());
  Config back;
  REQUIRE(applyToml(toToml(flags.invocation->config), "printed", back).ok());
  CHECK(back.tlsKey == "/etc/sluice/tls.key");
  CHECK(applyToml(toToml(Config{}), "printed", back).ok());  // Empty values read back too.

  auto env = parse({}, {{"SLUICE_LISTEN_TLS", "127.0.0.1:0"},
                        {"SLUICE_TLS_CERT", "c.pem"},
                        {"SLUICE_TLS_KEY", "k.pem"},
                        {"SLUICE_TLS_CLIENT_CA", "ca.pem"}});
  REQUIRE(env.invocation);
  CHECK(env.invocation->config.tlsClientCa == "ca.pem");

  Config noKey;
  noKey.listenTls = "127.0.0.1:7443";
  noKey.tlsCert = "c.pem";
  CHECK_THAT(checkCombination(noKey).message(), Contains("needs tls_cert and tls_key"));
  Config noListener;
  noListener.tlsClientCa = "ca.pem";
  CHECK_THAT(checkCombination(noListener).message(),
             Contains("tls_client_ca = \"ca.pem\" is used only by the TLS listener"));
  CHECK(parse({"--listen-tls", "7443"}).exitCode == 2);  // Not HOST:PORT.
  CHECK(parse({"--tls-cert", "c.pem", "--tls-key", "k.pem"}).exitCode == 2);
}

TEST_CASE("a listener off loopback needs client certificates or allow_anonymous", "[daemon]") {
  for (const char* loopback : {"127.0.0.1:7400", "127.9.9.9:0", "localhost:7400", "[::1]:7400"}) {
    INFO(loopback);
    CHECK(parse({"--listen", loopback}).invocation);
  }
  for (const char* open : {"0.0.0.0:7400", "[::]:7400", "10.1.2.3:7400", "broker.lan:7400"}) {
    INFO(open);
    CHECK(parse({"--listen", open}).exitCode == 2);
    CHECK(parse({"--listen", open, "--allow-anonymous"}).invocation);
    Config config;
    config.listen = open;
    CHECK_THAT(checkCombination(config).message(),
               Contains("is not a loopback address") && Contains("allow_anonymous = true"));
  }
  // A TLS listener that requires client certificates knows its callers.
  const std::vector<const char*> tls = {"--listen-tls", "0.0.0.0:7443", "--tls-cert",
                                        "c.pem",        "--tls-key",    "k.pem"};
  CHECK(parse(tls).exitCode == 2);
  auto mtls = tls;
  mtls.insert(mtls.end(), {"--tls-client-ca", "ca.pem"});
  CHECK(parse(mtls).invocation);
  // Every layer, as for any other key.
  CHECK(parse({"--listen", "0.0.0.0:1"}, {{"SLUICE_ALLOW_ANONYMOUS", "1"}}).invocation);
  Config fromFile;
  REQUIRE(applyToml("allow_anonymous = true\n", "f.toml", fromFile).ok());
  CHECK(fromFile.allowAnonymous);
  CHECK_FALSE(applyToml("allow_anonymous = \"yes\"\n", "f.toml", fromFile).ok());
  CHECK_THAT(toToml(Config{}), Contains("allow_anonymous = false"));
}

}  // namespace
}  // namespace sluice::daemon
