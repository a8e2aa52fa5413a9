#pragma once

// `sluice bench`: load generators on the public client API (publish, consume, latency,
// transact) and the pieces they share — arguments, latency samples, progress line and the
// summary, in human or JSON form. See README.md ("sluice bench") for the JSON fields.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "context.h"
#include "json.h"

namespace sluice::cli {

void addBenchCommands(CLI::App& app, Context& context);  // bench.cpp

namespace bench {

struct BenchArgs {
  std::string topic;
  CLI::Option* topicOption = nullptr;  // publish: TOPIC is optional (or --subject).
  bool create = false;
  std::string subject;  // publish: publish to this subject (publishSubject) instead of TOPIC
  CLI::Option* subjectOption = nullptr;
  // publish / latency / transact
  uint32_t producers = 1;
  uint32_t inFlight = 256;  // transact: transactions in flight over all consumers
  std::string size = "1KiB";
  uint32_t batch = 0;  // 0: the library's default batching.
  std::string duration;
  CLI::Option* durationOption = nullptr;
  uint64_t count = 0;
  CLI::Option* countOption = nullptr;
  std::string at;     // publish: every message delayed until this RFC 3339 time
  std::string delay;  // publish: every message delayed by this long
  uint32_t keys = 0;  // publish: message n gets key "k<n mod keys>" (0: no keys)
  // consume / latency / transact
  std::string group;
  uint32_t consumers = 1;
  uint32_t prefetch = 1000;
  std::string idle = "10s";
  std::string nackDelay;    // consume: nack each message with this delay instead of acking it
  bool keyOrdered = false;  // consume: create the group key-ordered
  // latency
  uint32_t rate = 5000;
  // transact
  std::string to;  // The topic each transaction publishes to.
};

// Latency samples in microseconds; percentiles by nearest rank.
struct LatencySummary {
  uint64_t samples = 0;
  double p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0, mean = 0;
};
LatencySummary summarize(std::vector<uint32_t> samples);
Json latencyToJson(const LatencySummary& summary);
// `p50 1.2ms  p90 ...  max ...`.
std::string formatLatency(const LatencySummary& summary);

// Microseconds between two steady_clock points, saturated to u32.
uint32_t micros(std::chrono::steady_clock::duration elapsed);

// A one-line progress report on stderr, redrawn at most every 250 ms, only when stderr is a
// terminal. Thread: one (the command's main thread).
class Progress {
 public:
  explicit Progress(std::string what);
  void update(uint64_t done, double seconds);
  void finish();

 private:
  std::string what_;
  bool enabled_;
  std::chrono::steady_clock::time_point lastDraw_{};
};

// The main thread of a run: draws progress until done() reaches `target` or `stop` is set, or
// gives up once nothing happened for `idle` (lastActivityNs: steady-clock nanoseconds since its
// epoch). Returns true when it gave up.
bool watchRun(Progress& progress, std::chrono::steady_clock::time_point start, uint64_t target,
              const std::function<uint64_t()>& done, const std::atomic<bool>& stop,
              const std::atomic<int64_t>& lastActivityNs, std::chrono::milliseconds idle);

// The end of every run: messages, bytes, seconds, rates and the distributions, printed as a
// few human lines or one JSON object (`extra` fields come first, after "workload").
struct Summary {
  std::string workload;
  Json extra = Json::object();
  std::string noun = "messages";  // What `messages` counts, in the human line.
  std::string rateUnit = "msg/s";
  uint64_t messages = 0;
  uint64_t bytes = 0;
  double seconds = 0;
  std::vector<std::pair<std::string, LatencySummary>> latencies;  // (json key, summary)
};
void printSummary(Context& context, const Summary& summary);

// Creates the topic when --create is given; an existing topic is fine.
void createTopicIfAsked(Context& context, const BenchArgs& args);
// Payload size from --size.
size_t payloadSize(const BenchArgs& args);
// --duration as a steady_clock duration (default `fallback`).
std::chrono::milliseconds durationOf(const BenchArgs& args, std::chrono::milliseconds fallback);
// A connection of its own for one producer or consumer thread (same options as the context's).
Client connectAnother(Context& context);

int runPublish(Context& context, const BenchArgs& args);   // bench_publish.cpp
int runConsume(Context& context, const BenchArgs& args);   // bench_consume.cpp
int runLatency(Context& context, const BenchArgs& args);   // bench_latency.cpp
int runTransact(Context& context, const BenchArgs& args);  // bench_transact.cpp

}  // namespace bench
}  // namespace sluice::cli
