// The admin HTTP endpoint of a real sluiced: /metrics (well-formed, and moving as messages
// flow), /healthz and /readyz, and the answers to everything else.

#include <sys/resource.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include <thread>

#include "integration/broker_fixture.h"
#include "support/http_get.h"
#include "support/run_process.h"

namespace sluice::test {
namespace {

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

// One parsed exposition: samples keyed by `name{labels}` exactly as printed.
struct Exposition {
  std::map<std::string, double> samples;
  std::map<std::string, std::string> types;  // Family -> TYPE.
  std::set<std::string> helps;               // Families with HELP.

  double value(const std::string& series) const {
    auto it = samples.find(series);
    return it == samples.end() ? std::nan("") : it->second;
  }
  bool has(const std::string& series) const { return samples.count(series) > 0; }
};

// The family a sample belongs to: histograms' _bucket/_sum/_count series belong to the
// histogram's name.
std::string familyOf(const std::string& name, const std::map<std::string, std::string>& types) {
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    std::string s(suffix);
    if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
      std::string base = name.substr(0, name.size() - s.size());
      auto type = types.find(base);
      if (type != types.end() && type->second == "histogram") return base;
    }
  }
  return name;
}

// Parses the Prometheus text format (0.0.4) strictly enough for a test: every line is a HELP,
// a TYPE or a well-formed sample of a family declared before it, and counters end in _total.
// Problems go to CHECKs (with the line), so one scrape reports all of them.
Exposition parseExposition(const std::string& text) {
  static const std::regex kHelp(R"(^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) \S.*$)");
  static const std::regex kType(
      R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$)");
  static const std::regex kSample(
      R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")"
      R"((?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")*\})? )"
      R"((NaN|[+-]Inf|[+-]?[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?)( -?[0-9]+)?$)");
  Exposition out;
  REQUIRE_FALSE(text.empty());
  CHECK(text.back() == '\n');
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    INFO("line: " << line);
    std::smatch m;
    if (std::regex_match(line, m, kHelp)) {
      CHECK(out.helps.insert(m[1]).second);  // One HELP per family.
    } else if (std::regex_match(line, m, kType)) {
      CHECK(out.types.count(m[1]) == 0);  // One TYPE per family.
      out.types[m[1]] = m[2];
      if (m[2] == "counter") CHECK_THAT(std::string(m[1]), Catch::Matchers::EndsWith("_total"));
    } else if (std::regex_match(line, m, kSample)) {
      std::string family = familyOf(m[1], out.types);
      CHECK(out.types.count(family) == 1);  // TYPE before the samples.
      CHECK(out.helps.count(family) == 1);  // HELP too.
      std::string series = std::string(m[1]) + std::string(m[2]);
      CHECK(out.samples.count(series) == 0);  // No duplicate series.
      std::string number = m[3];
      out.samples[series] = number == "+Inf"   ? HUGE_VAL
                            : number == "-Inf" ? -HUGE_VAL
                                               : std::strtod(number.c_str(), nullptr);
    } else {
      FAIL_CHECK("not a HELP, TYPE or sample line");
    }
  }
  // Histograms: cumulative buckets ending in +Inf == _count.
  for (const auto& [family, type] : out.types) {
    if (type != "histogram") continue;
    INFO("histogram " << family);
    CHECK(out.has(family + "_bucket{le=\"+Inf\"}"));
    CHECK(out.value(family + "_bucket{le=\"+Inf\"}") == out.value(family + "_count"));
    CHECK(out.has(family + "_sum"));
  }
  return out;
}

Exposition scrape(SluicedProcess& broker) {
  auto reply = httpGet(broker.adminPort(), "/metrics");
  REQUIRE(reply.status == 200);
  CHECK_THAT(reply.headers["content-type"], Contains("text/plain; version=0.0.4"));
  return parseExposition(reply.body);
}

TEST_CASE("metrics are well-formed and move as messages are published, delivered and acked",
          "[integration][ops]") {
  Broker broker;
  REQUIRE(broker.process().adminPort() > 0);
  auto before = scrape(broker.process());
  CHECK(before.value("sluice_build_info{version=\"" SLUICE_TEST_VERSION "\"}") == 1);
  CHECK(before.value("sluice_published_messages_total") == 0);
  CHECK(before.value("sluice_connections") >= 1);
  CHECK(before.value("sluice_storage_limit_bytes") > 0);
  CHECK(before.value("sluice_storage_failed") == 0);
  for (const char* family :
       {"sluice_commits_total", "sluice_commit_duration_seconds", "sluice_commit_batch_jobs",
        "sluice_fsync_duration_seconds", "sluice_storage_used_bytes", "sluice_consumers",
        "sluice_uptime_seconds"}) {
    INFO(family);
    CHECK(before.types.count(family) == 1);
  }

  createTopic(broker.admin(), "orders");
  publishPayloads(broker.producer(), "orders", 25, "0123456789");  // 11 bytes each.
  const std::string topic = "{topic=\"orders\"}";
  const std::string group = "{topic=\"orders\",group=\"billing\"}";
  auto published = scrape(broker.process());
  CHECK(published.value("sluice_topic_published_messages_total" + topic) == 25);
  // "0123456789<i>": 11 bytes for i < 10, 12 after.
  CHECK(published.value("sluice_topic_published_bytes_total" + topic) == 10 * 11 + 15 * 12);
  CHECK(published.value("sluice_topic_messages" + topic) == 25);
  CHECK(published.value("sluice_published_messages_total") == 25);
  CHECK(published.value("sluice_commits_total") > before.value("sluice_commits_total"));
  CHECK(published.value("sluice_commit_duration_seconds_count") >
        before.value("sluice_commit_duration_seconds_count"));
  // A durable commit flushes its pages with fdatasync.
  CHECK(published.value("sluice_fsync_duration_seconds_count") >
        before.value("sluice_fsync_duration_seconds_count"));
  CHECK(published.value("sluice_fsync_duration_seconds_sum") >
        before.value("sluice_fsync_duration_seconds_sum"));
  CHECK(published.value("sluice_storage_used_bytes") >= before.value("sluice_storage_used_bytes"));

  SubscribeOptions options;
  options.prefetch = 10;
  auto consumer = subscribe(broker.client(), "orders", "billing", options);
  auto received = receiveMessages(consumer, 10);
  REQUIRE(received.size() == 10);
  ackAll({received.begin(), received.begin() + 4});
  REQUIRE(received[4].nack(std::chrono::hours(1)).ok());
  // Four acks and a nack free five prefetch slots: the broker pushes five more.
  Exposition flowing;
  REQUIRE(eventually([&] {
    flowing = scrape(broker.process());
    // The pending gauge is the store's count: it follows once the delivery state commits.
    return flowing.value("sluice_group_delivered_messages_total" + group) == 15 &&
           flowing.value("sluice_group_pending_messages" + group) == 11;
  }));
  CHECK(flowing.value("sluice_group_acked_messages_total" + group) == 4);
  CHECK(flowing.value("sluice_group_nacked_messages_total" + group) == 1);
  CHECK(flowing.value("sluice_group_pending_messages" + group) == 11);
  CHECK(flowing.value("sluice_group_lag_messages" + group) == 10);
  CHECK(flowing.value("sluice_group_lag_seconds" + group) >= 0);
  CHECK(flowing.value("sluice_group_consumers" + group) == 1);
  CHECK(flowing.value("sluice_consumers") == 1);
  CHECK(flowing.value("sluice_acked_messages_total") == 4);
  CHECK(flowing.value("sluice_nacked_messages_total") == 1);
  CHECK(flowing.value("sluice_delivered_messages_total") == 15);

  // Once the group has everything acknowledged, lag and pending fall to zero.
  ackAll({received.begin() + 5, received.end()});
  for (int i = 0; i < 15; ++i) {
    auto next = receiveMessages(consumer, 1);
    REQUIRE(next.size() == 1);
    ackAll(next);
  }
  REQUIRE(eventually([&] {
    auto done = scrape(broker.process());
    return done.value("sluice_group_acked_messages_total" + group) == 24 &&
           done.value("sluice_group_lag_messages" + group) == 0 &&
           done.value("sluice_group_pending_messages" + group) == 1;  // The nacked one.
  }));
}

TEST_CASE("metrics count scheduled, expired and key-blocked messages", "[integration][ops]") {
  Broker broker;
  TopicSettings settings;
  settings.deadLetterTopic = "timed.dead";
  settings.deadLetterExpired = true;
  createTopic(broker.admin(), "timed", settings);
  // The group exists before "gone" expires: retention then removes it from the front only once
  // the group has passed it (and counted it), never before.
  REQUIRE(broker.admin().createGroup("timed", "ord", StartPosition::earliest(), true).ok());
  OutgoingMessage gone = textMessage("gone");
  gone.ttl = std::chrono::milliseconds(1);
  OutgoingMessage later = textMessage("later");
  later.delay = std::chrono::hours(1);
  OutgoingMessage first = textMessage("first");
  first.key = "k";
  OutgoingMessage second = textMessage("second");
  second.key = "k";
  REQUIRE(broker.producer().publishBatch("timed", {gone, later, first, second}).ok());
  auto stored = peekAll(broker.admin(), "timed");
  REQUIRE(stored.size() == 4);
  REQUIRE(stored[0].expiresAtMs() == stored[0].timestampMs() + 1);
  // The condition is the time itself: wait until "gone" has expired.
  std::this_thread::sleep_until(std::chrono::system_clock::time_point(
      std::chrono::milliseconds(stored[0].expiresAtMs() + 1)));

  SubscribeOptions options;
  options.keyOrdered = true;
  auto consumer = subscribe(broker.client(), "timed", "ord", options);
  auto received = receiveMessages(consumer, 1);
  REQUIRE(received.size() == 1);
  CHECK(received[0].payload() == "first");
  const std::string group = "{topic=\"timed\",group=\"ord\"}";
  const std::string topic = "{topic=\"timed\"}";
  Exposition metrics;
  REQUIRE(eventually([&] {
    metrics = scrape(broker.process());
    return metrics.value("sluice_group_scheduled_messages" + group) == 1 &&
           metrics.value("sluice_topic_expired_messages_total" + topic) == 1;
  }));
  CHECK(metrics.value("sluice_group_key_blocked_messages" + group) == 1);
  CHECK(metrics.value("sluice_group_expired_messages_total" + group) == 1);
  CHECK(metrics.value("sluice_expired_messages_total") == 1);
  TopicInfo info = describeTopic(broker.admin(), "timed");
  CHECK(info.scheduled == 1);
  CHECK(info.keyBlocked == 1);
  CHECK(info.expired == 1);
  GroupInfo ord = describeGroup(broker.admin(), "timed", "ord");
  CHECK(ord.keyOrdered);
  CHECK(ord.scheduled == 1);
  CHECK(ord.keyBlocked == 1);
}

TEST_CASE("healthz and readyz answer 200 once the ready line is printed", "[integration][ops]") {
  Broker broker;
  auto health = httpGet(broker.process().adminPort(), "/healthz");
  CHECK(health.status == 200);
  CHECK(health.body == "ok\n");
  auto ready = httpGet(broker.process().adminPort(), "/readyz");
  CHECK(ready.status == 200);
  CHECK(ready.body == "ready\n");
  // A query string is ignored; HEAD answers without a body.
  CHECK(httpGet(broker.process().adminPort(), "/healthz?verbose=1").status == 200);
  auto head = httpRequest(broker.process().adminPort(), "HEAD /readyz HTTP/1.1\r\n\r\n");
  CHECK(head.status == 200);
  CHECK(head.body.empty());
  CHECK(head.headers["content-length"] == "6");
}

TEST_CASE("healthz answers 503 with the reason after a commit failed while readyz stays 200",
          "[integration][ops]") {
  Broker broker;
  createTopic(broker.admin(), "t");
  publishPayloads(broker.producer(), "t", 3);
  // Make the next commit fail from outside: a file size limit (RLIMIT_FSIZE) at the data
  // file's current size turns LMDB's next write past it into EFBIG. sluiced ignores SIGXFSZ.
  auto size = std::filesystem::file_size(broker.dataDir() + "/data.mdb");
  rlimit limit{static_cast<rlim_t>(size), static_cast<rlim_t>(size)};
  rlimit old{};
  if (::prlimit(broker.process().pid(), RLIMIT_FSIZE, nullptr, &old) != 0 ||
      old.rlim_max < limit.rlim_max) {
    WARN("cannot lower the broker's RLIMIT_FSIZE here; the unit test covers the rule");
    return;
  }
  limit.rlim_max = old.rlim_max;
  REQUIRE(::prlimit(broker.process().pid(), RLIMIT_FSIZE, &limit, nullptr) == 0);

  std::vector<OutgoingMessage> batch(64);
  for (auto& message : batch)
    message.payload = std::string(64 * 1024, 'x');  // 4 MiB: far past the current file end.
  auto failed = broker.producer().publishBatch("t", batch);
  CHECK_THAT(outcome(failed), IsError(ErrorCode::kStorageFailed));
  // Sticky: later writes are refused too, reads still work.
  CHECK_THAT(outcome(broker.producer().publish("t", "small")), IsError(ErrorCode::kStorageFailed));
  CHECK(describeTopic(broker.admin(), "t").messages == 3);

  auto health = httpGet(broker.process().adminPort(), "/healthz");
  CHECK(health.status == 503);
  CHECK_THAT(health.body, Contains("commit failed"));
  CHECK(httpGet(broker.process().adminPort(), "/readyz").status == 200);
  CHECK(scrape(broker.process()).value("sluice_storage_failed") == 1);
  CHECK_THAT(broker.process().stderrText(), Contains("commit"));
}

TEST_CASE("the admin endpoint answers 404, 405, 400 and 413 and nothing else",
          "[integration][ops]") {
  Broker broker;
  int port = broker.process().adminPort();
  SECTION("unknown paths are 404") {
    for (const char* path : {"/metrics/", "/../etc/passwd", "/healthz/x", "/favicon.ico"}) {
      INFO(path);
      auto reply = httpGet(port, path);
      CHECK(reply.status == 404);
      CHECK_THAT(reply.body, Contains("/metrics"));
    }
  }
  SECTION("the root sends a browser to the console") {
    auto reply = httpGet(port, "/");
    CHECK(reply.status == 302);
    CHECK(reply.headers["location"] == "/ui/");
  }
  SECTION("other methods are 405") {
    CHECK(httpRequest(port, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").status == 405);
    CHECK(httpRequest(port, "DELETE /healthz HTTP/1.1\r\n\r\n").status == 405);
  }
  SECTION("malformed requests are 400") {
    CHECK(httpRequest(port, "GARBAGE\r\n\r\n").status == 400);
    CHECK(httpRequest(port, "GET /metrics\r\n\r\n").status == 400);
    CHECK(httpRequest(port, "GET metrics HTTP/1.1\r\n\r\n").status == 400);
    CHECK(httpRequest(port,
                      std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11) + "\r\n\r\n")
              .status == 400);
  }
  SECTION("headers over 8 KiB are 413, and the client reads the answer") {
    std::string huge = "GET /metrics HTTP/1.1\r\nX-Filler: " + std::string(9000, 'a');
    auto reply = httpRequest(port, huge);
    CHECK(reply.status == 413);
    auto bigger = httpRequest(port, huge + std::string(50000, 'b') + "\r\n\r\n");
    CHECK(bigger.status == 413);
  }
  // The broker is unharmed.
  CHECK(httpGet(port, "/healthz").status == 200);
  CHECK(broker.admin().stats().ok());
}

TEST_CASE("request bodies: Content-Length, chunked, 100-continue, and 413 over 1 MiB",
          "[integration][ops]") {
  Broker broker;
  int port = broker.process().adminPort();
  auto post = [&](const std::string& headers, const std::string& body) {
    return httpRequest(port,
                       "POST /api/v1/topics HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       "Content-Type: application/json\r\n" +
                           headers + "\r\n" + body);
  };
  std::string created = R"({"name": "bodies"})";
  auto plain = post("Content-Length: " + std::to_string(created.size()) + "\r\n", created);
  CHECK(plain.status == 201);
  CHECK_THAT(plain.body, Contains(R"("name":"bodies")"));

  // The same body in two chunks, after asking to continue: the 100 comes first.
  std::string second = R"({"name": "chunked"})";
  auto hex = [](size_t n) {
    char digits[32];
    std::snprintf(digits, sizeof digits, "%zx", n);
    return std::string(digits);
  };
  auto chunked = post("Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n",
                      "5\r\n" + second.substr(0, 5) + "\r\n" + hex(second.size() - 5) + "\r\n" +
                          second.substr(5) + "\r\n0\r\n\r\n");
  CHECK_THAT(chunked.raw, StartsWith("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 "));
  CHECK(broker.admin().describeTopic("chunked").ok());

  // Announced too large: refused before the body is read.
  auto announced = post("Content-Length: 2000000\r\n", "{");
  CHECK(announced.status == 413);
  // Chunked past 1 MiB: refused once it gets there; nothing was created.
  std::string big = R"({"name": "big", "settings": {}, "pad": ")" + std::string(1100000, 'x');
  auto streamed = post("Transfer-Encoding: chunked\r\n", hex(big.size()) + "\r\n" + big + "\r\n");
  CHECK(streamed.status == 413);
  CHECK_FALSE(broker.admin().describeTopic("big").ok());
  // Bad chunk framing is a 400.
  CHECK(post("Transfer-Encoding: chunked\r\n", "zz\r\n{}\r\n0\r\n\r\n").status == 400);
  CHECK(httpGet(port, "/healthz").status == 200);
}

TEST_CASE("the Dockerfile's HEALTHCHECK command passes only while /healthz answers 200",
          "[integration][ops]") {
  // Docker does not run here; run the image's health check command against a real broker.
  std::ifstream dockerfile(SLUICE_SOURCE_DIR "/Dockerfile");
  std::string line;
  std::string command;
  bool inHealthcheck = false;
  while (std::getline(dockerfile, line)) {
    if (line.rfind("HEALTHCHECK", 0) == 0) inHealthcheck = true;
    auto cmd = line.find("CMD [");
    if (inHealthcheck && cmd != std::string::npos) {
      command = line.substr(cmd + 4);
      break;
    }
  }
  REQUIRE_FALSE(command.empty());
  auto argv = nlohmann::json::parse(command).get<std::vector<std::string>>();
  REQUIRE(argv.size() == 3);
  REQUIRE(argv[2].find("/7401") != std::string::npos);
  auto onPort = [&](int port, const std::string& path) {
    auto args = argv;
    args[2].replace(args[2].find("/7401"), 5, "/" + std::to_string(port));
    args[2].replace(args[2].find("/healthz"), 8, path);
    return runProcess(args, "", {}, std::chrono::seconds(10)).exitCode;
  };

  Broker broker;
  CHECK(onPort(broker.process().adminPort(), "/healthz") == 0);
  CHECK(onPort(broker.process().adminPort(), "/nothing-here") != 0);  // 404 is unhealthy.
  int port = broker.process().adminPort();
  REQUIRE(broker.process().stop() == 0);
  CHECK(onPort(port, "/healthz") != 0);  // Nobody listening.
}

}  // namespace
}  // namespace sluice::test
