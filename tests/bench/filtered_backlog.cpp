// filtered_backlog: how long a consumer group whose subject filter matches 1 % of a large
// backlog takes to receive every match, against a running sluiced, through libsluice.
//
//   filtered_backlog HOST:PORT [--messages N] [--every K] [--payload BYTES] [--reuse]
//
// Fills topic `bench.filtered` (capturing `bench.>`) with N messages (default 1,000,000) of
// BYTES (default 1024), one in K (default 100) published to subject `bench.match` and the rest
// to `bench.other`, then subscribes a new group filtered on `bench.match` and times from the
// subscribe call to the last match received (acknowledging as it goes, prefetch 1,000). With
// --reuse it keeps an existing filled topic. Prints one line per phase.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <sluice/sluice.h>

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "filtered_backlog: %s\n", what.c_str());
  std::exit(1);
}

uint64_t number(const char* text) {
  char* end = nullptr;
  uint64_t n = std::strtoull(text, &end, 10);
  if (end == text || *end != '\0' || n == 0) fail(std::string("not a positive number: ") + text);
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) fail("usage: filtered_backlog HOST:PORT [--messages N] [--every K] [--payload B]");
  std::string address = argv[1];
  uint64_t total = 1'000'000;
  uint64_t every = 100;
  size_t payloadBytes = 1024;
  bool reuse = false;
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--reuse") {
      reuse = true;
      continue;
    }
    if (i + 1 >= argc) fail(arg + " needs a value");
    if (arg == "--messages") {
      total = number(argv[++i]);
    } else if (arg == "--every") {
      every = number(argv[++i]);
    } else if (arg == "--payload") {
      payloadBytes = number(argv[++i]);
    } else {
      fail("unknown argument " + arg);
    }
  }
  auto connected = sluice::Client::connect(address);
  if (!connected.ok()) fail(connected.error().toString());
  sluice::Client client = std::move(connected).value();
  sluice::Admin admin = client.admin();
  const std::string topic = "bench.filtered";
  const uint64_t matches = total / every;

  if (!reuse) {
    (void)admin.deleteTopic(topic);  // A leftover from an earlier run; absent is fine.
    sluice::TopicSettings settings;
    settings.subjects = {"bench.>"};
    auto created = admin.createTopic(topic, settings);
    if (!created.ok()) fail(created.error().toString());
    sluice::Producer producer = client.producer();
    const std::string payload(payloadBytes, 'x');
    auto started = Clock::now();
    // Batches alternate: K-1 others, then one match, so matches are spread evenly.
    for (uint64_t published = 0; published < total;) {
      std::vector<sluice::OutgoingMessage> others;
      for (uint64_t i = 1; i < every && published + others.size() < total; ++i) {
        sluice::OutgoingMessage message;
        message.payload = payload;
        others.push_back(std::move(message));
      }
      if (!others.empty()) {
        published += others.size();
        auto acked = producer.publishSubject("bench.other", std::move(others));
        if (!acked.ok()) fail(acked.error().toString());
      }
      if (published < total) {
        std::vector<sluice::OutgoingMessage> one(1);
        one[0].payload = payload;
        auto acked = producer.publishSubject("bench.match", std::move(one));
        if (!acked.ok()) fail(acked.error().toString());
        ++published;
      }
    }
    double seconds = std::chrono::duration<double>(Clock::now() - started).count();
    std::printf("filled: %llu messages of %zu bytes, 1 in %llu matching, in %.1f s\n",
                static_cast<unsigned long long>(total), payloadBytes,
                static_cast<unsigned long long>(every), seconds);
  }

  const std::string group = "filtered-" + std::to_string(Clock::now().time_since_epoch().count());
  sluice::SubscribeOptions options;
  options.prefetch = 1000;
  options.filter = {"bench.match"};
  auto started = Clock::now();
  auto subscribed = client.subscribe(topic, group, options);
  if (!subscribed.ok()) fail(subscribed.error().toString());
  sluice::Consumer consumer = std::move(subscribed).value();
  uint64_t received = 0;
  double firstMs = 0;
  while (received < matches) {
    auto message = consumer.receive(std::chrono::seconds(30));
    if (!message.ok())
      fail("after " + std::to_string(received) + ": " + message.error().toString());
    if (message.value().subject() != "bench.match") fail("a non-matching message was delivered");
    if (received == 0)
      firstMs = std::chrono::duration<double, std::milli>(Clock::now() - started).count();
    (void)message.value().ackAsync();
    ++received;
  }
  double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  std::printf(
      "filtered group: %llu of %llu received in %.3f s from subscribing (first after "
      "%.1f ms)\n",
      static_cast<unsigned long long>(received), static_cast<unsigned long long>(total), seconds,
      firstMs);
  consumer.close();
  (void)admin.deleteGroup(topic, group);
  return 0;
}
