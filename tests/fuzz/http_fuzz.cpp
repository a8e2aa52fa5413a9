// libFuzzer target: the admin endpoint's HTTP server and JSON API, driven in-process with
// arbitrary bytes.
//
// One broker lives for many inputs: a real core::Broker over an LMDB store (in /dev/shm when it
// exists, commits without fsync), the real admin::HttpApi on the KJ loop, and the real
// admin::HttpServer on its own thread listening on 127.0.0.1, wired as sluiced wires them: the
// server's thread hands /api and /ui requests to the KJ thread with kj::Executor::executeSync;
// /healthz and /metrics it answers itself (the latter after a trip to the KJ thread too). The
// KJ loop runs on the fuzzing thread and turns while the target waits for the server.
//
// Each input is what one client sends on one connection: the target connects, writes the bytes,
// closes its sending side, and reads until the server closes the connection. The seeds are
// requests for every route of docs/http-api.md (and chunked bodies, 100-continue, bad JSON, a
// huge Content-Length, refused hosts and origins), each checked for its status when written.
//
// Oracles: no crash, sanitizer report or hang. A fetch may wait up to 30 s for messages: when
// the server has not closed within a second, the API is shut down (which answers every call it
// holds) and made again; then the connection must close within 5 s. After every input the
// server still answers GET /api/v1/whoami with 200; every 500 inputs the store passes
// Env::check(), the invariants `sluiced --check` verifies.
//
// SLUICE_FUZZ_WRITE_SEEDS=DIR: write the seed corpus to DIR and exit (scripts/fuzz.sh --seeds).
// SLUICE_FUZZ_LOG=1 (or =debug): keep the broker's log on stderr.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <kj/async-io.h>
#include <kj/async.h>

#include "admin/api.h"
#include "admin/http_server.h"
#include "core/broker.h"
#include "fuzz_support.h"
#include "fuzz_world.h"
#include "store/fsync_timing.h"

namespace {

using namespace sluice;

constexpr uint64_t kResetEvery = 5000;  // Inputs per broker; then a fresh store.
constexpr uint64_t kCheckEvery = 500;
// Until a request is whole; an input cut short costs this much (the server waits for the
// rest, then answers 408).
constexpr std::chrono::milliseconds kRequestTimeout{50};
const kj::Duration kAnswerWithin = 1 * kj::SECONDS;  // Then the API is made again.
const kj::Duration kCloseWithin = 5 * kj::SECONDS;   // Then it is a hang.

// A broker with its store and writer, the HTTP API and the admin endpoint's server.
class World {
 public:
  explicit World(kj::AsyncIoContext& io)
      : base_(io, fuzz::autoCreatingOptions(), "sluice-fuzz-http"),
        kjThread_(kj::getCurrentThreadExecutor()) {
    makeApi();
    admin::HttpOptions options;
    options.listen = "127.0.0.1:0";
    options.requestTimeout = kRequestTimeout;
    server_ = std::make_unique<admin::HttpServer>(
        options, [this](admin::HttpRequest request, admin::HttpReply reply) {
          if (admin::HttpApi::owns(request.path)) {
            kjThread_.executeSync([&]() { api_->handle(std::move(request), std::move(reply)); });
          } else {
            reply(answerOther(request));
          }
        });
    auto port = server_->start();
    if (!port.ok()) {
      std::fprintf(stderr, "cannot start the HTTP server: %s\n", port.status().message().c_str());
      std::abort();
    }
    port_ = port.value();
  }

  // As sluiced stops: the API answers what waits, the broker ends its consumers, and the loop
  // turns until the server's thread has let go (it may be in executeSync meanwhile).
  ~World() {
    api_->shutdown();
    base_.broker().shutdown();
    base_.turn(5 * kj::MILLISECONDS);
    server_->requestStop();
    while (!server_->finished())
      base_.turn(1 * kj::MILLISECONDS);
    server_->stop();
    server_.reset();
    api_.reset();
  }  // base_ stops the writer and checks the store.

  uint port() const { return port_; }

  // The API answers every call it holds (503 shuttingDown), closes its consumers, and a fresh
  // one takes its place.
  void remakeApi() {
    api_->shutdown();
    makeApi();
  }

  void settle() {
    base_.settle([]() { return true; });
  }
  void checkStore() { base_.checkStore(); }

 private:
  void makeApi() {
    admin::ApiOptions options;
    options.version = "fuzz";
    options.allowedHosts = {"localhost", "127.0.0.1", "[::1]"};
    options.commitSeconds = [this] { return base_.writer().commitSeconds().snapshot(); };
    options.fsyncSeconds = [] { return store::fsyncSeconds().snapshot(); };
    options.consumerIdleMs = 5000;  // Else fetches soon meet the limit of 1,024 consumers.
    api_.reset();
    api_ = std::make_unique<admin::HttpApi>(base_.broker(), base_.io().provider->getTimer(),
                                            std::move(options));
    api_->start();
  }

  // Thread: admin. The rest of the endpoint, simpler than sluiced's (main.cpp).
  admin::HttpResponse answerOther(const admin::HttpRequest& request) {
    admin::HttpResponse response;
    if (request.method != "GET" && request.method != "HEAD") {
      response.status = 405;
      response.body = "only GET and HEAD\n";
    } else if (request.path == "/healthz") {
      response.body = "ok\n";
    } else if (request.path == "/metrics") {
      response.body = kjThread_.executeSync([this]() {
        auto stats = base_.broker().stats();
        return "sluice_topics " + std::to_string(stats.topics) + "\nsluice_messages " +
               std::to_string(stats.messages) + "\n";
      });
    } else {
      response.status = 404;
      response.body = "not found\n";
    }
    return response;
  }

  fuzz::BrokerWorld base_;
  const kj::Executor& kjThread_;
  std::unique_ptr<admin::HttpApi> api_;  // Touched on the KJ thread only.
  std::unique_ptr<admin::HttpServer> server_;
  uint port_ = 0;
};

using Inputs = fuzz::Inputs<World, kResetEvery>;

kj::ArrayPtr<const kj::byte> bytesOf(const std::string& text) {
  return kj::arrayPtr(reinterpret_cast<const kj::byte*>(text.data()), text.size());
}

// Sends `bytes` on a fresh connection, closes the sending side, and returns what came back
// once the server has closed the connection.
std::string exchange(kj::AsyncIoContext& io, World& world, kj::ArrayPtr<const kj::byte> bytes) {
  fuzz::Exchange client(io, world.port(), bytes);
  if (!client.wait(kAnswerWithin)) {
    world.remakeApi();  // A fetch waiting for messages, or a call the API never answers.
    if (!client.wait(kCloseWithin)) {
      std::fprintf(stderr, "the server did not close the connection once the API shut down\n");
      std::abort();
    }
  }
  return client.received();
}

// The status of the final answer (after any 100 Continue), or 0.
int statusOf(const std::string& response) {
  size_t at = 0;
  while (response.compare(at, 13, "HTTP/1.1 100 ") == 0) {
    size_t end = response.find("\r\n\r\n", at);
    if (end == std::string::npos) return 0;
    at = end + 4;
  }
  if (response.compare(at, 9, "HTTP/1.1 ") != 0 || response.size() < at + 12) return 0;
  return std::atoi(response.substr(at + 9, 3).c_str());
}

const std::string kWhoami = "GET /api/v1/whoami HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

// Seeds: requests for every route, checked against a fresh world -------------------------------

std::string request(const std::string& method, const std::string& target,
                    const std::string& body = "", const std::string& headers = "") {
  std::string out = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers;
  if (!body.empty() || method == "POST") {
    out +=
        "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  return out + "\r\n" + body;
}

std::string chunked(const std::string& target, const std::vector<std::string>& chunks) {
  std::string out = "POST " + target +
                    " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n";
  for (const auto& chunk : chunks) {
    char size[16];
    std::snprintf(size, sizeof size, "%zx", chunk.size());
    out += std::string(size) + "\r\n" + chunk + "\r\n";
  }
  return out + "0\r\n\r\n";
}

// A number after `"name":` in a JSON answer, or 0.
uint64_t numberAfter(const std::string& text, const std::string& name) {
  size_t at = text.find("\"" + name + "\":");
  return at == std::string::npos ? 0
                                 : std::strtoull(text.c_str() + at + name.size() + 3, nullptr, 10);
}

void writeSeeds(kj::AsyncIoContext& io, const std::string& dir) {
  World world(io);
  int n = 0;
  // Sends one seed, checks its status, writes it as DIR/NN-NAME; returns the answer.
  auto seed = [&](const std::string& name, const std::string& bytes, int expected) {
    std::string answer = exchange(io, world, bytesOf(bytes));
    world.settle();
    if (statusOf(answer) != expected) {
      std::fprintf(stderr, "seed %s: expected %d, got:\n%s\n", name.c_str(), expected,
                   answer.c_str());
      std::abort();
    }
    char prefix[8];
    std::snprintf(prefix, sizeof prefix, "%02d-", n++);
    fuzz::writeFile(dir, prefix + name, bytes);
    return answer;
  };
  const std::string topics = "/api/v1/topics";
  const std::string orders = topics + "/orders";
  const std::string workers = orders + "/groups/workers";

  seed("whoami", kWhoami, 200);
  seed("whoami_head", "HEAD /api/v1/whoami HTTP/1.1\r\nHost: 127.0.0.1:7401\r\n\r\n", 200);
  seed("whoami_bearer",
       request("GET", "/api/v1/whoami", "", "Authorization: Bearer sluice_0123456789\r\n"), 200);
  seed("overview", request("GET", "/api/v1/overview"), 200);
  seed("create_topic", request("POST", topics, R"({"name":"orders"})"), 201);
  seed("create_topic_settings",
       request("POST", topics,
               R"({"name":"jobs","settings":{"max_age_ms":60000,"max_bytes":1048576,)"
               R"("max_messages":100,"max_message_size":4096,"work_queue":true,)"
               R"("max_deliveries":3,"dead_letter_topic":"jobs.dead","dedup_window_ms":1000,)"
               R"("default_ttl_ms":5000,"dead_letter_expired":true,"subjects":["jobs.>"]}})"),
       201);
  seed("create_topic_exists", request("POST", topics, R"({"name":"orders"})"), 409);
  seed("publish",
       request("POST", orders + "/messages",
               R"({"messages":[{"payload":"hello","key":"k1","headers":{"trace":"abc","n":"1"},)"
               R"("id":"id-1"},{"payload_base64":"AAEC/w==","key_base64":"/w=="},)"
               R"({"payload":"later","delay_ms":5,"ttl_ms":60000},{"payload":"four","key":"k1"},)"
               R"({"payload":"five","key":"k2"}]})"),
       200);
  seed("publish_duplicate",
       request("POST", orders + "/messages", R"({"messages":[{"payload":"again","id":"id-1"}]})"),
       200);
  seed("publish_auto_create",
       request("POST", "/api/v1/topics/auto.created/messages", R"({"messages":[{"payload":"x"}]})"),
       200);
  seed("publish_percent_encoded",
       request("POST", "/api/v1/topics/orders%2Eeu/messages", R"({"messages":[{"payload":"x"}]})"),
       200);
  seed("publish_chunked",
       chunked(orders + "/messages", {R"({"messages":[{"pay)", R"(load":"chunked"}]})"}), 200);
  seed("publish_continue",
       request("POST", orders + "/messages", R"({"messages":[{"payload":"continued"}]})",
               "Expect: 100-continue\r\n"),
       200);
  seed("describe_topic", request("GET", orders), 200);
  seed("browse", request("GET", orders + "/messages?from_offset=1&limit=10"), 200);
  seed("browse_time", request("GET", orders + "/messages?from_time=1&limit=2"), 200);
  seed("list_topics", request("GET", topics), 200);
  seed("list_topics_query",
       request("GET", topics + "?filter=Ord&sort=messages&order=desc&offset=0&limit=10"), 200);
  seed("create_group",
       request("POST", orders + "/groups",
               R"({"name":"workers","start":"earliest","ordering":"key","filter":[">"]})"),
       201);
  seed("create_group_offset",
       request("POST", orders + "/groups", R"({"name":"audit","start":{"offset":2}})"), 201);
  seed("describe_group", request("GET", workers), 200);
  seed("reset_group", request("POST", orders + "/groups/audit/reset", R"({"to":{"time":1}})"), 200);
  std::string fetched =
      seed("fetch", request("POST", workers + "/fetch", R"({"max":5,"timeout_ms":10})"), 200);
  std::string consumer = std::to_string(numberAfter(fetched, "consumer"));
  std::string delivery = std::to_string(numberAfter(fetched, "delivery_id"));
  seed("ack",
       request("POST", workers + "/ack",
               R"({"consumer":)" + consumer + R"(,"messages":[{"offset":1,"delivery_id":)" +
                   delivery + "}]}"),
       200);
  seed("nack",
       request("POST", workers + "/nack",
               R"({"consumer":)" + consumer + R"(,"messages":[{"offset":2}],"delay_ms":5})"),
       200);
  seed("fetch_again",
       request("POST", workers + "/fetch",
               R"({"consumer":)" + consumer + R"(,"max":1,"timeout_ms":0})"),
       200);
  seed("fetch_new_consumer",
       request("POST", orders + "/groups/pullers/fetch",
               R"({"max":2,"timeout_ms":1,"ack_timeout_ms":1000,"start":"latest"})"),
       200);
  seed("delete_group", request("DELETE", orders + "/groups/audit"), 200);
  seed("purge", request("POST", orders + "/purge", "{}"), 200);
  seed("delete_topic", request("DELETE", "/api/v1/topics/auto.created"), 200);
  seed("ui_index", request("GET", "/ui/"), 200);
  seed("ui_app", request("GET", "/ui/app.js"), 200);
  seed("ui_style", request("GET", "/ui/style.css"), 200);
  seed("ui_redirect", request("GET", "/ui"), 302);
  seed("root_redirect", request("GET", "/"), 302);
  seed("ui_missing", request("GET", "/ui/../etc/passwd"), 404);
  seed("metrics", request("GET", "/metrics"), 200);
  seed("healthz", request("GET", "/healthz"), 200);
  seed("not_found", request("GET", "/readyz"), 404);
  seed("api_not_found", request("GET", "/api/v2/topics"), 404);
  seed("bad_json", request("POST", topics, R"({"name":)"), 400);
  seed("not_an_object", request("POST", topics, "[1,2]"), 400);
  seed("no_content_type", "POST /api/v1/topics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 415);
  seed("unknown_field", request("POST", workers + "/fetch", R"({"maximum":5})"), 400);
  seed("bad_percent", request("GET", "/api/v1/topics/orders%2"), 400);
  seed("missing_topic", request("GET", "/api/v1/topics/missing/groups/g"), 404);
  seed("method_not_allowed", request("PUT", topics, "{}"), 405);
  seed("host_not_allowed", "GET /api/v1/overview HTTP/1.1\r\nHost: attacker.example\r\n\r\n", 403);
  seed("cross_origin", request("GET", "/api/v1/overview", "", "Origin: http://evil.example\r\n"),
       403);
  seed("cross_site", request("GET", "/api/v1/overview", "", "Sec-Fetch-Site: cross-site\r\n"), 403);
  seed("huge_content_length",
       "POST /api/v1/topics HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
       "Content-Length: 99999999999\r\n\r\n{}",
       413);
  seed("patch", "PATCH /api/v1/topics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 405);
  seed("http2", "GET /api/v1/whoami HTTP/2.0\r\nHost: 127.0.0.1\r\n\r\n", 400);
  seed("truncated",
       "POST /api/v1/topics HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\n{", 408);
  seed("garbage", std::string("\x16\x03\x01\x00\xa5\x01\x00\x00", 8), 400);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  return Inputs::initialize(writeSeeds);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  World& world = Inputs::next();
  exchange(Inputs::io(), world, kj::arrayPtr(data, size));
  world.settle();
  std::string answer = exchange(Inputs::io(), world, bytesOf(kWhoami));
  if (statusOf(answer) != 200) {
    std::fprintf(stderr, "after the input, GET /api/v1/whoami answered:\n%s\n", answer.c_str());
    std::abort();
  }
  if (Inputs::every(kCheckEvery)) world.checkStore();
  return 0;
}
