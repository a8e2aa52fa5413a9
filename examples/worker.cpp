// worker: joins the consumer group "billing" on the topic "orders" (creating the topic if it
// does not exist yet), then receives messages one at a time, prints each and acknowledges it.
// Stops after --count messages, or on SIGINT/SIGTERM. Run several workers at once and the group
// splits the messages between them; a message a worker did not acknowledge goes to another.
//
// Usage: sluice-example-worker [--broker HOST:PORT] [--count N]
//   --broker  default: $SLUICE_BROKER, else 127.0.0.1:7400
//   SLUICE_TOKEN: the token or grant to authenticate with (a broker with --auth)
//   --count   stop after N messages; default 0: run until stopped

#include <sluice/sluice.h>

#include <chrono>
#include <cinttypes>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

namespace {

volatile std::sig_atomic_t gStop = 0;

void onSignal(int) {
  gStop = 1;
}

struct Args {
  std::string broker;
  uint64_t count = 0;
};

bool parseArgs(int argc, char** argv, Args& args) {
  const char* env = std::getenv("SLUICE_BROKER");
  args.broker = (env != nullptr && *env != '\0') ? env : "127.0.0.1:7400";
  for (int i = 1; i < argc; ++i) {
    bool hasValue = i + 1 < argc;
    if (std::strcmp(argv[i], "--broker") == 0 && hasValue) {
      args.broker = argv[++i];
    } else if (std::strcmp(argv[i], "--count") == 0 && hasValue) {
      args.count = std::strtoull(argv[++i], nullptr, 10);
    } else {
      std::fprintf(stderr, "usage: %s [--broker HOST:PORT] [--count N]\n", argv[0]);
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (!parseArgs(argc, argv, args)) return 2;
  std::signal(SIGINT, onSignal);
  std::signal(SIGTERM, onSignal);

  // A broker with authentication on (sluiced --auth) needs a token or grant: SLUICE_TOKEN.
  sluice::Options options;
  if (const char* token = std::getenv("SLUICE_TOKEN")) options.token = token;
  sluice::Result<sluice::Client> connected = sluice::Client::connect(args.broker, options);
  if (!connected) {
    std::fprintf(stderr, "worker: cannot connect to %s: %s\n", args.broker.c_str(),
                 connected.error().toString().c_str());
    return 1;
  }
  sluice::Client client = std::move(connected).value();

  // The worker may start before any publisher: make sure the topic exists.
  sluice::Result<sluice::TopicInfo> created = client.admin().createTopic("orders");
  if (!created && created.error().code != sluice::ErrorCode::kTopicExists) {
    std::fprintf(stderr, "worker: cannot create topic orders: %s\n",
                 created.error().toString().c_str());
    return 1;
  }

  sluice::Result<sluice::Consumer> subscribed = client.subscribe("orders", "billing");
  if (!subscribed) {
    std::fprintf(stderr, "worker: cannot subscribe: %s\n", subscribed.error().toString().c_str());
    return 1;
  }
  sluice::Consumer consumer = std::move(subscribed).value();
  std::printf("worker: consumer %" PRIu64 " in group billing on orders\n", consumer.id());
  std::fflush(stdout);

  uint64_t handled = 0;
  int exitCode = 0;
  while (gStop == 0 && (args.count == 0 || handled < args.count)) {
    // A short timeout keeps the loop responsive to signals.
    sluice::Result<sluice::Message> received = consumer.receive(std::chrono::milliseconds(500));
    if (!received) {
      if (received.error().code == sluice::ErrorCode::kTimeout) continue;
      std::fprintf(stderr, "worker: receive failed: %s\n", received.error().toString().c_str());
      exitCode = 1;
      break;
    }
    const sluice::Message& message = received.value();
    std::printf("offset=%" PRIu64 " key=%s deliveries=%u payload=%s\n", message.offset(),
                message.key() ? message.key()->c_str() : "-", message.deliveries(),
                message.payload().c_str());
    std::fflush(stdout);

    // Acknowledge only after the work is done: if the worker dies first, the message is
    // delivered again (at-least-once).
    sluice::Result<void> acked = message.ack();
    if (!acked) {
      std::fprintf(stderr, "worker: ack of offset %" PRIu64 " failed: %s\n", message.offset(),
                   acked.error().toString().c_str());
    }
    ++handled;
  }

  consumer.close();
  std::printf("worker: handled %" PRIu64 " messages\n", handled);
  return exitCode;
}
