// `sluice bench publish`: N producers, each with its own connection and thread, keep up to
// --in-flight publishes outstanding (or call the blocking publish() with --in-flight 1) for
// --duration or until --count messages are acknowledged. With --subject, the same through
// Producer::publishSubjectAsync (or the blocking publishSubject), so routed and direct runs
// compare.

#include <algorithm>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "bench.h"
#include "parse.h"

namespace sluice::cli::bench {
namespace {

using Clock = std::chrono::steady_clock;

// What one producer thread shares with its acknowledgement callbacks (on its I/O thread).
struct ProducerRun {
  std::mutex mu;
  std::condition_variable room;
  uint64_t outstanding = 0;         // Guarded by mu.
  std::optional<Error> error;       // Guarded by mu; the first failure.
  std::vector<uint32_t> latencies;  // Written by callbacks; read after the run.
  std::atomic<uint64_t> acked{0};
};

struct Shared {
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> acked{0};
};

// Message `n` of a producer, from the prototype (with its key when --keys is given).
OutgoingMessage nth(const OutgoingMessage& prototype, const BenchArgs& args, uint64_t n) {
  OutgoingMessage message = prototype;
  if (args.keys > 0) message.key = "k" + std::to_string(n % args.keys);
  return message;
}

void runAsyncProducer(Client& client, const BenchArgs& args, const OutgoingMessage& prototype,
                      uint64_t quota, Shared& shared, ProducerRun& run) {
  ProducerOptions options;
  if (args.batch > 0) options.maxBatchMessages = args.batch;
  Producer producer = client.producer(options);
  // Refill once an eighth of the window is free, not after every acknowledgement: acks come
  // in batches, and waking this thread once per message would only burn CPU.
  const uint64_t refillAt = args.inFlight - std::max<uint64_t>(1, args.inFlight / 8);
  uint64_t sent = 0;
  while (!shared.stop.load(std::memory_order_relaxed) && (quota == 0 || sent < quota)) {
    {
      std::unique_lock<std::mutex> lock(run.mu);
      if (run.error) break;
      if (run.outstanding >= args.inFlight) {
        run.room.wait(lock, [&] { return run.outstanding <= refillAt || run.error; });
        continue;
      }
      ++run.outstanding;
    }
    OutgoingMessage message = nth(prototype, args, sent);
    auto started = Clock::now();
    // A PublishAck, or a RoutedAck with --subject.
    auto done = [&run, &shared, started, refillAt](auto result) {
      uint32_t us = micros(Clock::now() - started);
      bool wake;
      {
        std::lock_guard<std::mutex> lock(run.mu);
        if (result.ok()) {
          run.latencies.push_back(us);
        } else if (!run.error) {
          run.error = result.error();
        }
        --run.outstanding;
        // The producer waits for exactly this value (it only
        // ever counts down to it from above).
        wake = run.outstanding == refillAt || !result.ok();
      }
      if (result.ok()) shared.acked.fetch_add(1, std::memory_order_relaxed);
      if (wake) run.room.notify_one();
    };
    if (args.subject.empty()) {
      producer.publishAsync(args.topic, std::move(message),
                            std::function<void(Result<PublishAck>)>(done));
    } else {
      producer.publishSubjectAsync(args.subject, std::move(message),
                                   std::function<void(Result<RoutedAck>)>(done));
    }
    ++sent;
  }
  auto flushed = producer.flush();
  std::lock_guard<std::mutex> lock(run.mu);
  if (!flushed.ok() && !run.error) run.error = flushed.error();
}

void runBlockingProducer(Client& client, const BenchArgs& args, const OutgoingMessage& prototype,
                         uint64_t quota, Shared& shared, ProducerRun& run) {
  Producer producer = client.producer();
  size_t batch = std::max<uint32_t>(args.batch, 1);
  uint64_t sent = 0;
  while (!shared.stop.load(std::memory_order_relaxed) && (quota == 0 || sent < quota)) {
    size_t n = quota == 0 ? batch : static_cast<size_t>(std::min<uint64_t>(batch, quota - sent));
    auto started = Clock::now();
    std::optional<Error> failed;
    if (!args.subject.empty()) {
      std::vector<OutgoingMessage> messages;
      messages.reserve(n);
      for (size_t i = 0; i < n; ++i)
        messages.push_back(nth(prototype, args, sent + i));
      auto result = producer.publishSubject(args.subject, std::move(messages));
      if (!result.ok()) failed = result.error();
    } else if (n == 1) {
      auto result = producer.publish(args.topic, nth(prototype, args, sent));
      if (!result.ok()) failed = result.error();
    } else {
      std::vector<OutgoingMessage> messages;
      messages.reserve(n);
      for (size_t i = 0; i < n; ++i)
        messages.push_back(nth(prototype, args, sent + i));
      auto result = producer.publishBatch(args.topic, std::move(messages));
      if (!result.ok()) failed = result.error();
    }
    uint32_t us = micros(Clock::now() - started);
    std::lock_guard<std::mutex> lock(run.mu);
    if (failed) {
      run.error = failed;
      return;
    }
    run.latencies.insert(run.latencies.end(), n, us);
    shared.acked.fetch_add(n, std::memory_order_relaxed);
    sent += n;
  }
}

// The topics a routed run stores in, by name. With --create, makes a topic named as the subject
// when none captures it. Fails early, with noRoute's exit code, when none does.
std::vector<std::string> routeOf(Context& context, const BenchArgs& args) {
  std::vector<std::string> topics = context.take(context.admin().route(args.subject));
  if (topics.empty() && args.create) {
    BenchArgs named = args;
    named.topic = args.subject;
    createTopicIfAsked(context, named);
    topics = context.take(context.admin().route(args.subject));
  }
  if (topics.empty()) {
    context.fail(Error{ErrorCode::kNoRoute,
                       "no topic captures subject \"" + args.subject +
                           "\"; add a pattern (sluice topics subjects TOPIC --add PATTERN) or "
                           "pass --create"});
  }
  return topics;
}

}  // namespace

int runPublish(Context& context, const BenchArgs& args) {
  const bool routed = !args.subject.empty();
  std::vector<std::string> routedTo;
  if (routed) {
    routedTo = routeOf(context, args);
  } else {
    createTopicIfAsked(context, args);
    // Fails early, with the usual exit code, when the topic does not exist.
    context.take(context.admin().describeTopic(args.topic));
  }
  const size_t size = payloadSize(args);
  OutgoingMessage prototype;
  prototype.payload.assign(size, 'x');
  if (!args.at.empty()) prototype.deliverAtMs = *parseRfc3339(args.at).value;
  if (!args.delay.empty()) prototype.delay = *parseDuration(args.delay).value;
  const bool counted = args.countOption->count() > 0;
  const auto duration = durationOf(args, std::chrono::seconds(10));

  std::vector<Client> clients;
  for (uint32_t i = 0; i < args.producers; ++i)
    clients.push_back(connectAnother(context));
  std::vector<std::unique_ptr<ProducerRun>> runs;
  Shared shared;
  std::vector<std::thread> threads;
  // Every run exists before any thread starts: a thread holds its run by reference, and growing
  // `runs` under a running thread would move the pointers it reads (a crash seen under ASan).
  for (uint32_t i = 0; i < args.producers; ++i)
    runs.push_back(std::make_unique<ProducerRun>());
  auto start = Clock::now();
  for (uint32_t i = 0; i < args.producers; ++i) {
    uint64_t quota = 0;
    if (counted) quota = args.count / args.producers + (i < args.count % args.producers ? 1 : 0);
    if (counted && quota == 0) continue;
    Client& client = clients[i];
    ProducerRun& run = *runs[i];
    threads.emplace_back([&, &client = client, &run = run, quota] {
      if (args.inFlight <= 1) {
        runBlockingProducer(client, args, prototype, quota, shared, run);
      } else {
        runAsyncProducer(client, args, prototype, quota, shared, run);
      }
    });
  }

  Progress progress("publish");
  auto seconds = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };
  uint64_t target = counted ? args.count : 0;
  for (;;) {
    uint64_t acked = shared.acked.load();
    if (counted ? acked >= target : Clock::now() - start >= duration) break;
    bool failed = false;
    for (auto& run : runs) {
      std::lock_guard<std::mutex> lock(run->mu);
      failed = failed || run->error.has_value();
    }
    if (failed) break;
    progress.update(acked, seconds());
    std::this_thread::sleep_for(std::chrono::milliseconds(counted ? 2 : 20));
  }
  // A duration run counts what was acknowledged within the duration; later answers only drain.
  uint64_t messages = shared.acked.load();
  double elapsed = seconds();
  shared.stop = true;
  for (auto& thread : threads)
    thread.join();
  progress.finish();
  if (counted) {
    messages = shared.acked.load();
    elapsed = seconds();
  }

  std::vector<uint32_t> latencies;
  for (auto& run : runs) {
    if (run->error) context.fail(*run->error);
    latencies.insert(latencies.end(), run->latencies.begin(), run->latencies.end());
  }
  context.noteAnswered();
  Summary summary;
  summary.workload = "publish";
  summary.extra =
      routed ? Json{{"subject", args.subject}, {"topics", routedTo}} : Json{{"topic", args.topic}};
  summary.extra.update(Json{{"producers", args.producers},
                            {"in_flight", args.inFlight},
                            {"size", size},
                            {"batch", args.batch}});
  summary.messages = messages;
  summary.bytes = messages * size;
  summary.seconds = elapsed;
  summary.latencies.emplace_back("ack_latency", summarize(std::move(latencies)));
  printSummary(context, summary);
  if (routed && !context.options.json) {
    std::string topics;
    for (const auto& topic : routedTo)
      topics += (topics.empty() ? "" : ", ") + topic;
    context.print("  routed: subject \"" + args.subject + "\" -> " +
                  std::to_string(routedTo.size()) +
                  (routedTo.size() == 1 ? " topic: " : " topics: ") + topics);
  }
  return kExitOk;
}

}  // namespace sluice::cli::bench
