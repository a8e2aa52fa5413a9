// `sluice bench consume`: N consumers of one group, each with its own connection and thread,
// receive and acknowledge (ackAsync, so acks travel together) until --count messages.
// The rate counts from the first subscribe until the last acknowledgement is committed.

#include <algorithm>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "bench.h"
#include "parse.h"

namespace sluice::cli::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct Shared {
  uint64_t target = 0;
  std::atomic<uint64_t> taken{0};  // Messages claimed by a consumer (at most target count).
  std::atomic<bool> stop{false};
  std::atomic<int64_t> lastActivityNs{0};
  std::mutex mu;
  std::optional<Error> error;    // Guarded by mu; the first failure.
  uint64_t bytes = 0;            // Guarded by mu.
  Clock::time_point finished{};  // Guarded by mu; when the last acknowledgement was answered.
};

void fail(Shared& shared, const Error& error) {
  std::lock_guard<std::mutex> lock(shared.mu);
  if (!shared.error) shared.error = error;
  shared.stop = true;
}

void runConsumer(Client& client, const BenchArgs& args, Shared& shared) {
  SubscribeOptions options;
  options.prefetch = args.prefetch;
  options.keyOrdered = args.keyOrdered;
  auto subscribed = client.subscribe(args.topic, args.group, options);
  if (!subscribed.ok()) return fail(shared, subscribed.error());
  Consumer consumer = std::move(subscribed).value();
  std::deque<std::future<Result<void>>> acks;
  std::optional<std::chrono::milliseconds> nackDelay;
  if (!args.nackDelay.empty()) nackDelay = *parseDuration(args.nackDelay).value;
  uint64_t bytes = 0;
  Clock::time_point finished{};
  auto settleOldest = [&] {
    Result<void> acked = acks.front().get();
    acks.pop_front();
    if (!acked.ok()) fail(shared, acked.error());
    if (acks.empty()) finished = Clock::now();
  };
  // Settled while idle too, so that the run's end is the last answered ack, not the moment
  // an idle receive() noticed the stop.
  auto settleAll = [&] {
    while (!acks.empty())
      settleOldest();
  };
  while (!shared.stop.load(std::memory_order_relaxed)) {
    Result<Message> next = consumer.receive(std::chrono::milliseconds(100));
    if (!next.ok()) {
      if (next.error().code == ErrorCode::kTimeout) {
        settleAll();
        continue;
      }
      fail(shared, next.error());
      break;
    }
    // Past the target, leave the message unacknowledged: it goes back to the group.
    if (shared.taken.fetch_add(1) >= shared.target) break;
    shared.lastActivityNs.store(Clock::now().time_since_epoch().count(), std::memory_order_relaxed);
    bytes += next.value().payload().size();
    acks.push_back(nackDelay ? next.value().nackAsync(*nackDelay) : next.value().ackAsync());
    if (acks.size() > args.prefetch) settleOldest();
  }
  settleAll();
  consumer.close();
  std::lock_guard<std::mutex> lock(shared.mu);
  shared.bytes += bytes;
  shared.finished = std::max(shared.finished, finished);
}

}  // namespace

int runConsume(Context& context, const BenchArgs& args) {
  createTopicIfAsked(context, args);
  Shared shared;
  if (args.count > 0) {
    shared.target = args.count;
  } else {
    TopicInfo topic = context.take(context.admin().describeTopic(args.topic));
    shared.target = topic.messages;
    for (const auto& group : topic.groups) {
      if (group.name == args.group) shared.target = group.lagMessages + group.pending;
    }
    if (shared.target == 0) {
      throw CliExit(kExitUsage, "error: group \"" + args.group + "\" of topic \"" + args.topic +
                                    "\" has nothing to consume; publish first or pass --count");
    }
  }
  const auto idle = *parseDuration(args.idle).value;

  std::vector<Client> clients;
  for (uint32_t i = 0; i < args.consumers; ++i)
    clients.push_back(connectAnother(context));
  auto start = Clock::now();
  shared.lastActivityNs = start.time_since_epoch().count();
  std::vector<std::thread> threads;
  for (uint32_t i = 0; i < args.consumers; ++i)
    threads.emplace_back([&, i] { runConsumer(clients[i], args, shared); });

  Progress progress("consume");
  auto seconds = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };
  bool idled = watchRun(
      progress, start, shared.target, [&] { return std::min(shared.taken.load(), shared.target); },
      shared.stop, shared.lastActivityNs, idle);
  shared.stop = true;
  for (auto& thread : threads)
    thread.join();
  double elapsed = seconds();
  if (shared.finished != Clock::time_point{}) {
    elapsed = std::chrono::duration<double>(shared.finished - start).count();
  }
  progress.finish();
  if (shared.error) context.fail(*shared.error);
  context.noteAnswered();
  uint64_t messages = std::min(shared.taken.load(), shared.target);
  if (idled) {
    context.note("warning: stopped after " + args.idle + " without a message, " +
                 std::to_string(messages) + " of " + std::to_string(shared.target) + " consumed");
  }
  Summary summary;
  summary.workload = "consume";
  summary.extra = Json{{"topic", args.topic},
                       {"group", args.group},
                       {"consumers", args.consumers},
                       {"prefetch", args.prefetch}};
  summary.messages = messages;
  summary.bytes = shared.bytes;
  summary.seconds = elapsed;
  printSummary(context, summary);
  return kExitOk;
}

}  // namespace sluice::cli::bench
