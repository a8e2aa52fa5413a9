// fanout: shows that every consumer group receives every message. Creates the topic "events"
// (if needed), subscribes two groups, "audit" and "email", each with a callback-mode consumer,
// publishes 10 messages in one batch, and waits until both groups have received all 10. Prints
// how many each group got; exits 0 only if both got every message. A self-checking demo: run it
// against a broker to see fan-out working.
//
// Usage: sluice-example-fanout [--broker HOST:PORT]
//   --broker  default: $SLUICE_BROKER, else 127.0.0.1:7400
//   SLUICE_TOKEN: the token or grant to authenticate with (a broker with --auth)

#include <sluice/sluice.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace {

constexpr int kMessages = 10;
constexpr std::chrono::seconds kWaitLimit{15};

// Offsets each group received, filled by the consumers' callback threads.
struct Received {
  std::mutex mu;
  std::condition_variable changed;
  std::map<std::string, std::set<uint64_t>> offsets;
};

bool parseArgs(int argc, char** argv, std::string& broker) {
  const char* env = std::getenv("SLUICE_BROKER");
  broker = (env != nullptr && *env != '\0') ? env : "127.0.0.1:7400";
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--broker") == 0 && i + 1 < argc) {
      broker = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--broker HOST:PORT]\n", argv[0]);
      return false;
    }
  }
  return true;
}

size_t countReceived(const std::set<uint64_t>& got, const std::vector<uint64_t>& wanted) {
  size_t n = 0;
  for (uint64_t offset : wanted)
    n += got.count(offset);
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  std::string broker;
  if (!parseArgs(argc, argv, broker)) return 2;

  // A broker with authentication on (sluiced --auth) needs a token or grant: SLUICE_TOKEN.
  sluice::Options options;
  if (const char* token = std::getenv("SLUICE_TOKEN")) options.token = token;
  sluice::Result<sluice::Client> connected = sluice::Client::connect(broker, options);
  if (!connected) {
    std::fprintf(stderr, "fanout: cannot connect to %s: %s\n", broker.c_str(),
                 connected.error().toString().c_str());
    return 1;
  }
  sluice::Client client = std::move(connected).value();

  sluice::Result<sluice::TopicInfo> created = client.admin().createTopic("events");
  if (!created && created.error().code != sluice::ErrorCode::kTopicExists) {
    std::fprintf(stderr, "fanout: cannot create topic events: %s\n",
                 created.error().toString().c_str());
    return 1;
  }

  // One consumer per group. Each handler runs on its consumer's own thread, one message at a
  // time. Messages left over from an earlier run are acknowledged too, but only this run's
  // offsets count below.
  Received received;
  const std::vector<std::string> groups = {"audit", "email"};
  std::vector<sluice::Consumer> consumers;
  for (const std::string& group : groups) {
    auto handler = [&received, group](sluice::Message message) {
      sluice::Result<void> acked = message.ack();
      if (!acked) {
        std::fprintf(stderr, "fanout: %s could not ack: %s\n", group.c_str(),
                     acked.error().toString().c_str());
      }
      std::lock_guard<std::mutex> lock(received.mu);
      received.offsets[group].insert(message.offset());
      received.changed.notify_all();
    };
    sluice::Result<sluice::Consumer> subscribed =
        client.subscribe("events", group, sluice::SubscribeOptions{}, handler);
    if (!subscribed) {
      std::fprintf(stderr, "fanout: cannot subscribe group %s: %s\n", group.c_str(),
                   subscribed.error().toString().c_str());
      return 1;
    }
    consumers.push_back(std::move(subscribed).value());
  }

  // All ten in one request: stored in one commit, or not at all.
  std::vector<sluice::OutgoingMessage> batch;
  for (int i = 0; i < kMessages; ++i) {
    sluice::OutgoingMessage message;
    message.headers["source"] = "fanout-example";
    message.payload = "event " + std::to_string(i);
    batch.push_back(std::move(message));
  }
  sluice::Result<std::vector<sluice::PublishAck>> published =
      client.producer().publishBatch("events", std::move(batch));
  if (!published) {
    std::fprintf(stderr, "fanout: publish failed: %s\n", published.error().toString().c_str());
    return 1;
  }
  std::vector<uint64_t> offsets;
  for (const sluice::PublishAck& ack : published.value())
    offsets.push_back(ack.offset);

  bool complete;
  {
    std::unique_lock<std::mutex> lock(received.mu);
    complete = received.changed.wait_for(lock, kWaitLimit, [&] {
      for (const std::string& group : groups) {
        if (countReceived(received.offsets[group], offsets) < offsets.size()) return false;
      }
      return true;
    });
  }
  for (sluice::Consumer& consumer : consumers)
    consumer.close();

  std::lock_guard<std::mutex> lock(received.mu);
  for (const std::string& group : groups) {
    std::printf("group %-5s received %zu of %zu\n", group.c_str(),
                countReceived(received.offsets[group], offsets), offsets.size());
  }
  if (!complete) {
    std::fprintf(stderr, "fanout: FAILED: not every group received every message within %llds\n",
                 static_cast<long long>(kWaitLimit.count()));
    return 1;
  }
  std::printf("fanout: ok, every group received every message\n");
  return 0;
}
