// `sluice bench`: registration of the four workloads and what they share (see bench.h).

#include "bench.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <thread>

#include "commands.h"
#include "format.h"
#include "parse.h"

namespace sluice::cli {
namespace bench {

uint32_t micros(std::chrono::steady_clock::duration elapsed) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count();
  return static_cast<uint32_t>(std::clamp<int64_t>(us, 0, UINT32_MAX));
}

LatencySummary summarize(std::vector<uint32_t> samples) {
  LatencySummary out;
  out.samples = samples.size();
  if (samples.empty()) return out;
  std::sort(samples.begin(), samples.end());
  auto rank = [&](double q) {
    auto index = static_cast<size_t>(std::ceil(q * static_cast<double>(samples.size())));
    return static_cast<double>(samples[std::clamp<size_t>(index, 1, samples.size()) - 1]);
  };
  out.p50 = rank(0.5);
  out.p90 = rank(0.9);
  out.p99 = rank(0.99);
  out.p999 = rank(0.999);
  out.max = static_cast<double>(samples.back());
  double sum = 0;
  for (uint32_t sample : samples)
    sum += sample;
  out.mean = sum / static_cast<double>(samples.size());
  return out;
}

Json latencyToJson(const LatencySummary& summary) {
  return Json{{"samples", summary.samples}, {"p50_us", summary.p50},   {"p90_us", summary.p90},
              {"p99_us", summary.p99},      {"p999_us", summary.p999}, {"max_us", summary.max},
              {"mean_us", summary.mean}};
}

namespace {

std::string formatMicros(double us) {
  char text[32];
  if (us < 1000) {
    std::snprintf(text, sizeof text, "%.0fus", us);
  } else if (us < 1e6) {
    std::snprintf(text, sizeof text, "%.2fms", us / 1000);
  } else {
    std::snprintf(text, sizeof text, "%.2fs", us / 1e6);
  }
  return text;
}

}  // namespace

std::string formatLatency(const LatencySummary& s) {
  return "p50 " + formatMicros(s.p50) + "  p90 " + formatMicros(s.p90) + "  p99 " +
         formatMicros(s.p99) + "  p99.9 " + formatMicros(s.p999) + "  max " + formatMicros(s.max);
}

Progress::Progress(std::string what)
    : what_(std::move(what)), enabled_(::isatty(STDERR_FILENO) != 0) {}

void Progress::update(uint64_t done, double seconds) {
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (now - lastDraw_ < std::chrono::milliseconds(250)) return;
  lastDraw_ = now;
  double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0;
  std::fprintf(stderr, "\r\033[K%s %llu messages, %.1fs, %s", what_.c_str(),
               static_cast<unsigned long long>(done), seconds, formatRate(rate).c_str());
  std::fflush(stderr);
}

bool watchRun(Progress& progress, std::chrono::steady_clock::time_point start, uint64_t target,
              const std::function<uint64_t()>& done, const std::atomic<bool>& stop,
              const std::atomic<int64_t>& lastActivityNs, std::chrono::milliseconds idle) {
  using Clock = std::chrono::steady_clock;
  while (!stop.load()) {
    uint64_t now = done();
    if (now >= target) return false;
    auto last = Clock::time_point(Clock::duration(lastActivityNs.load()));
    if (Clock::now() - last > idle) return true;
    progress.update(now, std::chrono::duration<double>(Clock::now() - start).count());
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

void Progress::finish() {
  if (enabled_) std::fputs("\r\033[K", stderr);
}

void printSummary(Context& context, const Summary& s) {
  double rate = s.seconds > 0 ? static_cast<double>(s.messages) / s.seconds : 0;
  double mbRate = s.seconds > 0 ? static_cast<double>(s.bytes) / 1e6 / s.seconds : 0;
  if (context.options.json) {
    Json out{{"workload", s.workload}};
    for (auto& [key, value] : s.extra.items())
      out[key] = value;
    out["messages"] = s.messages;
    out["bytes"] = s.bytes;
    out["seconds"] = s.seconds;
    out["msgs_per_sec"] = rate;
    out["mb_per_sec"] = mbRate;
    for (const auto& [key, latency] : s.latencies)
      out[key] = latencyToJson(latency);
    context.print(dumpLine(out));
    return;
  }
  char line[256];
  std::snprintf(line, sizeof line, "%s: %llu %s (%s) in %.2fs: %s, %.1f MB/s", s.workload.c_str(),
                static_cast<unsigned long long>(s.messages), s.noun.c_str(),
                formatBytes(s.bytes).c_str(), s.seconds, formatRate(rate, s.rateUnit).c_str(),
                mbRate);
  context.print(line);
  for (const auto& [key, latency] : s.latencies) {
    std::string label = key == "ack_latency"        ? "publish -> ack"
                        : key == "e2e_latency"      ? "end to end"
                        : key == "transact_latency" ? "transactAsync() -> answer"
                                                    : key;
    context.print("  " + label + ": " + formatLatency(latency) + " (" +
                  std::to_string(latency.samples) + " samples)");
  }
}

void createTopicIfAsked(Context& context, const BenchArgs& args) {
  if (!args.create) return;
  auto created = context.admin().createTopic(args.topic);
  if (!created.ok() && created.error().code != ErrorCode::kTopicExists) {
    context.fail(created.error());
  }
  context.noteAnswered();
}

size_t payloadSize(const BenchArgs& args) {
  return static_cast<size_t>(*parseSize(args.size).value);
}

std::chrono::milliseconds durationOf(const BenchArgs& args, std::chrono::milliseconds fallback) {
  if (args.duration.empty()) return fallback;
  return *parseDuration(args.duration).value;
}

Client connectAnother(Context& context) {
  return context.connect();
}

}  // namespace bench

void addBenchCommands(CLI::App& app, Context& context) {
  using bench::BenchArgs;
  auto args = std::make_shared<BenchArgs>();
  CLI::App* bench = app.add_subcommand("bench", "Measure throughput and latency");
  bench->require_subcommand(1);
  bench->footer(
      "Rates count acknowledged messages (`transact`: committed transactions); MB/s counts\n"
      "payload bytes (10^6 bytes). Latencies: publish -> acknowledgement (fsync'd commit), for\n"
      "`latency` publish call -> consumer receipt on this host, and for `transact` the\n"
      "transactAsync() call -> its answer. Progress goes to stderr when it is a terminal.\n"
      "Examples:\n"
      "  sluice bench publish bench --create --producers 4 --in-flight 256 --duration 10s\n"
      "  sluice bench publish --subject bench --in-flight 256 --duration 10s   # routed\n"
      "  sluice bench consume bench --group drain --prefetch 1000 --count 500000\n"
      "  sluice bench latency bench --create --rate 5000 --duration 10s --json\n"
      "  sluice bench transact bench --to bench.out --create --group tx --in-flight 256");

  auto addTopic = [&](CLI::App* cmd) {
    cmd->add_option("TOPIC", args->topic, "Topic to use")->required();
    cmd->add_flag("--create", args->create, "Create the topic first if it does not exist");
  };
  auto addSize = [&](CLI::App* cmd) {
    cmd->add_option("--size", args->size, "Payload bytes per message (default 1KiB)")
        ->check(sizeValidator())
        ->type_name("BYTES");
  };

  CLI::App* publish = bench->add_subcommand("publish", "Publish as fast as acknowledgements allow");
  publish->footer(
      "Give a TOPIC, or --subject and no TOPIC: a routed run (Producer::publishSubject) to\n"
      "compare with a direct one (a topic without patterns captures its own name, so\n"
      "`--subject bench` routes to topic bench). The window and batching are those of a\n"
      "direct run (Producer::publishSubjectAsync); with --in-flight 1, one blocking\n"
      "publishSubject of --batch messages at a time.\n"
      "Example:\n  sluice bench publish --subject orders.eu.created --count 100000 --json");
  args->topicOption =
      publish->add_option("TOPIC", args->topic, "Topic to publish to (or --subject instead)");
  publish->add_flag("--create", args->create,
                    "Create the topic first if it does not exist (with --subject: a topic named "
                    "SUBJECT, when no topic captures the subject)");
  args->subjectOption =
      publish
          ->add_option("--subject", args->subject,
                       "Publish to this subject instead of a TOPIC, routed to every capturing "
                       "topic")
          ->type_name("SUBJECT");
  publish
      ->add_option("--producers", args->producers,
                   "Producers, each with its own connection and thread (default 1)")
      ->check(CLI::Range(1, 1024))
      ->type_name("N");
  publish
      ->add_option("--in-flight", args->inFlight,
                   "Unacknowledged publishes per producer (default 256); 1 = blocking publish")
      ->check(CLI::Range(1, 1 << 20))
      ->type_name("N");
  addSize(publish);
  publish
      ->add_option("--batch", args->batch,
                   "Messages per publish request at most (async: the library's limit, "
                   "default 1000; with --in-flight 1: publishBatch of N)")
      ->check(CLI::Range(1, 10000))
      ->type_name("N");
  args->durationOption =
      publish->add_option("--duration", args->duration, "How long to publish (default 10s)")
          ->check(durationValidator())
          ->type_name("DUR");
  args->countOption = publish->add_option("--count", args->count, "Publish N messages in total")
                          ->check(CLI::PositiveNumber)
                          ->type_name("N");
  args->countOption->excludes(args->durationOption);
  CLI::Option* at =
      publish
          ->add_option("--at", args->at,
                       "Delayed delivery of every message until TIME (fills the groups' schedule)")
          ->check(timeValidator())
          ->type_name("TIME");
  publish->add_option("--delay", args->delay, "Delayed delivery of every message by DUR")
      ->check(durationValidator())
      ->type_name("DUR")
      ->excludes(at);
  publish
      ->add_option("--keys", args->keys,
                   "Give message n the key k<n mod N> (for key-ordered groups; default none)")
      ->check(CLI::Range(1, 1 << 30))
      ->type_name("N");
  publish->callback([&context, args] {
    bool topic = args->topicOption->count() > 0, subject = args->subjectOption->count() > 0;
    if (topic == subject) {
      throw CLI::ValidationError(
          topic ? "give a TOPIC or --subject, not both; got TOPIC \"" + args->topic +
                      "\" and --subject \"" + args->subject + "\""
                : "bench publish needs a TOPIC or --subject SUBJECT; got neither");
    }
    if (subject && args->subject.empty()) {
      throw CLI::ValidationError("--subject: the subject is empty");
    }
    context.action = [&context, args] { return bench::runPublish(context, *args); };
  });

  CLI::App* consume =
      bench->add_subcommand("consume", "Consume a backlog as one group, acking every message");
  addTopic(consume);
  consume->add_option("--group,-g", args->group, "Consumer group (created at earliest if new)")
      ->required()
      ->type_name("G");
  consume
      ->add_option("--consumers", args->consumers,
                   "Consumers, each with its own connection and thread (default 1)")
      ->check(CLI::Range(1, 1024))
      ->type_name("N");
  consume->add_option("--prefetch", args->prefetch, "Prefetch window per consumer (default 1000)")
      ->check(CLI::Range(1, 65536))
      ->type_name("N");
  consume
      ->add_option("--count", args->count,
                   "Messages to consume in total (default: the group's lag when it starts)")
      ->check(CLI::PositiveNumber)
      ->type_name("N");
  consume->add_option("--idle", args->idle, "Give up after this long without a message (10s)")
      ->check(durationValidator())
      ->type_name("DUR");
  consume
      ->add_option("--nack-delay", args->nackDelay,
                   "Nack every message with this redelivery delay instead of acking it "
                   "(e.g. 1h: fills the group's on-disk redelivery schedule)")
      ->check(durationValidator())
      ->type_name("DUR");
  consume->add_flag("--key-ordered", args->keyOrdered,
                    "Create the group key-ordered (one message per key in flight)");
  consume->callback([&context, args] {
    context.action = [&context, args] { return bench::runConsume(context, *args); };
  });

  CLI::App* latency = bench->add_subcommand(
      "latency", "Publish at a fixed rate and measure publish -> consumer receipt");
  addTopic(latency);
  latency->add_option("--rate", args->rate, "Messages per second (default 5000)")
      ->check(CLI::Range(1, 10000000))
      ->type_name("MSG/S");
  latency->add_option("--duration", args->duration, "How long to publish (default 10s)")
      ->check(durationValidator())
      ->type_name("DUR");
  latency->add_option("--count", args->count, "Publish N messages instead of --duration")
      ->check(CLI::PositiveNumber)
      ->type_name("N");
  addSize(latency);
  latency
      ->add_option("--group,-g", args->group,
                   "Consumer group (default sluice-bench-latency; starts at latest)")
      ->type_name("G");
  latency->callback([&context, args] {
    context.action = [&context, args] { return bench::runLatency(context, *args); };
  });

  CLI::App* transact = bench->add_subcommand(
      "transact",
      "Consume a backlog as one group; each message acked and copied to another topic in one "
      "transaction");
  transact->add_option("TOPIC", args->topic, "Topic to consume")->required();
  transact->add_option("--to", args->to, "Topic each transaction publishes to")
      ->required()
      ->type_name("TOPIC");
  transact->add_flag("--create", args->create,
                     "Create TOPIC and the --to topic first if they do not exist");
  transact->add_option("--group,-g", args->group, "Consumer group (created at earliest if new)")
      ->required()
      ->type_name("G");
  transact
      ->add_option("--consumers", args->consumers,
                   "Fetch consumers, each with its own connection (default 1)")
      ->check(CLI::Range(1, 1024))
      ->type_name("N");
  transact
      ->add_option("--in-flight", args->inFlight,
                   "Transactions in flight over all consumers (default 256)")
      ->check(CLI::Range(1, 4096))
      ->type_name("N");
  transact
      ->add_option("--count", args->count,
                   "Transactions in total (default: the group's lag and pending when it starts)")
      ->check(CLI::PositiveNumber)
      ->type_name("N");
  transact->add_option("--idle", args->idle, "Give up after this long without a message (10s)")
      ->check(durationValidator())
      ->type_name("DUR");
  transact->callback([&context, args] {
    context.action = [&context, args] { return bench::runTransact(context, *args); };
  });
}

}  // namespace sluice::cli
