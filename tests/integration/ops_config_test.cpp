// sluiced's configuration through the real binary: --print-config shows the effective
// settings of defaults < --config file < flags < SLUICE_* variables; invalid configuration
// exits 2 with one message naming the key, the value and what is allowed. And its logs.

#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "integration/broker_fixture.h"
#include "support/http_get.h"
#include "support/run_process.h"

namespace sluice::test {
namespace {

using Catch::Matchers::Contains;

std::string writeFile(const TempDir& dir, const std::string& name, const std::string& text) {
  std::string path = dir.path() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

RunResult sluiced(std::vector<std::string> args, std::map<std::string, std::string> env = {}) {
  args.insert(args.begin(), sluicedPath());
  return runProcess(args, "", std::move(env), std::chrono::seconds(20));
}

// key -> value text of a printed configuration.
std::map<std::string, std::string> settingsOf(const std::string& toml) {
  std::map<std::string, std::string> out;
  std::istringstream lines(toml);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto eq = line.find(" = ");
    REQUIRE(eq != std::string::npos);
    out[line.substr(0, eq)] = line.substr(eq + 3);
  }
  return out;
}

TEST_CASE("sluiced --print-config shows the defaults as TOML and exits 0", "[integration][ops]") {
  auto run = sluiced({"--print-config"});
  INFO(run.stderrText);
  REQUIRE(run.exitCode == 0);
  auto settings = settingsOf(run.stdoutText);
  CHECK(settings == std::map<std::string, std::string>{{"data", "\"./data\""},
                                                       {"listen", "\"127.0.0.1:7400\""},
                                                       {"admin", "\"127.0.0.1:7401\""},
                                                       {"max_storage", "\"auto\""},
                                                       {"log_level", "\"info\""},
                                                       {"log_format", "\"text\""},
                                                       {"auto_create_topics", "false"},
                                                       {"durability", "\"sync\""},
                                                       {"max_connections", "10000"},
                                                       {"write_log_window", "\"0\""},
                                                       {"write_log_max_age", "\"0\""},
                                                       {"replication_listen", "\"\""},
                                                       {"follow", "\"\""},
                                                       {"etcd", "\"\""},
                                                       {"cluster_id", "\"sluice\""},
                                                       {"broker_id", "\"\""},
                                                       {"min_insync", "2"},
                                                       {"replica_timeout", "\"5s\""},
                                                       {"listen_tls", "\"\""},
                                                       {"tls_cert", "\"\""},
                                                       {"tls_key", "\"\""},
                                                       {"tls_client_ca", "\"\""},
                                                       {"allow_anonymous", "false"},
                                                       {"auth", "false"},
                                                       {"admin_hosts", "\"\""},
                                                       {"admin_token_file", "\"\""}});
}

TEST_CASE("configuration precedence: defaults < file < flags < SLUICE_* variables",
          "[integration][ops]") {
  TempDir dir;
  std::string file = writeFile(dir, "sluice.toml",
                               "# every key\n"
                               "data = \"/srv/from-file\"\n"
                               "listen = \"127.0.0.1:1111\"\n"
                               "admin = \"127.0.0.1:2222\"\n"
                               "max_storage = \"1GiB\"\n"
                               "log_level = \"debug\"\n"
                               "log_format = \"json\"\n"
                               "auto_create_topics = true\n"
                               "durability = \"sync\"\n"
                               "write_log_window = \"32MiB\"\n"
                               "write_log_max_age = \"24h\"\n");
  auto run = sluiced({"--config", file, "--print-config", "--listen", "127.0.0.1:3333", "--admin",
                      "127.0.0.1:4444", "--auto-create-topics=false", "--max-storage", "20GiB"},
                     {{"SLUICE_ADMIN", "127.0.0.1:5555"},
                      {"SLUICE_MAX_STORAGE", "536870912"},
                      {"SLUICE_DURABILITY", "async"},
                      {"SLUICE_LOG_LEVEL", ""}});
  INFO(run.stderrText);
  REQUIRE(run.exitCode == 0);
  auto settings = settingsOf(run.stdoutText);
  CHECK(settings["data"] == "\"/srv/from-file\"");     // file over default
  CHECK(settings["log_level"] == "\"debug\"");         // file (an empty variable is unset)
  CHECK(settings["log_format"] == "\"json\"");         // file
  CHECK(settings["listen"] == "\"127.0.0.1:3333\"");   // flag over file
  CHECK(settings["auto_create_topics"] == "false");    // flag over file
  CHECK(settings["admin"] == "\"127.0.0.1:5555\"");    // variable over flag and file
  CHECK(settings["max_storage"] == "\"512MiB\"");      // variable over flag and file
  CHECK(settings["durability"] == "\"async\"");        // variable over file
  CHECK(settings["write_log_window"] == "\"32MiB\"");  // file
  CHECK(settings["write_log_max_age"] == "\"1d\"");    // file

  // The printed configuration is itself a valid config file that means the same.
  std::string printed = writeFile(dir, "printed.toml", run.stdoutText);
  auto again = sluiced({"--config", printed, "--print-config"});
  INFO(again.stderrText);
  REQUIRE(again.exitCode == 0);
  CHECK(settingsOf(again.stdoutText) == settings);
}

TEST_CASE("the sample deploy/sluice.toml is a valid configuration", "[integration][ops]") {
  auto run = sluiced({"--config", SLUICE_SOURCE_DIR "/deploy/sluice.toml", "--print-config"});
  INFO(run.stderrText);
  REQUIRE(run.exitCode == 0);
  auto settings = settingsOf(run.stdoutText);
  CHECK(settings.size() == 26);
  CHECK(settings["max_storage"] == "\"20GiB\"");
}

TEST_CASE("sluiced --help states the precedence and names every variable", "[integration][ops]") {
  auto run = sluiced({"--help"});
  REQUIRE(run.exitCode == 0);
  CHECK_THAT(run.stdoutText, Contains("--config") && Contains("--print-config") &&
                                 Contains("--log-format") && Contains("SLUICE_DATA") &&
                                 Contains("SLUICE_AUTO_CREATE_TOPICS"));
  CHECK_THAT(run.stdoutText,
             Contains("built-in defaults < --config file < command-line flags < SLUICE_* "
                      "environment variables"));
}

TEST_CASE("invalid configuration exits 2 with one message naming key, value and what is allowed",
          "[integration][ops]") {
  TempDir dir;
  struct Case {
    std::string what;
    std::vector<std::string> args;
    std::map<std::string, std::string> env;
    std::vector<std::string> mentions;
  };
  auto file = [&](const std::string& text) { return writeFile(dir, "bad.toml", text); };
  std::vector<Case> cases = {
      {"bad level in the file",
       {"--config", file("log_level = \"loud\"\n")},
       {},
       {"log_level", "\"loud\"", "bad.toml line 1", "trace, debug, info, warn, error"}},
  };
  // Each case rewrites bad.toml, so run them one by one.
  auto check = [&](const Case& c) {
    INFO(c.what);
    auto run = sluiced(c.args, c.env);
    INFO("stderr: " << run.stderrText);
    CHECK(run.exitCode == 2);
    CHECK(run.stdoutText.empty());
    CHECK(std::count(run.stderrText.begin(), run.stderrText.end(), '\n') == 1);
    CHECK_THAT(run.stderrText, Contains("invalid configuration"));
    for (const auto& m : c.mentions)
      CHECK_THAT(run.stderrText, Contains(m));
  };
  check(cases[0]);
  check({"unknown key",
         {"--config", file("data = \"d\"\nmax_storge = 5\n")},
         {},
         {"unknown key \"max_storge\"", "line 2", "max_storage", "auto_create_topics"}});
  check({"a table",
         {"--config", file("[server]\nlisten = \"x:1\"\n")},
         {},
         {"unknown key \"server\"", "allowed keys"}});
  check({"wrong type",
         {"--config", file("auto_create_topics = \"yes\"\n")},
         {},
         {"auto_create_topics", "\"yes\"", "true or false"}});
  check({"size too small in the file",
         {"--config", file("max_storage = 1024\n")},
         {},
         {"max_storage", "1024", "at least 16MiB"}});
  check({"not TOML", {"--config", file("listen = \n")}, {}, {"bad.toml line 1", "TOML"}});
  check(
      {"missing file", {"--config", dir.path() + "/nope.toml"}, {}, {"nope.toml", "cannot read"}});
  check({"bad flag",
         {"--durability", "maybe"},
         {},
         {"durability", "\"maybe\"", "--durability", "sync or async"}});
  check({"bad address flag", {"--listen", "7400"}, {}, {"listen", "\"7400\"", "HOST:PORT"}});
  check({"bad log format", {"--log-format", "xml"}, {}, {"log_format", "\"xml\"", "text or json"}});
  check({"bad variable",
         {},
         {{"SLUICE_MAX_STORAGE", "lots"}},
         {"max_storage", "\"lots\"", "SLUICE_MAX_STORAGE", "KiB, MiB, GiB"}});
  check({"bad boolean variable",
         {},
         {{"SLUICE_AUTO_CREATE_TOPICS", "maybe"}},
         {"auto_create_topics", "SLUICE_AUTO_CREATE_TOPICS", "true or false"}});
  check({"bad port variable",
         {},
         {{"SLUICE_ADMIN", "127.0.0.1:70000"}},
         {"admin", "\"127.0.0.1:70000\"", "0 to 65535"}});
  // A bad value is an error even when a higher layer would override it.
  check({"bad file under a good flag",
         {"--config", file("durability = \"fast\"\n"), "--durability", "sync"},
         {},
         {"durability", "\"fast\""}});
}

TEST_CASE("a broker started with --config uses the file", "[integration][ops]") {
  TempDir dir;
  std::string file =
      writeFile(dir, "sluice.toml", "auto_create_topics = true\nmax_storage = \"48MiB\"\n");
  TempDir data;
  auto broker = SluicedProcess::start(data.path(), {"--config", file});
  Client client = connectTo(*broker);
  auto published = client.producer().publish("created.by.publish", "x");
  INFO(outcome(published));
  CHECK(published.ok());
  auto stats = client.admin().stats();
  REQUIRE(stats.ok());
  CHECK(stats.value().storageLimit == 48ull << 20);
}

TEST_CASE("sluiced --log-format json writes one parsable object per line, quotes included",
          "[integration][ops]") {
  TempDir data;
  auto broker =
      SluicedProcess::start(data.path(), {"--log-format", "json", "--log-level", "debug"});
  {
    Client client = connectTo(*broker);
    REQUIRE(client.admin().createTopic("orders").ok());
    REQUIRE(client.admin().deleteTopic("orders").ok());
  }
  // HTTP on the RPC port: the broker drops the connection and logs a warning whose reason
  // holds quotes.
  try {
    httpRequest(broker->rpcPort(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
                std::chrono::seconds(5));
  } catch (const std::exception&) {
    // Whatever the broker answered (a capnp abort message) is not HTTP; only the log matters.
  }
  REQUIRE(eventually(
      [&] { return broker->stderrText().find("connection dropped") != std::string::npos; }));
  REQUIRE(broker->stop() == 0);

  std::istringstream lines(broker->stderrText());
  std::string line;
  std::set<std::string> seen;  // "level logger msg-prefix"
  int count = 0;
  while (std::getline(lines, line)) {
    INFO("line: " << line);
    nlohmann::json object;
    REQUIRE_NOTHROW(object = nlohmann::json::parse(line));
    REQUIRE(object.is_object());
    CHECK(object.size() == 4);
    for (const char* key : {"ts", "level", "logger", "msg"}) {
      REQUIRE(object.contains(key));
      CHECK(object[key].is_string());
    }
    CHECK_THAT(object["ts"].get<std::string>(),
               Catch::Matchers::Matches(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)"));
    std::string msg = object["msg"];
    seen.insert(object["level"].get<std::string>() + " " + object["logger"].get<std::string>() +
                " " + msg.substr(0, msg.find(' ', msg.find(' ') + 1)));
    if (msg.rfind("connection dropped", 0) == 0) CHECK_THAT(msg, Contains("reason=\""));
    ++count;
  }
  INFO("seen: " << [&] {
    std::string all;
    for (const auto& s : seen)
      all += s + "; ";
    return all;
  }());
  CHECK(count > 5);
  CHECK(seen.count("debug rpc connection opened") == 1);
  CHECK(seen.count("debug rpc connection closed") == 1);
  CHECK(seen.count("info core topic created") == 1);
  CHECK(seen.count("info core topic deleted") == 1);
  CHECK(seen.count("warn rpc connection dropped") == 1);
  CHECK(seen.count("info main stopped") == 1);
}

}  // namespace
}  // namespace sluice::test
