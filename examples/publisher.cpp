// publisher: creates the topic "orders" if it does not exist, then publishes --count messages,
// each with a key (the customer) and a header, with many in flight at once (publishAsync, then
// flush), and prints the range of offsets the broker assigned. Every offset printed belongs to a
// message the broker has committed to disk.
//
// Usage: sluice-example-publisher [--broker HOST:PORT] [--count N]
//   --broker  default: $SLUICE_BROKER, else 127.0.0.1:7400
//   SLUICE_TOKEN: the token or grant to authenticate with (a broker with --auth)
//   --count   messages to publish; default 100

#include <sluice/sluice.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <string>
#include <utility>
#include <vector>

namespace {

struct Args {
  std::string broker;
  uint64_t count = 100;
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

  // A broker with authentication on (sluiced --auth) needs a token or grant: SLUICE_TOKEN.
  sluice::Options options;
  if (const char* token = std::getenv("SLUICE_TOKEN")) options.token = token;
  sluice::Result<sluice::Client> connected = sluice::Client::connect(args.broker, options);
  if (!connected) {
    std::fprintf(stderr, "publisher: cannot connect to %s: %s\n", args.broker.c_str(),
                 connected.error().toString().c_str());
    return 1;
  }
  sluice::Client client = std::move(connected).value();

  // Default settings; a topic that already exists is fine.
  sluice::Result<sluice::TopicInfo> created = client.admin().createTopic("orders");
  if (!created && created.error().code != sluice::ErrorCode::kTopicExists) {
    std::fprintf(stderr, "publisher: cannot create topic orders: %s\n",
                 created.error().toString().c_str());
    return 1;
  }

  // publishAsync queues the message and returns at once; the library sends queued messages in
  // batches. Each future completes once the broker has committed that message.
  sluice::Producer producer = client.producer();
  std::vector<std::future<sluice::Result<sluice::PublishAck>>> acks;
  acks.reserve(args.count);
  for (uint64_t i = 0; i < args.count; ++i) {
    sluice::OutgoingMessage message;
    message.key = "customer-" + std::to_string(i % 10);
    message.headers["content-type"] = "application/json";
    message.payload = "{\"order\":" + std::to_string(i) +
                      ",\"amountCents\":" + std::to_string(100 + i * 7 % 900) + "}";
    acks.push_back(producer.publishAsync("orders", std::move(message)));
  }
  sluice::Result<void> flushed = producer.flush();
  if (!flushed) {
    std::fprintf(stderr, "publisher: flush failed: %s\n", flushed.error().toString().c_str());
    return 1;
  }

  uint64_t published = 0;
  uint64_t failed = 0;
  uint64_t first = 0;
  uint64_t last = 0;
  for (auto& ack : acks) {
    sluice::Result<sluice::PublishAck> result = ack.get();
    if (!result) {
      if (failed++ == 0) {
        std::fprintf(stderr, "publisher: publish failed: %s\n", result.error().toString().c_str());
      }
      continue;
    }
    uint64_t offset = result.value().offset;
    if (published++ == 0 || offset < first) first = offset;
    if (offset > last) last = offset;
  }

  if (published > 0) {
    std::string range = std::to_string(first) + ".." + std::to_string(last);
    std::printf("publisher: published %" PRIu64 " messages to orders, offsets %s\n", published,
                range.c_str());
  } else {
    std::printf("publisher: published nothing\n");
  }
  if (failed > 0) {
    std::fprintf(stderr, "publisher: %" PRIu64 " messages failed\n", failed);
    return 1;
  }
  return 0;
}
