// The `sluice` binary against a real sluiced: stdout, stderr and exit code of every command
// in both output modes, and of each kind of failure.

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>

#include "cli_run.h"
#include "encoding.h"
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

// A running broker and a way to run `sluice --broker <it> ARGS...`.
struct Broker {
  TempDir data;
  std::unique_ptr<SluicedProcess> process = SluicedProcess::start(data.path());

  RunResult run(std::vector<std::string> args, const std::string& input = "",
                std::map<std::string, std::string> env = {}) const {
    args.insert(args.begin(), {SLUICE_CLI_BIN, "--broker", process->address()});
    RunResult result = sluice::test::runProcess(args, input, env);
    REQUIRE_FALSE(result.timedOut);
    return result;
  }

  // Runs a command that must succeed and returns its stdout.
  std::string ok(std::vector<std::string> args, const std::string& input = "") const {
    RunResult result = run(args, input);
    INFO("stderr: " << result.stderrText);
    REQUIRE(result.exitCode == 0);
    return result.stdoutText;
  }

  Json okJson(std::vector<std::string> args) const {
    args.push_back("--json");
    return Json::parse(ok(args));
  }
};

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<Json> jsonLines(const std::string& text) {
  std::vector<Json> docs;
  for (const auto& line : splitLines(text))
    docs.push_back(Json::parse(line));
  return docs;
}

// The payload of a consume/peek JSON line, decoding payload_base64.
std::string payloadOf(const Json& message) {
  if (message.contains("payload")) return message["payload"].get<std::string>();
  auto decoded = sluice::cli::base64Decode(message["payload_base64"].get<std::string>());
  REQUIRE(decoded.has_value());
  return *decoded;
}

// An address on which nothing accepts connections: a bound socket that never listens.
class ClosedPort {
 public:
  ClosedPort() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t length = sizeof addr;
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &length) == 0);
    address_ = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  }
  ~ClosedPort() { ::close(fd_); }
  const std::string& address() const { return address_; }

 private:
  int fd_ = -1;
  std::string address_;
};

// What a program printed on a terminal, and how it ended.
struct TerminalRun {
  int exitCode = -1;
  std::string output;  // stdout and stderr as the terminal showed them.
};

// Runs `sluice ARGS...` on a pseudo-terminal (so stdin, stdout and stderr are all terminals).
// For each step in order, waits until the output contains step.first, then types step.second.
// Every wait is bounded; a missed step fails the test.
TerminalRun runOnTerminal(std::vector<std::string> args,
                          const std::vector<std::pair<std::string, std::string>>& steps) {
  args.insert(args.begin(), SLUICE_CLI_BIN);
  std::vector<char*> argv;
  for (auto& arg : args)
    argv.push_back(arg.data());
  argv.push_back(nullptr);
  int master = -1;
  pid_t pid = ::forkpty(&master, nullptr, nullptr, nullptr);
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  TerminalRun run;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  size_t step = 0;
  bool open = true;
  while (open && std::chrono::steady_clock::now() < deadline) {
    while (step < steps.size() && run.output.find(steps[step].first) != std::string::npos) {
      const std::string& typed = steps[step].second;
      REQUIRE(::write(master, typed.data(), typed.size()) == static_cast<ssize_t>(typed.size()));
      ++step;
    }
    pollfd fd{master, POLLIN, 0};
    if (::poll(&fd, 1, 100) <= 0) continue;
    char buffer[4096];
    ssize_t n = ::read(master, buffer, sizeof buffer);
    if (n > 0) {
      run.output.append(buffer, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      open = false;  // EIO: the child closed the terminal.
    }
  }
  if (open) ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::close(master);
  INFO("terminal output: " << run.output);
  REQUIRE_FALSE(open);
  REQUIRE(step == steps.size());
  run.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return run;
}

const std::regex kTimestamp(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)");

}  // namespace

TEST_CASE("help shows usage with an example for the CLI and each command", "[cli]") {
  RunResult top = runCli({"--help"});
  CHECK(top.exitCode == 0);
  CHECK_THAT(top.stdoutText, Contains("Usage:"));
  CHECK_THAT(top.stdoutText, Contains("Examples:"));
  for (const char* command : {"topics", "publish", "consume", "peek", "groups", "stats"}) {
    CHECK_THAT(top.stdoutText, Contains(command));
  }
  const std::vector<std::vector<std::string>> commands = {{"topics", "list"},
                                                          {"topics", "create"},
                                                          {"topics", "describe"},
                                                          {"topics", "subjects"},
                                                          {"topics", "delete"},
                                                          {"topics", "purge"},
                                                          {"publish"},
                                                          {"consume"},
                                                          {"peek"},
                                                          {"groups", "list"},
                                                          {"groups", "describe"},
                                                          {"groups", "create"},
                                                          {"groups", "reset"},
                                                          {"groups", "delete"},
                                                          {"stats"},
                                                          {"routes", "test"}};
  for (auto command : commands) {
    std::string name = command.back();
    INFO(name);
    command.push_back("--help");
    RunResult help = runCli(command);
    CHECK(help.exitCode == 0);
    CHECK_THAT(help.stdoutText, Contains("Example"));
    CHECK_THAT(help.stdoutText, Contains("sluice " + command.front()));
  }
}

TEST_CASE("usage errors exit 2 and name the bad value", "[cli]") {
  // None of these reach a broker: the address is never used.
  ClosedPort nowhere;
  auto run = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"--broker", nowhere.address()});
    return runCli(args);
  };
  SECTION("no command") {
    RunResult result = run({});
    CHECK(result.exitCode == 2);
    CHECK_THAT(result.stderrText, StartsWith("error: "));
  }
  SECTION("an unknown command") {
    CHECK(run({"topicz", "list"}).exitCode == 2);
  }
  SECTION("a bad duration") {
    RunResult result = run({"--timeout", "5x", "stats"});
    CHECK(result.exitCode == 2);
    CHECK_THAT(result.stderrText, Contains("invalid duration \"5x\""));
    CHECK(result.stdoutText.empty());
    RunResult wait = run({"consume", "t", "--group", "g", "--wait", "3parsecs"});
    CHECK(wait.exitCode == 2);
    CHECK_THAT(wait.stderrText, Contains("\"3parsecs\""));
    CHECK_THAT(run({"topics", "create", "t", "--max-age", "1.5h"}).stderrText,
               Contains("invalid duration \"1.5h\""));
  }
  SECTION("a bad size") {
    RunResult result = run({"topics", "create", "t", "--max-bytes", "10XB"});
    CHECK(result.exitCode == 2);
    CHECK_THAT(result.stderrText, Contains("invalid size \"10XB\""));
    RunResult size = run({"publish", "t", "--count", "1", "--size", "lots"});
    CHECK(size.exitCode == 2);
    CHECK_THAT(size.stderrText, Contains("\"lots\""));
  }
  SECTION("a bad position") {
    RunResult result = run({"groups", "reset", "t", "g", "--to", "yesterday"});
    CHECK(result.exitCode == 2);
    CHECK_THAT(result.stderrText, Contains("invalid position \"yesterday\""));
  }
  SECTION("a required option is missing") {
    CHECK(run({"consume", "t"}).exitCode == 2);
    CHECK(run({"groups", "reset", "t", "g"}).exitCode == 2);
  }
  SECTION("conflicting options") {
    CHECK(run({"consume", "t", "-g", "g", "--no-ack", "--nack"}).exitCode == 2);
    CHECK(run({"peek", "t", "--from", "3", "--last", "2"}).exitCode == 2);
    CHECK(run({"publish", "t", "msg", "--lines"}).exitCode == 2);
  }
  SECTION("publish needs exactly one of TOPIC and --subject") {
    RunResult neither = run({"publish", "--lines"});
    CHECK(neither.exitCode == 2);
    CHECK_THAT(neither.stderrText, Contains("needs a TOPIC or --subject SUBJECT"));
    CHECK(neither.stdoutText.empty());
    RunResult both = run({"publish", "orders", "--subject", "orders.eu", "msg"});
    CHECK(both.exitCode == 2);
    CHECK_THAT(both.stderrText,
               Contains("not both") && Contains("\"orders\"") && Contains("\"orders.eu\""));
    // With --subject a lone argument is the MESSAGE, so a TOPIC beside --lines/--file conflicts.
    RunResult lines = run({"publish", "orders", "--subject", "orders.eu", "--lines"});
    CHECK(lines.exitCode == 2);
    CHECK_THAT(lines.stderrText, Contains("\"orders\" is the MESSAGE") && Contains("--lines"));
    CHECK(run({"publish", "orders", "--subject", "s", "--file", "/dev/null"}).exitCode == 2);
    CHECK(run({"publish", "--subject", "s", "--count", "3", "--size", "1", "m"}).exitCode == 2);
    RunResult empty = run({"publish", "--subject", "", "m"});
    CHECK(empty.exitCode == 2);
    CHECK_THAT(empty.stderrText, Contains("--subject: the subject is empty"));
    CHECK(run({"publish", "--subject"}).exitCode == 2);
    RunResult bench = run({"bench", "publish", "load", "--subject", "load", "--count", "1"});
    CHECK(bench.exitCode == 2);
    CHECK_THAT(bench.stderrText, Contains("not both"));
    CHECK_THAT(run({"bench", "publish", "--count", "1"}).stderrText,
               Contains("needs a TOPIC or --subject SUBJECT"));
  }
  SECTION("an empty pattern list, or an empty pattern in one") {
    for (std::vector<std::string> args :
         {std::vector<std::string>{"topics", "create", "t", "--subjects", ""},
          {"topics", "create", "t", "--subjects", "a.>,,b.*"},
          {"topics", "create", "t", "--subjects", "a.>", "--subjects", "b.*,"},
          {"topics", "subjects", "t", "--add", ","},
          {"topics", "subjects", "t", "--remove", ""},
          {"groups", "create", "t", "g", "--filter", ""},
          {"consume", "t", "-g", "g", "--filter", "a,"}}) {
      INFO(args[0] << " " << args[1] << " " << args.back());
      RunResult result = run(args);
      CHECK(result.exitCode == 2);
      CHECK_THAT(result.stderrText, Contains("invalid pattern list \"" + args.back() + "\""));
      CHECK(result.stdoutText.empty());
    }
    CHECK(run({"topics", "subjects", "t", "--add"}).exitCode == 2);
    CHECK(run({"routes", "test"}).exitCode == 2);
  }
  SECTION("a malformed broker address") {
    RunResult result = runCli({"--broker", "localhost", "stats"});
    CHECK(result.exitCode == 2);
    CHECK_THAT(result.stderrText, Contains("\"localhost\""));
  }
}

TEST_CASE("an unreachable broker exits 3 with connectFailed", "[cli]") {
  ClosedPort nowhere;
  RunResult result = runCli({"--broker", nowhere.address(), "topics", "list"});
  CHECK(result.exitCode == 3);
  CHECK_THAT(result.stderrText, StartsWith("error: connectFailed: "));
  CHECK(result.stdoutText.empty());
  CHECK(splitLines(result.stderrText).size() == 1);

  SECTION("the address may come from SLUICE_BROKER") {
    RunResult fromEnv = runCli({"stats"}, {{"SLUICE_BROKER", nowhere.address()}});
    CHECK(fromEnv.exitCode == 3);
    CHECK_THAT(fromEnv.stderrText, Contains(nowhere.address()));
  }
}

TEST_CASE("SLUICE_BROKER selects the broker when --broker is absent", "[cli]") {
  Broker broker;
  RunResult result = runCli({"stats", "--json"}, {{"SLUICE_BROKER", broker.process->address()}});
  INFO(result.stderrText);
  CHECK(result.exitCode == 0);
  CHECK(Json::parse(result.stdoutText).contains("version"));
}

TEST_CASE("a list of brokers: the first that accepts answers; none: connectFailed names all",
          "[cli]") {
  Broker broker;
  ClosedPort follower, other;
  // Followers of a cluster serve no clients: the leader is the one that accepts.
  RunResult result =
      runCli({"--broker", follower.address() + "," + broker.process->address(), "stats", "--json"});
  INFO(result.stderrText);
  CHECK(result.exitCode == 0);
  CHECK(Json::parse(result.stdoutText).contains("version"));

  RunResult none = runCli({"--broker", follower.address() + "," + other.address(), "stats"});
  CHECK(none.exitCode == 3);
  CHECK_THAT(none.stderrText, StartsWith("error: connectFailed: no broker of "));
  CHECK_THAT(none.stderrText, Contains(other.address()));
  RunResult bad = runCli({"--broker", broker.process->address() + ",nohost", "stats"});
  CHECK(bad.exitCode == 2);
}

TEST_CASE("topics create, list and describe in both output modes", "[cli]") {
  Broker broker;
  Json created = broker.okJson({"topics", "create", "orders.dead", "--work-queue"});
  CHECK(created["name"] == "orders.dead");
  CHECK(created["settings"]["work_queue"] == true);
  CHECK(broker.ok({"topics", "create", "orders", "--max-age", "7d", "--max-bytes", "10MiB",
                   "--max-messages", "1000", "--max-message-size", "64KiB", "--max-deliveries", "5",
                   "--dead-letter", "orders.dead", "--dedup-window", "5m"}) ==
        "created topic \"orders\"\n");

  SECTION("describe shows the settings with units") {
    std::string human = broker.ok({"topics", "describe", "orders"});
    CHECK_THAT(human, Contains("Topic:"));
    CHECK_THAT(human, Contains("orders"));
    CHECK_THAT(human, Contains("7d"));
    CHECK_THAT(human, Contains("10 MiB"));
    CHECK_THAT(human, Contains("64 KiB"));
    CHECK_THAT(human, Contains("orders.dead"));
    CHECK_THAT(human, Contains("5m"));
    CHECK_THAT(human, Contains("No consumer groups."));

    Json doc = broker.okJson({"topics", "describe", "orders"});
    CHECK(doc["name"] == "orders");
    CHECK(doc["settings"]["max_age_ms"] == 7 * 86400000LL);
    CHECK(doc["settings"]["max_bytes"] == 10 * 1024 * 1024);
    CHECK(doc["settings"]["max_messages"] == 1000);
    CHECK(doc["settings"]["max_message_size"] == 64 * 1024);
    CHECK(doc["settings"]["max_deliveries"] == 5);
    CHECK(doc["settings"]["dead_letter_topic"] == "orders.dead");
    CHECK(doc["settings"]["dedup_window_ms"] == 300000);
    CHECK(doc["messages"] == 0);
    CHECK(doc["last_offset"] == 0);
    CHECK(doc["groups"].empty());
    CHECK(std::regex_match(doc["created"].get<std::string>(), kTimestamp));
  }
  SECTION("list shows every topic") {
    std::vector<std::string> lines = splitLines(broker.ok({"topics", "list"}));
    REQUIRE(lines.size() == 3);
    CHECK_THAT(lines[0], StartsWith("TOPIC"));
    CHECK_THAT(lines[0], Contains("MESSAGES"));
    CHECK_THAT(lines[1] + lines[2], Contains("orders.dead"));

    Json doc = broker.okJson({"topics", "list"});
    REQUIRE(doc["topics"].size() == 2);
    std::set<std::string> names;
    for (const auto& topic : doc["topics"])
      names.insert(topic["name"].get<std::string>());
    CHECK(names == std::set<std::string>{"orders", "orders.dead"});
  }
  SECTION("creating an existing topic fails unless --if-not-exists") {
    RunResult again = broker.run({"topics", "create", "orders"});
    CHECK(again.exitCode == 1);
    CHECK_THAT(again.stderrText, StartsWith("error: topicExists: "));
    CHECK(broker.ok({"topics", "create", "orders", "--if-not-exists"}) ==
          "topic \"orders\" already exists\n");
  }
}

TEST_CASE("broker errors exit 1 with one line naming the code", "[cli]") {
  Broker broker;
  SECTION("unknown topic") {
    for (std::vector<std::string> args : {std::vector<std::string>{"topics", "describe", "ordrs"},
                                          {"topics", "delete", "ordrs", "--yes"},
                                          {"publish", "ordrs", "x"},
                                          {"consume", "ordrs", "-g", "g", "--count", "1"},
                                          {"peek", "ordrs"},
                                          {"groups", "list", "ordrs"}}) {
      INFO(args[0] << " " << args[1]);
      RunResult result = broker.run(args);
      CHECK(result.exitCode == 1);
      CHECK_THAT(result.stderrText, StartsWith("error: topicNotFound: "));
      CHECK_THAT(result.stderrText, Contains("ordrs"));
      CHECK(splitLines(result.stderrText).size() == 1);
      CHECK(result.stdoutText.empty());
    }
  }
  SECTION("bad topic name") {
    RunResult result = broker.run({"topics", "create", "bad name!"});
    CHECK(result.exitCode == 1);
    CHECK_THAT(result.stderrText, StartsWith("error: invalidArgument: "));
    CHECK(splitLines(result.stderrText).size() == 1);
  }
  SECTION("unknown group") {
    broker.ok({"topics", "create", "orders"});
    for (std::vector<std::string> args :
         {std::vector<std::string>{"groups", "describe", "orders", "nobody"},
          {"groups", "reset", "orders", "nobody", "--to", "earliest"},
          {"groups", "delete", "orders", "nobody"}}) {
      INFO(args[1]);
      RunResult result = broker.run(args);
      CHECK(result.exitCode == 1);
      CHECK_THAT(result.stderrText, StartsWith("error: groupNotFound: "));
    }
  }
}

TEST_CASE("publish prints one offset per message in input order", "[cli]") {
  Broker broker;
  broker.ok({"topics", "create", "orders"});

  SECTION("an argument, stdin, a file and lines") {
    CHECK(broker.ok({"publish", "orders", "first"}) == "1\n");
    CHECK(broker.ok({"publish", "orders"}, "whole\ninput\n") == "2\n");
    TempDir dir;
    std::string path = dir.path() + "/payload.bin";
    std::ofstream(path, std::ios::binary) << "from a file";
    CHECK(broker.ok({"publish", "orders", "--file", path}) == "3\n");
    CHECK(broker.ok({"publish", "orders", "--lines"}, "a\nb\n\nc") == "4\n5\n6\n7\n");

    auto messages = jsonLines(broker.ok({"peek", "orders", "--count", "7", "--json"}));
    REQUIRE(messages.size() == 7);
    std::vector<std::string> payloads;
    for (const auto& m : messages)
      payloads.push_back(payloadOf(m));
    CHECK(payloads ==
          std::vector<std::string>{"first", "whole\ninput\n", "from a file", "a", "b", "", "c"});
  }
  SECTION("--json prints offset and duplicate; --id deduplicates") {
    auto first = jsonLines(broker.ok({"publish", "orders", "x", "--id", "m1", "--json"}));
    REQUIRE(first.size() == 1);
    CHECK(first[0] == Json{{"offset", 1}, {"duplicate", false}});
    auto again = jsonLines(broker.ok({"publish", "orders", "x", "--id", "m1", "--json"}));
    CHECK(again[0] == Json{{"offset", 1}, {"duplicate", true}});

    auto lines =
        jsonLines(broker.ok({"publish", "orders", "--lines", "--id", "b", "--json"}, "p\nq\n"));
    REQUIRE(lines.size() == 2);
    CHECK(lines[0]["offset"] == 2);
    CHECK(lines[1]["offset"] == 3);
    auto replay =
        jsonLines(broker.ok({"publish", "orders", "--lines", "--id", "b", "--json"}, "p\nq\n"));
    REQUIRE(replay.size() == 2);
    CHECK(replay[0] == Json{{"offset", 2}, {"duplicate", true}});
    CHECK(replay[1] == Json{{"offset", 3}, {"duplicate", true}});
  }
  SECTION("key and headers reach the message") {
    broker.ok({"publish", "orders", "body", "--key", "customer-7", "--header", "source=web",
               "--header", "trace=a=b"});
    auto messages = jsonLines(broker.ok({"peek", "orders", "--json"}));
    REQUIRE(messages.size() == 1);
    CHECK(messages[0]["key"] == "customer-7");
    CHECK(messages[0]["headers"] == Json{{"source", "web"}, {"trace", "a=b"}});
    CHECK(messages[0]["payload"] == "body");
  }
  SECTION("a message over the topic's size limit fails with messageTooLarge") {
    broker.ok({"topics", "create", "small", "--max-message-size", "8"});
    RunResult result = broker.run({"publish", "small", "this is longer than eight"});
    CHECK(result.exitCode == 1);
    CHECK_THAT(result.stderrText, StartsWith("error: messageTooLarge: "));
    CHECK(result.stdoutText.empty());

    // With --lines, stdout holds exactly the offsets acknowledged before the failed line.
    RunResult lines = broker.run({"publish", "small", "--lines"}, "ok\nmuch too long\nok\n");
    CHECK(lines.exitCode == 1);
    CHECK_THAT(lines.stderrText, StartsWith("error: messageTooLarge: "));
    CHECK(splitLines(lines.stderrText).size() == 1);
    std::vector<std::string> offsets = splitLines(lines.stdoutText);
    CHECK(offsets.size() <= 1);
    CHECK_THAT(lines.stderrText,
               Contains("(input line " + std::to_string(offsets.size() + 1) + " was not stored"));
    Json topic = broker.okJson({"topics", "describe", "small"});
    CHECK(topic["messages"].get<size_t>() >= offsets.size());
  }
}

TEST_CASE("publish --count prints a summary and stores every message", "[cli]") {
  Broker broker;
  broker.ok({"topics", "create", "load"});
  std::string human = broker.ok({"publish", "load", "--count", "500", "--size", "1KiB"});
  CHECK_THAT(human, StartsWith("published 500 messages (500 KiB) in "));
  CHECK_THAT(human, Contains("msg/s"));
  CHECK_THAT(human, Contains("offsets 1..500"));

  Json summary = broker.okJson({"publish", "load", "--count", "100"});
  CHECK(summary["messages"] == 100);
  CHECK(summary["bytes"] == 100 * 100);
  CHECK(summary["first_offset"] == 501);
  CHECK(summary["last_offset"] == 600);
  CHECK(summary.contains("seconds"));
  CHECK(summary.contains("messages_per_second"));
  CHECK(broker.okJson({"topics", "describe", "load"})["messages"] == 600);
  auto last = jsonLines(broker.ok({"peek", "load", "--last", "1", "--json"}));
  REQUIRE(last.size() == 1);
  CHECK(payloadOf(last[0]).size() == 100);
}

TEST_CASE("binary lines round-trip through publish --lines and consume --json", "[cli]") {
  Broker broker;
  broker.ok({"topics", "create", "bin"});
  std::vector<std::string> payloads;
  std::string allBytes;
  for (int b = 0; b < 256; ++b) {
    if (b != '\n') allBytes += static_cast<char>(b);
  }
  payloads.push_back(allBytes);                            // Every byte but '\n'.
  payloads.push_back(std::string("\xff\xfe\x00\x01", 4));  // Not UTF-8.
  payloads.push_back("caf\xc3\xa9 \xe2\x82\xac");          // UTF-8 text.
  payloads.push_back(std::string("nul\0inside", 10));      // Valid UTF-8 with NUL.
  payloads.push_back("\xc3");                              // Truncated sequence.
  std::string input;
  for (const auto& p : payloads)
    input += p + "\n";

  CHECK(broker.ok({"publish", "bin", "--lines"}, input) == "1\n2\n3\n4\n5\n");
  auto messages =
      jsonLines(broker.ok({"consume", "bin", "--group", "g", "--count", "5", "--json"}));
  REQUIRE(messages.size() == payloads.size());
  for (size_t i = 0; i < payloads.size(); ++i) {
    INFO("message " << i);
    CHECK(messages[i]["offset"] == i + 1);
    CHECK(payloadOf(messages[i]) == payloads[i]);
    CHECK(messages[i]["deliveries"] == 1);
    CHECK(messages[i]["key"].is_null());
    CHECK(messages[i]["headers"] == Json::object());
    CHECK(std::regex_match(messages[i]["timestamp"].get<std::string>(), kTimestamp));
  }
  CHECK(messages[0].contains("payload_base64"));
  CHECK(messages[1].contains("payload_base64"));
  CHECK(messages[2]["payload"] == "caf\xc3\xa9 \xe2\x82\xac");
  CHECK(messages[3].contains("payload"));
  CHECK(messages[4].contains("payload_base64"));
  // All were acknowledged after printing.
  Json group = broker.okJson({"groups", "describe", "bin", "g"});
  CHECK(group["pending"] == 0);
  CHECK(group["position"] == 6);
}

TEST_CASE("consume prints, acks, and honours --count, --wait, --no-ack and --nack", "[cli]") {
  Broker broker;
  broker.ok({"topics", "create", "orders"});
  broker.ok({"publish", "orders", "--lines"}, "one\ntwo\nthree\n");

  SECTION("human output shows offset, time and payload") {
    std::string out = broker.ok({"consume", "orders", "--group", "billing", "--count", "2"});
    std::vector<std::string> lines = splitLines(out);
    REQUIRE(lines.size() == 4);
    CHECK_THAT(lines[0], StartsWith("offset 1  "));
    CHECK(std::regex_search(lines[0], kTimestamp));
    CHECK(lines[1] == "one");
    CHECK_THAT(lines[2], StartsWith("offset 2  "));
    CHECK(lines[3] == "two");
    // The next consumer of the group continues after the acknowledged messages.
    auto rest = jsonLines(
        broker.ok({"consume", "orders", "--group", "billing", "--wait", "300ms", "--json"}));
    REQUIRE(rest.size() == 1);
    CHECK(rest[0]["offset"] == 3);
  }
  SECTION("--wait stops after silence, even before --count") {
    auto got = jsonLines(
        broker.ok({"consume", "orders", "-g", "g", "--count", "10", "--wait", "300ms", "--json"}));
    CHECK(got.size() == 3);
  }
  SECTION("--no-ack leaves messages to be redelivered") {
    auto first = jsonLines(
        broker.ok({"consume", "orders", "-g", "g", "--count", "3", "--no-ack", "--json"}));
    REQUIRE(first.size() == 3);
    CHECK(first[0]["deliveries"] == 1);
    auto second = jsonLines(broker.ok({"consume", "orders", "-g", "g", "--count", "3", "--json"}));
    REQUIRE(second.size() == 3);
    CHECK(second[0]["offset"] == 1);
    CHECK(second[0]["deliveries"] == 2);
    CHECK(broker.okJson({"groups", "describe", "orders", "g"})["pending"] == 0);
  }
  SECTION("--nack redelivers") {
    auto first =
        jsonLines(broker.ok({"consume", "orders", "-g", "g", "--count", "1", "--nack", "--json"}));
    REQUIRE(first.size() == 1);
    auto second = jsonLines(broker.ok({"consume", "orders", "-g", "g", "--count", "1", "--json"}));
    REQUIRE(second.size() == 1);
    CHECK(second[0]["offset"] == 1);
    // --count fetches exactly one: the nacked message was not delivered again to the first.
    CHECK(second[0]["deliveries"] == 2);
  }
  SECTION("--count takes exactly N: no other message is delivered or left held") {
    auto first = jsonLines(broker.ok({"consume", "orders", "-g", "g", "--count", "1", "--json"}));
    REQUIRE(first.size() == 1);
    CHECK(broker.okJson({"groups", "describe", "orders", "g"})["pending"] == 0);
    auto rest = jsonLines(broker.ok({"consume", "orders", "-g", "g", "--count", "2", "--json"}));
    REQUIRE(rest.size() == 2);
    CHECK(rest[0]["offset"] == 2);
    CHECK(rest[0]["deliveries"] == 1);  // Its first delivery: the first command never took it.
    CHECK(rest[1]["deliveries"] == 1);
  }
  SECTION("--from latest starts a new group after the existing messages") {
    auto none = jsonLines(broker.ok(
        {"consume", "orders", "-g", "tail", "--from", "latest", "--wait", "300ms", "--json"}));
    CHECK(none.empty());
    broker.ok({"publish", "orders", "four"});
    auto four = jsonLines(broker.ok({"consume", "orders", "-g", "tail", "--count", "1", "--json"}));
    REQUIRE(four.size() == 1);
    CHECK(four[0]["payload"] == "four");
  }
  SECTION("--from 2 starts a new group at that offset") {
    auto got = jsonLines(
        broker.ok({"consume", "orders", "-g", "mid", "--from", "2", "--count", "1", "--json"}));
    REQUIRE(got.size() == 1);
    CHECK(got[0]["offset"] == 2);
  }
}

TEST_CASE("publish --delay and --at hold messages back from every group until their time",
          "[cli]") {
  Broker broker;
  broker.ok({"topics", "create", "reminders"});
  // Long enough that two more CLI runs finish first even on a slow sanitizer build.
  broker.ok({"publish", "reminders", "--delay", "3s", "later"});
  broker.ok({"publish", "reminders", "--at", "2001-01-01T00:00:00Z", "past"});  // At once.
  auto first =
      jsonLines(broker.ok({"consume", "reminders", "-g", "app", "--count", "1", "--json"}));
  REQUIRE(first.size() == 1);
  CHECK(first[0]["payload"] == "past");
  CHECK_FALSE(first[0].contains("deliver_at_ms"));
  auto second =
      jsonLines(broker.ok({"consume", "reminders", "-g", "app", "--count", "1", "--json"}));
  REQUIRE(second.size() == 1);
  CHECK(second[0]["payload"] == "later");
  int64_t deliverAt = second[0]["deliver_at_ms"];
  CHECK(deliverAt == second[0]["timestamp_ms"].get<int64_t>() + 3000);

  RunResult tooLate = broker.run({"publish", "reminders", "--delay", "31d", "x"});
  CHECK(tooLate.exitCode == 1);
  CHECK_THAT(tooLate.stderrText, Contains("invalidArgument") && Contains("at most 30 days"));
  CHECK(broker.run({"publish", "reminders", "--delay", "1s", "--at", "2030-01-01T00:00:00Z", "x"})
            .exitCode == 2);
}

TEST_CASE("publish --ttl and topics create --default-ttl expire messages; describe counts them",
          "[cli]") {
  Broker broker;
  broker.ok({"topics", "create", "quotes", "--default-ttl", "1h"});
  CHECK_THAT(broker.ok({"topics", "describe", "quotes"}), Contains("Default TTL:        1h"));
  broker.ok({"publish", "quotes", "--ttl", "1ms", "gone"});
  broker.ok({"publish", "quotes", "kept"});
  auto peeked = jsonLines(broker.ok({"peek", "quotes", "--count", "2", "--json"}));
  REQUIRE(peeked.size() == 2);
  int64_t expiresAt = peeked[0]["expires_at_ms"];
  CHECK(expiresAt == peeked[0]["timestamp_ms"].get<int64_t>() + 1);
  CHECK(peeked[1]["expires_at_ms"] == peeked[1]["timestamp_ms"].get<int64_t>() + 3600 * 1000);
  std::this_thread::sleep_until(std::chrono::system_clock::time_point(
      std::chrono::milliseconds(expiresAt + 1)));  // The condition is the time itself.
  auto got = jsonLines(broker.ok({"consume", "quotes", "-g", "app", "--count", "1", "--json"}));
  REQUIRE(got.size() == 1);
  CHECK(got[0]["payload"] == "kept");
  Json group = broker.okJson({"groups", "describe", "quotes", "app"});
  CHECK(group["expired"] == 1);

  RunResult zero = broker.run({"publish", "quotes", "--ttl", "0s", "x"});
  CHECK(zero.exitCode == 1);
  CHECK_THAT(zero.stderrText, Contains("invalidArgument") && Contains("1 ms to 30 days"));
  RunResult orphan = broker.run({"topics", "create", "other", "--dead-letter-expired"});
  CHECK(orphan.exitCode == 1);
  CHECK_THAT(orphan.stderrText, Contains("needs a dead-letter topic"));
}

TEST_CASE("consume --exec acks by the command's exit status and renews long jobs' leases",
          "[cli]") {
  Broker broker;
  broker.ok({"topics", "create", "jobs"});
  broker.ok({"publish", "jobs", "--key", "k1", "--id", "job-1", "first"});
  TempDir out;
  const std::string payload = out.path() + "/payload", env = out.path() + "/env";

  // The job lasts over three ack timeouts: renewed, it stays this consumer's and is acked.
  RunResult ran = broker.run({"consume", "jobs", "-g", "workers", "--count", "1", "--ack-timeout",
                              "200ms", "--exec",
                              "sleep 0.7; cat > " + payload +
                                  "; echo \"$SLUICE_TOPIC $SLUICE_OFFSET $SLUICE_DELIVERIES "
                                  "$SLUICE_KEY $SLUICE_ID\" > " +
                                  env});
  INFO("stderr: " << ran.stderrText);
  CHECK(ran.exitCode == 0);
  CHECK(ran.stderrText.find("warning") == std::string::npos);
  CHECK(readFile(payload) == "first");
  CHECK(readFile(env) == "jobs 1 1 k1 job-1\n");
  Json group = broker.okJson({"groups", "describe", "jobs", "workers"});
  CHECK(group["pending"] == 0);
  CHECK(group["redelivered"] == 0);

  // A failing command nacks: the message comes again, as its second delivery.
  broker.ok({"publish", "jobs", "second"});
  RunResult failed =
      broker.run({"consume", "jobs", "-g", "workers", "--count", "1", "--exec", "exit 3"});
  CHECK(failed.exitCode == 0);
  CHECK_THAT(failed.stderrText, Contains("offset 2: the command exited 3; nacked"));
  auto again = jsonLines(broker.ok({"consume", "jobs", "-g", "workers", "--count", "1", "--json"}));
  REQUIRE(again.size() == 1);
  CHECK(again[0]["offset"] == 2);
  CHECK(again[0]["deliveries"] == 2);

  RunResult usage = broker.run({"consume", "jobs", "-g", "w", "--exec", "true", "--no-ack"});
  CHECK(usage.exitCode == 2);
}

TEST_CASE("peek reads by offset without touching any group", "[cli]") {
  Broker broker;
  broker.ok({"topics", "create", "orders"});
  std::string input;
  for (int i = 1; i <= 20; ++i)
    input += "m" + std::to_string(i) + "\n";
  broker.ok({"publish", "orders", "--lines"}, input);

  auto offsets = [](const std::vector<Json>& messages) {
    std::vector<uint64_t> out;
    for (const auto& m : messages)
      out.push_back(m["offset"].get<uint64_t>());
    return out;
  };
  auto first = jsonLines(broker.ok({"peek", "orders", "--json"}));
  CHECK(offsets(first) == std::vector<uint64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  CHECK(first[0]["deliveries"] == 0);
  CHECK(offsets(jsonLines(broker.ok({"peek", "orders", "--from", "18", "--json"}))) ==
        std::vector<uint64_t>{18, 19, 20});
  auto last = jsonLines(broker.ok({"peek", "orders", "--last", "3", "--json"}));
  CHECK(offsets(last) == std::vector<uint64_t>{18, 19, 20});
  CHECK(last[2]["payload"] == "m20");
  CHECK(offsets(jsonLines(broker.ok({"peek", "orders", "--from", "5", "-n", "2", "--json"}))) ==
        std::vector<uint64_t>{5, 6});

  std::vector<std::string> human = splitLines(broker.ok({"peek", "orders", "--last", "1"}));
  REQUIRE(human.size() == 2);
  CHECK_THAT(human[0], StartsWith("offset 20  "));
  CHECK(human[1] == "m20");

  RunResult beyond = broker.run({"peek", "orders", "--from", "100"});
  CHECK(beyond.exitCode == 0);
  CHECK(beyond.stdoutText.empty());
  CHECK_THAT(beyond.stderrText, Contains("no messages"));

  CHECK(broker.okJson({"groups", "list", "orders"})["groups"].empty());
}

TEST_CASE("groups list and describe in both output modes", "[cli]") {
  Broker broker;
  broker.ok({"topics", "create", "orders"});
  broker.ok({"publish", "orders", "--lines"}, "a\nb\nc\n");
  CHECK(broker.ok({"consume", "orders", "-g", "billing", "--from", "latest", "--wait", "200ms"})
            .empty());
  broker.ok({"publish", "orders", "--lines"}, "d\ne\n");

  std::string human = broker.ok({"groups", "list", "orders"});
  std::vector<std::string> lines = splitLines(human);
  REQUIRE(lines.size() == 2);
  CHECK_THAT(lines[0], StartsWith("GROUP"));
  CHECK_THAT(lines[0], Contains("LAG TIME"));
  CHECK_THAT(lines[1], StartsWith("billing"));

  Json list = broker.okJson({"groups", "list", "orders"});
  CHECK(list["topic"] == "orders");
  REQUIRE(list["groups"].size() == 1);
  CHECK(list["groups"][0]["name"] == "billing");
  CHECK(list["groups"][0]["position"] == 4);
  CHECK(list["groups"][0]["lag_messages"] == 2);

  Json group = broker.okJson({"groups", "describe", "orders", "billing"});
  CHECK(group["topic"] == "orders");
  CHECK(group["name"] == "billing");
  CHECK(group["pending"] == 0);
  CHECK(group["consumers"].empty());

  std::string describe = broker.ok({"groups", "describe", "orders", "billing"});
  CHECK_THAT(describe, Contains("Group:"));
  CHECK_THAT(describe, Contains("billing"));
  CHECK_THAT(describe, Contains("Lag:"));
  CHECK_THAT(describe, Contains("2 messages"));

  Json topic = broker.okJson({"topics", "describe", "orders"});
  REQUIRE(topic["groups"].size() == 1);
  CHECK(topic["groups"][0]["name"] == "billing");
  CHECK(topic["messages"] == 5);
  CHECK(topic["last_offset"] == 5);
  CHECK_THAT(broker.ok({"topics", "describe", "orders"}), Contains("billing"));
}

TEST_CASE("groups describe lists a connected consumer with its in-flight count", "[cli]") {
  Broker broker;
  broker.ok({"topics", "create", "orders"});
  broker.ok({"publish", "orders", "--lines"}, "a\nb\n");
  sluice::Client client = sluice::test::connectTo(*broker.process);
  sluice::SubscribeOptions options;
  options.prefetch = 1;
  auto consumer = client.subscribe("orders", "workers", options);
  REQUIRE(consumer.ok());
  auto message = consumer.value().receive(std::chrono::seconds(10));
  REQUIRE(message.ok());

  Json group;
  REQUIRE(sluice::test::eventually([&] {
    group = broker.okJson({"groups", "describe", "orders", "workers"});
    return group["consumers"].size() == 1 && group["consumers"][0]["in_flight"] == 1;
  }));
  CHECK(group["consumers"][0]["id"] == consumer.value().id());
  CHECK(group["pending"] == 1);
  std::string human = broker.ok({"groups", "describe", "orders", "workers"});
  CHECK_THAT(human, Contains("IN FLIGHT"));
  CHECK_THAT(human, Contains(std::to_string(consumer.value().id())));

  SECTION("reset refuses while consumers are connected") {
    RunResult busy = broker.run({"groups", "reset", "orders", "workers", "--to", "earliest"});
    CHECK(busy.exitCode == 1);
    CHECK_THAT(busy.stderrText, StartsWith("error: groupBusy: "));
  }
}

TEST_CASE("groups create --key-ordered makes a group that holds a key's next message back",
          "[cli]") {
  Broker broker;
  broker.ok({"topics", "create", "orders"});
  CHECK_THAT(broker.ok({"groups", "create", "orders", "plain"}), Contains("unordered"));
  CHECK_THAT(broker.ok({"groups", "create", "orders", "billing", "--key-ordered"}),
             Contains("key-ordered"));
  RunResult refused = broker.run({"groups", "create", "orders", "plain", "--key-ordered"});
  CHECK(refused.exitCode == 1);
  CHECK_THAT(refused.stderrText,
             Contains("invalidArgument") && Contains("exists without key ordering"));
  broker.ok({"publish", "orders", "--key", "c1", "first"});
  broker.ok({"publish", "orders", "--key", "c1", "second"});
  broker.ok({"publish", "orders", "third"});
  // While "first" is in flight (never acked), "second" is held back: the unkeyed one passes.
  auto taken = jsonLines(
      broker.ok({"consume", "orders", "-g", "billing", "--count", "2", "--no-ack", "--json"}));
  REQUIRE(taken.size() == 2);
  CHECK(taken[0]["payload"] == "first");
  CHECK(taken[1]["payload"] == "third");
  Json group = broker.okJson({"groups", "describe", "orders", "billing"});
  CHECK(group["ordering"] == "key");
  CHECK(group["key_blocked"] == 1);
  CHECK_THAT(broker.ok({"groups", "describe", "orders", "billing"}),
             Contains("Ordering:") && Contains("by key"));
  // Both come back (their consumer left); "second" only once "first" is acked.
  auto rest =
      jsonLines(broker.ok({"consume", "orders", "-g", "billing", "--count", "3", "--json"}));
  REQUIRE(rest.size() == 3);
  CHECK(rest[0]["payload"] == "first");
  CHECK(rest[1]["payload"] == "third");
  CHECK(rest[2]["payload"] == "second");
}

// Subject routing -------------------------------------------------------------------------------

TEST_CASE("topics create --subjects, topics subjects and routes test show and change routing",
          "[cli]") {
  Broker broker;
  CHECK(broker.ok({"topics", "create", "orders", "--subjects", "orders.>"}) ==
        "created topic \"orders\" capturing orders.>\n");
  // Comma-separated and repeated lists add up.
  Json audit =
      broker.okJson({"topics", "create", "audit", "--subjects", ">,x.*", "--subjects", "y"});
  CHECK(audit["settings"]["subjects"] == Json::array({">", "x.*", "y"}));
  broker.ok({"topics", "create", "plain"});

  SECTION("describe and list show the patterns") {
    CHECK_THAT(broker.ok({"topics", "describe", "orders"}),
               Contains("Subjects:") && Contains("orders.>"));
    CHECK_THAT(broker.ok({"topics", "describe", "plain"}), Contains("plain (its own name only)"));
    CHECK(broker.okJson({"topics", "describe", "orders"})["settings"]["subjects"] ==
          Json::array({"orders.>"}));
    std::map<std::string, Json> subjects;
    Json list = broker.okJson({"topics", "list"});
    for (const auto& topic : list["topics"])
      subjects[topic["name"].get<std::string>()] = topic["settings"]["subjects"];
    CHECK(subjects["orders"] == Json::array({"orders.>"}));
    CHECK(subjects["audit"] == Json::array({">", "x.*", "y"}));
    CHECK(subjects["plain"] == Json::array());
    std::string table = broker.ok({"topics", "list"});
    CHECK_THAT(table, Contains("SUBJECTS") && Contains(">,x.*,y"));
  }
  SECTION("routes test prints each capturing topic on a line of its own") {
    std::vector<std::string> topics =
        splitLines(broker.ok({"routes", "test", "orders.eu.created"}));
    CHECK(std::set<std::string>(topics.begin(), topics.end()) ==
          std::set<std::string>{"audit", "orders"});
    CHECK(topics.size() == 2);
    CHECK(broker.ok({"routes", "test", "plain"}) == "audit\nplain\n");
    Json doc = broker.okJson({"routes", "test", "orders.eu.created"});
    CHECK(doc["subject"] == "orders.eu.created");
    CHECK(doc["topics"].size() == 2);
    // `>` needs at least one token after "orders", so "orders" alone is audit's only.
    CHECK(broker.ok({"routes", "test", "orders"}) == "audit\n");
  }
  SECTION("routes test with no capturing topic: empty stdout, a note, exit 0") {
    broker.ok({"topics", "subjects", "audit", "--remove", ">"});
    RunResult none = broker.run({"routes", "test", "billing.paid"});
    CHECK(none.exitCode == 0);
    CHECK(none.stdoutText.empty());
    CHECK_THAT(none.stderrText, Contains("no topic captures subject \"billing.paid\""));
    Json doc = broker.okJson({"routes", "test", "billing.paid"});
    CHECK(doc == Json{{"subject", "billing.paid"}, {"topics", Json::array()}});
  }
  SECTION("topics subjects --add and --remove print the resulting set") {
    CHECK(broker.ok({"topics", "subjects", "orders", "--add", "billing.>,refunds.*"}) ==
          "orders.>\nbilling.>\nrefunds.*\n");
    Json doc = broker.okJson({"topics", "subjects", "orders", "--remove", "orders.>", "--remove",
                              "refunds.*", "--add", "carts.>"});
    CHECK(doc["topic"] == "orders");
    std::vector<std::string> now = doc["subjects"].get<std::vector<std::string>>();
    CHECK(std::set<std::string>(now.begin(), now.end()) ==
          std::set<std::string>{"billing.>", "carts.>"});
    CHECK(broker.ok({"routes", "test", "billing.paid"}) == "audit\norders\n");
    CHECK(broker.ok({"routes", "test", "orders.eu.created"}) == "audit\n");
    // Without --add or --remove it only shows them.
    CHECK(splitLines(broker.ok({"topics", "subjects", "orders"})).size() == 2);
    // Removing every pattern leaves the topic capturing only its own name.
    broker.ok({"topics", "subjects", "orders", "--remove", "billing.>,carts.>"});
    CHECK(broker.ok({"topics", "subjects", "orders"}) ==
          "No subject patterns: topic \"orders\" captures only its own name.\n");
    CHECK(broker.okJson({"topics", "subjects", "orders"})["subjects"] == Json::array());
  }
  SECTION("bad patterns and unknown topics are the broker's errors, exit 1") {
    for (std::vector<std::string> args :
         {std::vector<std::string>{"topics", "subjects", "orders", "--add", "ord*"},
          {"topics", "subjects", "orders", "--add", "orders.>.x"},
          {"topics", "subjects", "orders", "--remove", "never.added"},
          {"topics", "create", "bad", "--subjects", "a..b"},
          {"routes", "test", "orders.*"}}) {
      INFO(args.back());
      RunResult result = broker.run(args);
      CHECK(result.exitCode == 1);
      CHECK_THAT(result.stderrText, StartsWith("error: invalidArgument: "));
      CHECK_THAT(result.stderrText, Contains(args.back()));
      CHECK(splitLines(result.stderrText).size() == 1);
      CHECK(result.stdoutText.empty());
    }
    RunResult missing = broker.run({"topics", "subjects", "ordrs", "--add", "a.>"});
    CHECK(missing.exitCode == 1);
    CHECK_THAT(missing.stderrText, StartsWith("error: topicNotFound: "));
    CHECK(broker.okJson({"topics", "describe", "orders"})["settings"]["subjects"] ==
          Json::array({"orders.>"}));
  }
}

TEST_CASE("publish --subject stores each message in every capturing topic", "[cli]") {
  Broker broker;
  broker.ok({"topics", "create", "orders", "--subjects", "orders.>"});
  broker.ok({"topics", "create", "audit", "--subjects", ">"});
  broker.ok({"publish", "audit", "direct"});  // audit's offsets now run one ahead of orders'.

  SECTION("one message: one line with each topic's offset") {
    CHECK(broker.ok({"publish", "--subject", "orders.eu.created", "{\"id\":7}"}) ==
          "audit=2 orders=1\n");
    CHECK(broker.ok({"publish", "--subject", "orders.us.created"}, "from stdin") ==
          "audit=3 orders=2\n");
    CHECK(broker.ok({"publish", "--subject", "carts.new", "only audit"}) == "audit=4\n");
    auto doc = jsonLines(broker.ok(
        {"publish", "--subject", "orders.eu.paid", "p", "--id", "pay-1", "--key", "c7", "--json"}));
    REQUIRE(doc.size() == 1);
    CHECK(doc[0] == Json{{"subject", "orders.eu.paid"},
                         {"topics",
                          {{"audit", {{"offset", 5}, {"duplicate", false}}},
                           {"orders", {{"offset", 3}, {"duplicate", false}}}}}});
    // Dedup by id applies per topic.
    auto again = jsonLines(broker.ok(
        {"publish", "--subject", "orders.eu.paid", "p", "--id", "pay-1", "--key", "c7", "--json"}));
    CHECK(again[0]["topics"]["orders"] == Json{{"offset", 3}, {"duplicate", true}});
    CHECK(again[0]["topics"]["audit"] == Json{{"offset", 5}, {"duplicate", true}});

    // Both copies carry the subject, the key and the payload; a direct publish's subject is
    // its topic's name.
    auto orders = jsonLines(broker.ok({"peek", "orders", "--json"}));
    REQUIRE(orders.size() == 3);
    CHECK(orders[0]["subject"] == "orders.eu.created");
    CHECK(orders[0]["payload"] == "{\"id\":7}");
    CHECK(orders[1]["subject"] == "orders.us.created");
    CHECK(orders[2]["subject"] == "orders.eu.paid");
    CHECK(orders[2]["key"] == "c7");
    auto audit = jsonLines(broker.ok({"peek", "audit", "--json"}));
    REQUIRE(audit.size() == 5);
    CHECK(audit[0]["subject"] == "audit");
    CHECK(audit[3]["subject"] == "carts.new");
    CHECK(audit[4]["payload"] == "p");
    std::string human = broker.ok({"peek", "orders", "--count", "1"});
    CHECK_THAT(human, StartsWith("offset 1  "));
    CHECK_THAT(human, Contains("  subject=orders.eu.created"));
  }
  SECTION("--lines prints one line per message in input order") {
    CHECK(broker.ok({"publish", "--subject", "orders.bulk", "--lines"}, "a\nb\n\nc") ==
          "audit=2 orders=1\naudit=3 orders=2\naudit=4 orders=3\naudit=5 orders=4\n");
    auto lines = jsonLines(
        broker.ok({"publish", "--subject", "orders.bulk", "--lines", "--json"}, "x\ny\n"));
    REQUIRE(lines.size() == 2);
    CHECK(lines[1]["topics"]["orders"]["offset"] == 6);
    auto stored = jsonLines(broker.ok({"peek", "orders", "--json"}));
    std::vector<std::string> payloads;
    for (const auto& m : stored)
      payloads.push_back(payloadOf(m));
    CHECK(payloads == std::vector<std::string>{"a", "b", "", "c", "x", "y"});
  }
  SECTION("--count prints a summary with each topic's offsets") {
    std::string human = broker.ok({"publish", "--subject", "orders.load", "--count", "300"});
    CHECK_THAT(human, StartsWith("published 300 messages (29 KiB) to subject \"orders.load\""));
    CHECK_THAT(human, Contains("audit offsets 2..301") && Contains("orders offsets 1..300"));
    Json summary = broker.okJson({"publish", "--subject", "orders.load", "--count", "10"});
    CHECK(summary["subject"] == "orders.load");
    CHECK(summary["messages"] == 10);
    CHECK(summary["bytes"] == 1000);
    CHECK(summary["topics"]["orders"] ==
          Json{{"first_offset", 301}, {"last_offset", 310}, {"duplicates", 0}});
    CHECK(summary["topics"]["audit"]["last_offset"] == 311);
    CHECK(broker.okJson({"topics", "describe", "orders"})["messages"] == 310);
  }
  SECTION("a refusal by one capturing topic stores the message in none") {
    broker.ok({"topics", "create", "small", "--subjects", "orders.>", "--max-message-size", "8"});
    RunResult result = broker.run({"publish", "--subject", "orders.eu", "longer than eight"});
    CHECK(result.exitCode == 1);
    CHECK_THAT(result.stderrText, StartsWith("error: messageTooLarge: "));
    CHECK(result.stdoutText.empty());
    // The refused line comes first: whether the CLI sends the two lines in one request or one
    // after the other (it batches what it has read when the previous request is answered),
    // nothing is stored and nothing is sent after the refusal.
    RunResult lines =
        broker.run({"publish", "--subject", "orders.eu", "--lines"}, "much too long\nok\n");
    CHECK(lines.exitCode == 1);
    CHECK_THAT(lines.stderrText, StartsWith("error: messageTooLarge: "));
    CHECK(splitLines(lines.stderrText).size() == 1);
    CHECK(lines.stdoutText.empty());
    CHECK_THAT(lines.stderrText, Contains("(input line 1 was not stored, nor any after it"));
    CHECK(broker.okJson({"topics", "describe", "orders"})["messages"] == 0);
    CHECK(broker.okJson({"topics", "describe", "small"})["messages"] == 0);
    CHECK(broker.okJson({"topics", "describe", "audit"})["messages"] == 1);
  }
}

TEST_CASE("publish --subject that no topic captures fails with noRoute and stores nothing",
          "[cli]") {
  Broker broker;
  broker.ok({"topics", "create", "orders", "--subjects", "orders.>"});
  for (std::vector<std::string> args :
       {std::vector<std::string>{"publish", "--subject", "billing.paid", "x"},
        {"publish", "--subject", "orders", "x"},  // `orders.>` needs a token after "orders".
        {"publish", "--subject", "billing.paid", "--count", "5"},
        {"bench", "publish", "--subject", "billing.paid", "--count", "5"}}) {
    INFO(args[0] << " " << args[2] << " " << args.back());
    RunResult result = broker.run(args);
    CHECK(result.exitCode == 1);
    CHECK_THAT(result.stderrText, Contains("error: noRoute: "));
    CHECK_THAT(result.stderrText, Contains("\"" + args[args[0] == "bench" ? 3 : 2] + "\""));
    CHECK(result.stdoutText.empty());
  }
  RunResult lines = broker.run({"publish", "--subject", "billing.paid", "--lines"}, "a\nb\n");
  CHECK(lines.exitCode == 1);
  CHECK_THAT(lines.stderrText, StartsWith("error: noRoute: "));
  CHECK_THAT(lines.stderrText, Contains("input line 1 was not stored"));
  CHECK(broker.okJson({"topics", "describe", "orders"})["messages"] == 0);
  CHECK(broker.okJson({"stats"})["messages"] == 0);
}

TEST_CASE("consume --filter and groups create --filter deliver only matching subjects", "[cli]") {
  Broker broker;
  broker.ok({"topics", "create", "orders", "--subjects", "orders.>"});
  broker.ok({"publish", "--subject", "orders.eu.created", "eu-1"});
  broker.ok({"publish", "--subject", "orders.us.created", "us-1"});
  broker.ok({"publish", "--subject", "orders.eu.paid", "eu-2"});
  broker.ok({"publish", "--subject", "orders.uk.created", "uk-1"});

  SECTION("consume creates the group with the filter and receives only matches") {
    auto got = jsonLines(broker.ok(
        {"consume", "orders", "-g", "eu", "--filter", "orders.eu.*", "--wait", "500ms", "--json"}));
    REQUIRE(got.size() == 2);
    CHECK(got[0]["payload"] == "eu-1");
    CHECK(got[0]["subject"] == "orders.eu.created");
    CHECK(got[0]["offset"] == 1);
    CHECK(got[1]["payload"] == "eu-2");
    CHECK(got[1]["offset"] == 3);
    Json group = broker.okJson({"groups", "describe", "orders", "eu"});
    CHECK(group["filter"] == Json::array({"orders.eu.*"}));
    CHECK(group["pending"] == 0);
    CHECK(group["lag_messages"] == 0);
    // A later match arrives; a later non-match does not, and is no lag of this group.
    broker.ok({"publish", "--subject", "orders.us.paid", "us-2"});
    broker.ok({"publish", "--subject", "orders.eu.refunded", "eu-3"});
    std::string human =
        broker.ok({"consume", "orders", "-g", "eu", "--filter", "orders.eu.*", "--count", "1"});
    CHECK_THAT(human, StartsWith("offset 6  "));
    CHECK_THAT(human, Contains("  subject=orders.eu.refunded") && Contains("\neu-3\n"));
    CHECK(broker.okJson({"groups", "describe", "orders", "eu"})["lag_messages"] == 0);
    // Joining with another filter is refused; joining with none is fine.
    RunResult other =
        broker.run({"consume", "orders", "-g", "eu", "--filter", "orders.us.*", "--wait", "200ms"});
    CHECK(other.exitCode == 1);
    CHECK_THAT(other.stderrText, StartsWith("error: invalidArgument: "));
    CHECK(broker.run({"consume", "orders", "-g", "eu", "--wait", "200ms"}).exitCode == 0);
  }
  SECTION("several patterns, comma-separated or repeated") {
    auto got = jsonLines(broker.ok({"consume", "orders", "-g", "created", "--filter",
                                    "orders.eu.created,orders.us.*", "--filter", "orders.uk.>",
                                    "--count", "3", "--json"}));
    REQUIRE(got.size() == 3);
    CHECK(got[0]["payload"] == "eu-1");
    CHECK(got[1]["payload"] == "us-1");
    CHECK(got[2]["payload"] == "uk-1");
  }
  SECTION("groups create --filter; describe and list show it; lag counts matches only") {
    CHECK(broker.ok({"groups", "create", "orders", "us", "--filter", "orders.us.*"}) ==
          "group \"us\" on topic \"orders\": position 1, unordered, filter orders.us.*\n");
    broker.ok({"groups", "create", "orders", "all"});
    Json group = broker.okJson({"groups", "describe", "orders", "us"});
    CHECK(group["filter"] == Json::array({"orders.us.*"}));
    CHECK(group["lag_messages"] == 1);
    CHECK(broker.okJson({"groups", "describe", "orders", "all"})["lag_messages"] == 4);
    CHECK_THAT(broker.ok({"groups", "describe", "orders", "us"}),
               Contains("Filter:") && Contains("orders.us.*") && Contains("(matching the filter)"));
    Json list = broker.okJson({"groups", "list", "orders"});
    std::map<std::string, Json> filters;
    for (const auto& g : list["groups"])
      filters[g["name"].get<std::string>()] = g["filter"];
    CHECK(filters["us"] == Json::array({"orders.us.*"}));
    CHECK(filters["all"] == Json::array());
    CHECK_THAT(broker.ok({"groups", "list", "orders"}),
               Contains("FILTER") && Contains("orders.us.*"));
    auto got = jsonLines(broker.ok({"consume", "orders", "-g", "us", "--wait", "300ms", "--json"}));
    REQUIRE(got.size() == 1);
    CHECK(got[0]["payload"] == "us-1");
  }
  SECTION("--exec gets the subject in SLUICE_SUBJECT") {
    TempDir out;
    const std::string env = out.path() + "/env";
    broker.ok({"consume", "orders", "-g", "uk", "--filter", "orders.uk.*", "--count", "1", "--exec",
               "echo \"$SLUICE_TOPIC $SLUICE_SUBJECT\" > " + env});
    CHECK(readFile(env) == "orders orders.uk.created\n");
  }
  SECTION("a bad filter pattern is the broker's error") {
    RunResult bad = broker.run({"groups", "create", "orders", "bad", "--filter", "orders.>.x"});
    CHECK(bad.exitCode == 1);
    CHECK_THAT(bad.stderrText, StartsWith("error: invalidArgument: "));
    CHECK(broker.okJson({"groups", "list", "orders"})["groups"].empty());
  }
}

TEST_CASE("groups reset moves the position and the group re-consumes", "[cli]") {
  Broker broker;
  broker.ok({"topics", "create", "orders"});
  broker.ok({"publish", "orders", "--lines"}, "a\nb\nc\n");
  CHECK(jsonLines(broker.ok({"consume", "orders", "-g", "g", "--count", "3", "--json"})).size() ==
        3);

  std::string human = broker.ok({"groups", "reset", "orders", "g", "--to", "earliest"});
  CHECK_THAT(human, StartsWith("reset group \"g\" on topic \"orders\""));
  auto again = jsonLines(broker.ok({"consume", "orders", "-g", "g", "--count", "3", "--json"}));
  REQUIRE(again.size() == 3);
  CHECK(again[0]["offset"] == 1);
  CHECK(payloadOf(again[2]) == "c");

  Json moved = broker.okJson({"groups", "reset", "orders", "g", "--to", "3"});
  CHECK(moved["name"] == "g");
  CHECK(moved["position"] == 3);
  auto fromThree = jsonLines(broker.ok({"consume", "orders", "-g", "g", "--count", "1", "--json"}));
  REQUIRE(fromThree.size() == 1);
  CHECK(fromThree[0]["offset"] == 3);

  broker.ok({"groups", "reset", "orders", "g", "--to", "2000-01-01T00:00:00Z"});
  auto fromTime = jsonLines(broker.ok({"consume", "orders", "-g", "g", "--count", "1", "--json"}));
  REQUIRE(fromTime.size() == 1);
  CHECK(fromTime[0]["offset"] == 1);

  broker.ok({"groups", "reset", "orders", "g", "--to", "latest"});
  CHECK(
      jsonLines(broker.ok({"consume", "orders", "-g", "g", "--wait", "300ms", "--json"})).empty());
}

TEST_CASE("destructive commands without --yes and without a terminal refuse", "[cli]") {
  Broker broker;
  broker.ok({"topics", "create", "orders"});
  broker.ok({"publish", "orders", "--lines"}, "a\nb\n");
  broker.ok({"consume", "orders", "-g", "g", "--count", "1"});

  for (std::vector<std::string> args : {std::vector<std::string>{"topics", "delete", "orders"},
                                        {"topics", "purge", "orders"},
                                        {"groups", "delete", "orders", "g"}}) {
    INFO(args[0] << " " << args[1]);
    RunResult refused = broker.run(args, "y\n");  // Piped input is not a confirmation.
    CHECK(refused.exitCode == 2);
    CHECK_THAT(refused.stderrText, Contains("--yes"));
    CHECK_THAT(refused.stderrText, StartsWith("error: refusing to "));
    CHECK(refused.stdoutText.empty());
  }
  Json topic = broker.okJson({"topics", "describe", "orders"});
  CHECK(topic["messages"] == 2);
  CHECK(topic["groups"].size() == 1);
}

TEST_CASE("destructive commands with --yes delete and purge", "[cli]") {
  Broker broker;
  broker.ok({"topics", "create", "orders"});
  broker.ok({"topics", "create", "other"});
  broker.ok({"publish", "orders", "--lines"}, "a\nb\nc\n");
  broker.ok({"consume", "orders", "-g", "g", "--count", "1", "--no-ack"});

  SECTION("human output") {
    // The --no-ack consumer left offset 1 pending.
    CHECK(broker.ok({"groups", "delete", "orders", "g", "--yes"}) ==
          "deleted group \"g\" on topic \"orders\" (1 pending messages dropped)\n");
    CHECK(broker.okJson({"groups", "list", "orders"})["groups"].empty());
    CHECK(broker.ok({"topics", "purge", "orders", "--yes"}) ==
          "purged topic \"orders\" (3 messages removed)\n");
    Json purged = broker.okJson({"topics", "describe", "orders"});
    CHECK(purged["messages"] == 0);
    CHECK(purged["last_offset"] == 3);
    CHECK(broker.ok({"publish", "orders", "d"}) == "4\n");  // Offsets keep counting.
    CHECK(broker.ok({"topics", "delete", "orders", "--yes"}) ==
          "deleted topic \"orders\" (1 messages)\n");
  }
  SECTION("JSON output") {
    Json group = broker.okJson({"groups", "delete", "orders", "g", "--yes"});
    CHECK(group["deleted"] == true);
    CHECK(group["topic"] == "orders");
    CHECK(group["group"] == "g");
    CHECK(group["pending_dropped"] == 1);
    Json purged = broker.okJson({"topics", "purge", "orders", "-y"});
    CHECK(purged["purged"] == true);
    CHECK(purged["messages_removed"] == 3);
    Json deleted = broker.okJson({"topics", "delete", "orders", "-y"});
    CHECK(deleted["deleted"] == true);
    CHECK(deleted["messages_removed"] == 0);
  }
  RunResult gone = broker.run({"topics", "describe", "orders"});
  CHECK(gone.exitCode == 1);
  CHECK_THAT(gone.stderrText, StartsWith("error: topicNotFound: "));
  Json list = broker.okJson({"topics", "list"});
  REQUIRE(list["topics"].size() == 1);
  CHECK(list["topics"][0]["name"] == "other");
}

TEST_CASE("stats in both output modes", "[cli]") {
  Broker broker;
  broker.ok({"topics", "create", "orders"});
  broker.ok({"publish", "orders", "--lines"}, "a\nb\n");
  Json stats = broker.okJson({"stats"});
  CHECK(stats["topics"] == 1);
  CHECK(stats["messages"] == 2);
  CHECK_FALSE(stats["version"].get<std::string>().empty());
  CHECK(stats["connections"] >= 1);
  for (const char* key : {"uptime_ms", "bytes", "storage_used", "storage_limit", "publish_rate",
                          "delivery_rate", "published_total", "commits"}) {
    INFO(key);
    CHECK(stats.contains(key));
  }
  std::string human = broker.ok({"stats"});
  CHECK_THAT(human, Contains("Version:"));
  CHECK_THAT(human, Contains("Uptime:"));
  CHECK_THAT(human, Contains("Storage:"));
  CHECK_THAT(human, Contains("msg/s"));
}

TEST_CASE("on a terminal, destructive commands ask and act only on yes", "[cli]") {
  Broker broker;
  broker.ok({"topics", "create", "orders"});
  broker.ok({"publish", "orders", "--lines"}, "a\nb\n");
  broker.ok({"consume", "orders", "-g", "g", "--count", "1", "--no-ack"});
  const std::string address = broker.process->address();

  TerminalRun declined =
      runOnTerminal({"--broker", address, "topics", "delete", "orders"}, {{"[y/N] ", "n\n"}});
  CHECK_THAT(declined.output, Contains("Delete topic \"orders\" and its 2 messages? [y/N] "));
  CHECK(declined.exitCode == 2);
  CHECK(broker.okJson({"topics", "describe", "orders"})["messages"] == 2);

  TerminalRun purged =
      runOnTerminal({"--broker", address, "topics", "purge", "orders"}, {{"[y/N] ", "y\n"}});
  CHECK_THAT(purged.output, Contains("Purge all 2 messages of topic \"orders\"? [y/N] "));
  CHECK(purged.exitCode == 0);
  CHECK_THAT(purged.output, Contains("purged topic \"orders\" (2 messages removed)"));

  TerminalRun group = runOnTerminal({"--broker", address, "groups", "delete", "orders", "g"},
                                    {{"[y/N] ", "yes\n"}});
  CHECK_THAT(group.output, Contains("Delete group \"g\" of topic \"orders\""));
  CHECK(group.exitCode == 0);
  CHECK(broker.okJson({"groups", "list", "orders"})["groups"].empty());

  TerminalRun deleted =
      runOnTerminal({"--broker", address, "topics", "delete", "orders"}, {{"[y/N] ", "y\n"}});
  CHECK(deleted.exitCode == 0);
  CHECK(broker.run({"topics", "describe", "orders"}).exitCode == 1);
}

TEST_CASE("Ctrl-C stops consume and leaves unacknowledged messages for redelivery", "[cli]") {
  Broker broker;
  broker.ok({"topics", "create", "orders"});
  broker.ok({"publish", "orders", "--lines"}, "a\nb\n");
  // \x03 is Ctrl-C: the terminal sends SIGINT once both messages were printed.
  TerminalRun run = runOnTerminal(
      {"--broker", broker.process->address(), "consume", "orders", "-g", "g", "--no-ack"},
      {{"\nb", "\x03"}});
  CHECK(run.exitCode == 0);
  CHECK_THAT(run.output, Contains("offset 2"));
  auto again = jsonLines(broker.ok({"consume", "orders", "-g", "g", "--count", "2", "--json"}));
  REQUIRE(again.size() == 2);
  CHECK(again[0]["offset"] == 1);
  CHECK(again[0]["deliveries"] == 2);
}

TEST_CASE("publish --count draws a progress bar only on a terminal", "[cli]") {
  Broker broker;
  broker.ok({"topics", "create", "load"});
  TerminalRun terminal = runOnTerminal(
      {"--broker", broker.process->address(), "publish", "load", "--count", "300"}, {});
  CHECK(terminal.exitCode == 0);
  CHECK_THAT(terminal.output, Contains("100% 300/300"));
  CHECK_THAT(terminal.output, Contains("published 300 messages"));

  RunResult piped = broker.run({"publish", "load", "--count", "300"});
  CHECK(piped.exitCode == 0);
  CHECK(piped.stderrText.empty());
  CHECK(splitLines(piped.stdoutText).size() == 1);
}

// sluice bench ----------------------------------------------------------------------------------

void checkLatencyObject(const Json& latency) {
  for (const char* key : {"p50_us", "p90_us", "p99_us", "p999_us", "max_us"}) {
    INFO(key);
    REQUIRE(latency.contains(key));
    CHECK(latency[key].get<double>() >= 0);
  }
  CHECK(latency["p50_us"].get<double>() <= latency["p99_us"].get<double>());
  CHECK(latency["p99_us"].get<double>() <= latency["max_us"].get<double>());
}

void checkRates(const Json& result, uint64_t messages) {
  CHECK(result["messages"] == messages);
  CHECK(result["seconds"].get<double>() > 0);
  CHECK(result["msgs_per_sec"].get<double>() > 0);
  CHECK(result["mb_per_sec"].get<double>() > 0);
}

TEST_CASE("bench publish --count publishes exactly N messages and reports ack latency",
          "[cli][bench]") {
  Broker broker;
  SECTION("async, several producers") {
    Json result = broker.okJson({"bench", "publish", "load", "--create", "--count", "2000",
                                 "--producers", "2", "--in-flight", "64", "--size", "512"});
    checkRates(result, 2000);
    CHECK(result["producers"] == 2);
    checkLatencyObject(result["ack_latency"]);
    CHECK(result["ack_latency"]["samples"] == 2000);
  }
  SECTION("blocking publish") {
    Json result = broker.okJson(
        {"bench", "publish", "load", "--create", "--count", "20", "--in-flight", "1"});
    checkRates(result, 20);
    checkLatencyObject(result["ack_latency"]);
  }
  auto topic = broker.okJson({"topics", "describe", "load"});
  CHECK(topic["messages"].get<uint64_t>() > 0);
}

TEST_CASE("bench publish --subject publishes through routing into every capturing topic",
          "[cli][bench]") {
  Broker broker;
  broker.ok({"topics", "create", "orders", "--subjects", "orders.>"});
  broker.ok({"topics", "create", "audit", "--subjects", ">"});
  SECTION("async window, several producers") {
    Json result = broker.okJson({"bench", "publish", "--subject", "orders.bench", "--count", "2000",
                                 "--producers", "2", "--in-flight", "64", "--size", "512"});
    checkRates(result, 2000);
    CHECK(result["subject"] == "orders.bench");
    CHECK(result["topics"] == Json::array({"audit", "orders"}));
    CHECK_FALSE(result.contains("topic"));
    CHECK(result["in_flight"] == 64);
    checkLatencyObject(result["ack_latency"]);
    CHECK(result["ack_latency"]["samples"] == 2000);
    CHECK(broker.okJson({"topics", "describe", "orders"})["messages"] == 2000);
    CHECK(broker.okJson({"topics", "describe", "audit"})["messages"] == 2000);
  }
  SECTION("blocking batches, and the human summary names the route") {
    std::string human = broker.ok({"bench", "publish", "--subject", "orders.bench", "--count", "30",
                                   "--in-flight", "1", "--batch", "7"});
    CHECK_THAT(human, StartsWith("publish: 30 messages"));
    CHECK_THAT(human, Contains("routed: subject \"orders.bench\" -> 2 topics: audit, orders"));
    CHECK(broker.okJson({"topics", "describe", "orders"})["messages"] == 30);
  }
  SECTION("--create makes a topic named as the subject when none captures it") {
    broker.ok({"topics", "subjects", "audit", "--remove", ">"});
    Json result =
        broker.okJson({"bench", "publish", "--subject", "load", "--create", "--count", "100"});
    checkRates(result, 100);
    CHECK(result["topics"] == Json::array({"load"}));
    CHECK(broker.okJson({"topics", "describe", "load"})["messages"] == 100);
  }
}

TEST_CASE("bench consume drains exactly --count messages and acknowledges them", "[cli][bench]") {
  Broker broker;
  broker.ok({"bench", "publish", "load", "--create", "--count", "3000"});
  Json result = broker.okJson({"bench", "consume", "load", "--group", "drain", "--count", "2500",
                               "--consumers", "2", "--prefetch", "100"});
  checkRates(result, 2500);
  // The rest is the group's backlog; nothing acknowledged is pending.
  Json rest = broker.okJson({"bench", "consume", "load", "--group", "drain"});
  CHECK(rest["messages"] == 500);
}

TEST_CASE("bench transact commits one transaction per backlog message, checked with the broker",
          "[cli][bench]") {
  Broker broker;
  broker.ok({"bench", "publish", "in", "--create", "--count", "1500"});
  Json result = broker.okJson(
      {"bench", "transact", "in", "--to", "out", "--create", "--group", "tx", "--in-flight", "8"});
  checkRates(result, 1500);
  Json out = broker.okJson({"topics", "describe", "out"});
  CHECK(out["messages"] == 1500);
  Json group = broker.okJson({"groups", "describe", "in", "tx"});
  CHECK(group["pending"] == 0);
  CHECK(group["lag_messages"] == 0);
}

TEST_CASE("bench latency reports the end-to-end distribution", "[cli][bench]") {
  Broker broker;
  Json result =
      broker.okJson({"bench", "latency", "load", "--create", "--rate", "2000", "--count", "400"});
  checkRates(result, 400);
  checkLatencyObject(result["e2e_latency"]);
  CHECK(result["e2e_latency"]["samples"] == 400);
  checkLatencyObject(result["ack_latency"]);
}

TEST_CASE("bench on a missing topic fails with the broker's error", "[cli][bench]") {
  Broker broker;
  RunResult result = broker.run({"bench", "publish", "nowhere", "--count", "5"});
  CHECK(result.exitCode == 1);
  CHECK_THAT(result.stderrText, Contains("nowhere"));
}
