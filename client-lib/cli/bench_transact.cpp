// `sluice bench transact`: atomic ack-and-publish, one input message to one output message.
// --consumers fetch consumers (prefetch 0) of one group, each with its own connection, share
// --in-flight transactions: a fetcher thread per consumer takes messages of TOPIC and, for
// each, calls Consumer::transactAsync() to acknowledge it and publish a copy of its payload to
// --to; the answers arrive on the connection's I/O thread, which refills the fetcher's window.
// The rate counts from the first fetch (after every consumer subscribed) until the last
// transaction is answered. Fetch consumers hold exactly the messages they took, so the end can
// check the outcome exactly: the output topic grew by one message per committed transaction,
// the group acknowledged as many, and nothing of the group is left pending.

#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "bench.h"
#include "parse.h"

namespace sluice::cli::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct Shared {
  uint64_t target = 0;
  std::atomic<uint64_t> claimed{0};    // Messages asked for by fetchers, at most target.
  std::atomic<uint64_t> committed{0};  // Transactions answered with success.
  std::atomic<bool> stop{false};
  std::atomic<int64_t> lastActivityNs{0};
  std::mutex mu;
  std::optional<Error> error;  // Guarded by mu; the first failure.
};

void fail(Shared& shared, const Error& error) {
  std::lock_guard<std::mutex> lock(shared.mu);
  if (!shared.error) shared.error = error;
  shared.stop = true;
}

void noteActivity(Shared& shared) {
  shared.lastActivityNs.store(Clock::now().time_since_epoch().count(), std::memory_order_relaxed);
}

// What one lane's answers measured: written by its connection's I/O thread, read once none
// is outstanding.
struct LaneRun {
  std::vector<uint32_t> latencies;
  uint64_t bytes = 0;
  Clock::time_point lastAnswer{};
};

// One consumer and its fetcher. `held` counts the messages fetched whose transaction is not
// answered yet: at most `window`, refilled once it falls to `refillAt`.
struct Lane {
  Lane(Client connected, uint32_t inFlight)
      : client(std::move(connected)),
        window(inFlight),
        refillAt(window - std::max<uint32_t>(1, window / 4)) {}

  Client client;
  Consumer consumer;
  const uint32_t window;
  // A refill waits until a quarter of the window is answered, so that each fetch carries
  // several messages.
  const uint32_t refillAt;
  std::mutex mu;
  std::condition_variable room;  // `held` fell to refillAt or to 0, or stop.
  uint32_t held = 0;             // Guarded by mu.
  LaneRun run;
};

// Claims up to `want` of the run's remaining messages; returns how many.
uint64_t claim(Shared& shared, uint64_t want) {
  uint64_t claimed = shared.claimed.load();
  for (;;) {
    uint64_t take = std::min(want, shared.target - std::min(claimed, shared.target));
    if (take == 0) return 0;
    if (shared.claimed.compare_exchange_weak(claimed, claimed + take)) return take;
  }
}

// Called with each answer, on the lane's I/O thread.
void answered(Lane& lane, Shared& shared, const std::string& id, size_t bytes,
              Clock::time_point started, Result<TransactionResult> result) {
  auto now = Clock::now();
  if (!result.ok()) {
    fail(shared, result.error());
  } else if (result.value().replayed || result.value().outputs.size() != 1 ||
             result.value().outputs[0].second.size() != 1) {
    fail(shared, Error{ErrorCode::kInternal,
                       "transaction " + id + " was answered with " +
                           (result.value().replayed ? "replayed = true" : "the wrong outputs") +
                           "; expected one new output message"});
  } else {
    lane.run.latencies.push_back(micros(now - started));
    lane.run.bytes += bytes;
    lane.run.lastAnswer = now;
    shared.committed.fetch_add(1, std::memory_order_relaxed);
    noteActivity(shared);
  }
  bool wake;
  {
    std::lock_guard<std::mutex> lock(lane.mu);
    --lane.held;
    wake = lane.held == lane.refillAt || lane.held == 0;
  }
  if (wake) lane.room.notify_all();
}

void runFetcher(Lane& lane, const BenchArgs& args, const std::string& runId, Shared& shared) {
  while (!shared.stop.load(std::memory_order_relaxed)) {
    uint32_t held;
    {
      std::unique_lock<std::mutex> lock(lane.mu);
      lane.room.wait(lock, [&] { return lane.held <= lane.refillAt || shared.stop.load(); });
      held = lane.held;
    }
    if (shared.stop.load()) break;
    uint64_t asked = claim(shared, lane.window - held);
    if (asked == 0) {
      // Nothing left to claim unless a short fetch elsewhere gives some back.
      std::unique_lock<std::mutex> lock(lane.mu);
      lane.room.wait_for(lock, std::chrono::milliseconds(20), [&] { return shared.stop.load(); });
      continue;
    }
    auto fetched =
        lane.consumer.fetch(static_cast<uint32_t>(asked), std::chrono::milliseconds(100));
    if (!fetched.ok()) {
      shared.claimed.fetch_sub(asked);
      fail(shared, fetched.error());
      break;
    }
    std::vector<Message>& messages = fetched.value();
    if (messages.size() < asked) shared.claimed.fetch_sub(asked - messages.size());
    if (messages.empty()) continue;
    noteActivity(shared);
    {
      std::lock_guard<std::mutex> lock(lane.mu);
      lane.held += static_cast<uint32_t>(messages.size());
    }
    for (Message& input : messages) {
      Transaction transaction;
      transaction.id = runId + "-" + std::to_string(input.offset());
      transaction.ack(input);
      OutgoingMessage output;
      output.payload = input.payload();
      transaction.publish(args.to, std::move(output));
      lane.consumer.transactAsync(
          transaction, [&lane, &shared, id = transaction.id, bytes = input.payload().size(),
                        started = Clock::now()](Result<TransactionResult> result) {
            answered(lane, shared, id, bytes, started, std::move(result));
          });
    }
  }
}

std::string newRunId() {
  std::random_device device;
  uint64_t nonce = (uint64_t(device()) << 32) ^ device() ^ (uint64_t(::getpid()) << 16) ^
                   static_cast<uint64_t>(Clock::now().time_since_epoch().count());
  char text[32];
  std::snprintf(text, sizeof text, "bench-%016llx", static_cast<unsigned long long>(nonce));
  return text;
}

std::optional<GroupInfo> findGroup(const TopicInfo& topic, const std::string& name) {
  for (const auto& group : topic.groups) {
    if (group.name == name) return group;
  }
  return std::nullopt;
}

}  // namespace

int runTransact(Context& context, const BenchArgs& args) {
  if (args.inFlight < args.consumers) {
    throw CliExit(kExitUsage, "error: --in-flight (" + std::to_string(args.inFlight) +
                                  ") must be at least --consumers (" +
                                  std::to_string(args.consumers) + "): each consumer needs a " +
                                  "transaction in flight");
  }
  createTopicIfAsked(context, args);
  if (args.create) {
    auto created = context.admin().createTopic(args.to);
    if (!created.ok() && created.error().code != ErrorCode::kTopicExists) {
      context.fail(created.error());
    }
  }
  // Both fail early, with the usual exit code, when a topic does not exist.
  TopicInfo outputBefore = context.take(context.admin().describeTopic(args.to));
  TopicInfo input = context.take(context.admin().describeTopic(args.topic));
  std::optional<GroupInfo> groupBefore = findGroup(input, args.group);
  const uint64_t backlog =
      groupBefore ? groupBefore->lagMessages + groupBefore->pending : input.messages;
  const uint64_t pendingBefore = groupBefore ? groupBefore->pending : 0;
  const uint64_t ackedBefore = groupBefore ? groupBefore->acked : 0;
  Shared shared;
  shared.target = args.count > 0 ? args.count : backlog;
  if (shared.target == 0) {
    throw CliExit(kExitUsage, "error: group \"" + args.group + "\" of topic \"" + args.topic +
                                  "\" has nothing to consume; publish first or pass --count");
  }
  const auto idle = *parseDuration(args.idle).value;
  const std::string runId = newRunId();

  std::vector<std::unique_ptr<Lane>> lanes;
  SubscribeOptions options;
  options.prefetch = 0;  // Fetch: the consumer holds exactly what it takes.
  for (uint32_t i = 0; i < args.consumers; ++i) {
    uint32_t inFlight =
        args.inFlight / args.consumers + (i < args.inFlight % args.consumers ? 1 : 0);
    auto lane = std::make_unique<Lane>(connectAnother(context), inFlight);
    lane->consumer = context.take(lane->client.subscribe(args.topic, args.group, options));
    lanes.push_back(std::move(lane));
  }

  std::vector<std::thread> threads;
  auto start = Clock::now();
  shared.lastActivityNs = start.time_since_epoch().count();
  for (auto& lane : lanes)
    threads.emplace_back([&, lane = lane.get()] { runFetcher(*lane, args, runId, shared); });

  Progress progress("transact");
  bool idled = watchRun(
      progress, start, shared.target, [&] { return shared.committed.load(); }, shared.stop,
      shared.lastActivityNs, idle);
  shared.stop = true;
  for (auto& lane : lanes) {
    // Taken and released so that no fetcher misses the stop between its check and its wait.
    { std::lock_guard<std::mutex> lock(lane->mu); }
    lane->room.notify_all();
  }
  for (auto& thread : threads)
    thread.join();
  // Every transaction is answered (by the broker, or with kDisconnected if the connection
  // ends) before the lanes' results are read.
  for (auto& lane : lanes) {
    std::unique_lock<std::mutex> lock(lane->mu);
    if (!lane->room.wait_for(lock, std::chrono::seconds(60), [&] { return lane->held == 0; })) {
      throw CliExit(kExitError, "error: bench transact: " + std::to_string(lane->held) +
                                    " transactions still unanswered 60 s after the run");
    }
  }
  progress.finish();
  for (auto& lane : lanes)
    lane->consumer.close();
  if (shared.error) context.fail(*shared.error);
  context.noteAnswered();

  const uint64_t committed = shared.committed.load();
  std::vector<uint32_t> latencies;
  uint64_t bytes = 0;
  Clock::time_point lastAnswer = start;
  for (auto& lane : lanes) {
    const LaneRun& run = lane->run;
    latencies.insert(latencies.end(), run.latencies.begin(), run.latencies.end());
    bytes += run.bytes;
    lastAnswer = std::max(lastAnswer, run.lastAnswer);
  }
  if (idled) {
    context.note("warning: stopped after " + args.idle + " without a message, " +
                 std::to_string(committed) + " of " + std::to_string(shared.target) +
                 " transactions committed");
  }

  // The outcome, from the broker's side.
  TopicInfo outputAfter = context.take(context.admin().describeTopic(args.to));
  GroupInfo groupAfter = context.take(context.admin().describeGroup(args.topic, args.group));
  // Signed: retention or another client could make either count fall.
  const auto appended = static_cast<int64_t>(outputAfter.lastOffset - outputBefore.lastOffset);
  const auto stored = static_cast<int64_t>(outputAfter.messages - outputBefore.messages);
  const auto acked = static_cast<int64_t>(groupAfter.acked - ackedBefore);
  const auto expected = static_cast<int64_t>(committed);
  std::vector<std::string> problems;
  if (appended != expected) {
    problems.push_back("topic \"" + args.to + "\" was appended " + std::to_string(appended) +
                       " messages (last offset " + std::to_string(outputBefore.lastOffset) +
                       " -> " + std::to_string(outputAfter.lastOffset) + ")");
  }
  if (stored != expected) {
    problems.push_back("topic \"" + args.to + "\" holds " + std::to_string(stored) +
                       " more messages");
  }
  if (acked != expected) {
    problems.push_back("group \"" + args.group + "\" acknowledged " + std::to_string(acked));
  }
  // Messages pending before the run may be among those it did not take (a --count below
  // the backlog); otherwise whatever the run took was acknowledged by its transaction.
  if (groupAfter.pending != 0 && (pendingBefore == 0 || committed == backlog)) {
    problems.push_back("group \"" + args.group + "\" still has " +
                       std::to_string(groupAfter.pending) + " messages pending");
  }
  if (!problems.empty()) {
    std::string text =
        "error: bench transact: " + std::to_string(committed) + " transactions committed, but ";
    for (size_t i = 0; i < problems.size(); ++i)
      text += (i == 0 ? "" : "; ") + problems[i];
    throw CliExit(kExitError, text + " (is anything else using them?)");
  }

  Summary summary;
  summary.workload = "transact";
  summary.noun = "transactions";
  summary.rateUnit = "tx/s";
  summary.extra = Json{{"topic", args.topic},
                       {"to", args.to},
                       {"group", args.group},
                       {"consumers", args.consumers},
                       {"in_flight", args.inFlight},
                       {"output_messages", appended},
                       {"pending_after", groupAfter.pending}};
  summary.messages = committed;
  summary.bytes = bytes;
  summary.seconds = std::chrono::duration<double>(lastAnswer - start).count();
  summary.latencies.emplace_back("transact_latency", summarize(std::move(latencies)));
  printSummary(context, summary);
  return kExitOk;
}

}  // namespace sluice::cli::bench
