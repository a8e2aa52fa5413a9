// `sluice bench latency`: one producer publishes at --rate (asynchronously, so a slow
// acknowledgement does not delay the next message) while one consumer of its own group
// receives and acknowledges each message. Every payload carries the steady_clock time of its
// publish call, so end-to-end latency is publish call -> receive() returning, on this host.

#include <unistd.h>

#include <cstring>
#include <deque>
#include <future>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "bench.h"

namespace sluice::cli::bench {
namespace {

using Clock = std::chrono::steady_clock;

// Payload layout: run nonce (8 bytes), publish time in steady_clock ticks (8 bytes), filler.
// The nonce tells this run's messages from leftovers of an earlier run in the same group.
constexpr size_t kHeaderBytes = 16;

struct Stamp {
  uint64_t nonce;
  int64_t ticks;
};

void writeStamp(std::string& payload, Stamp stamp) {
  std::memcpy(payload.data(), &stamp.nonce, 8);
  std::memcpy(payload.data() + 8, &stamp.ticks, 8);
}

std::optional<Stamp> readStamp(const std::string& payload) {
  if (payload.size() < kHeaderBytes) return std::nullopt;
  Stamp stamp{};
  std::memcpy(&stamp.nonce, payload.data(), 8);
  std::memcpy(&stamp.ticks, payload.data() + 8, 8);
  return stamp;
}

struct Shared {
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> published{0};  // Acknowledged publishes.
  std::atomic<uint64_t> received{0};   // This run's messages received.
  std::mutex mu;
  std::optional<Error> error;          // Guarded by mu.
  std::vector<uint32_t> ackLatencies;  // Guarded by mu.
};

void fail(Shared& shared, const Error& error) {
  std::lock_guard<std::mutex> lock(shared.mu);
  if (!shared.error) shared.error = error;
  shared.stop = true;
}

void runReceiver(Consumer& consumer, uint64_t nonce, Shared& shared,
                 std::vector<uint32_t>& latencies) {
  std::deque<std::future<Result<void>>> acks;
  auto settleOldest = [&] {
    Result<void> acked = acks.front().get();
    acks.pop_front();
    if (!acked.ok() && acked.error().code != ErrorCode::kNotPending &&
        acked.error().code != ErrorCode::kStaleDelivery) {
      fail(shared, acked.error());
    }
  };
  while (!shared.stop.load(std::memory_order_relaxed)) {
    Result<Message> next = consumer.receive(std::chrono::milliseconds(50));
    auto now = Clock::now();
    if (!next.ok()) {
      if (next.error().code == ErrorCode::kTimeout) continue;
      fail(shared, next.error());
      break;
    }
    auto stamp = readStamp(next.value().payload());
    if (stamp && stamp->nonce == nonce) {
      latencies.push_back(micros(now - Clock::time_point(Clock::duration(stamp->ticks))));
      shared.received.fetch_add(1, std::memory_order_release);
    }
    acks.push_back(next.value().ackAsync());
    while (acks.size() > 1 &&
           acks.front().wait_for(std::chrono::seconds(0)) == std::future_status::ready)
      settleOldest();
    if (acks.size() > 10000) settleOldest();
  }
  while (!acks.empty())
    settleOldest();
}

}  // namespace

int runLatency(Context& context, const BenchArgs& args) {
  createTopicIfAsked(context, args);
  context.take(context.admin().describeTopic(args.topic));
  const size_t size = std::max(payloadSize(args), kHeaderBytes);
  const std::string group = args.group.empty() ? "sluice-bench-latency" : args.group;
  const auto duration = durationOf(args, std::chrono::seconds(10));
  const uint64_t count = args.count;
  const auto period = std::chrono::nanoseconds(1'000'000'000 / args.rate);
  const uint64_t nonce = std::random_device{}() ^ (uint64_t(::getpid()) << 32) ^
                         static_cast<uint64_t>(Clock::now().time_since_epoch().count());

  Client publisherClient = connectAnother(context);
  Client consumerClient = connectAnother(context);
  SubscribeOptions options;
  options.start = StartPosition::latest();
  options.prefetch = args.prefetch;
  Consumer consumer = context.take(consumerClient.subscribe(args.topic, group, options));

  Shared shared;
  std::vector<uint32_t> e2e;
  std::thread receiver([&] { runReceiver(consumer, nonce, shared, e2e); });

  Producer producer = publisherClient.producer();
  std::string payload(size, 'x');
  Progress progress("latency");
  auto start = Clock::now();
  auto seconds = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };
  uint64_t sent = 0;
  for (;; ++sent) {
    auto due = start + period * sent;
    if (count > 0 ? sent >= count : due - start >= duration) break;
    if (shared.stop.load()) break;
    std::this_thread::sleep_until(due);
    OutgoingMessage message;
    message.payload = payload;
    auto called = Clock::now();
    writeStamp(message.payload, Stamp{nonce, called.time_since_epoch().count()});
    producer.publishAsync(args.topic, std::move(message),
                          [&shared, called](Result<PublishAck> result) {
                            uint32_t us = micros(Clock::now() - called);
                            if (!result.ok()) return fail(shared, result.error());
                            {
                              std::lock_guard<std::mutex> lock(shared.mu);
                              shared.ackLatencies.push_back(us);
                            }
                            shared.published.fetch_add(1, std::memory_order_release);
                          });
    progress.update(sent, seconds());
  }
  auto flushed = producer.flush();
  if (!flushed.ok()) fail(shared, flushed.error());
  double elapsed = seconds();
  // Wait for the consumer to see everything that was acknowledged.
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (!shared.stop.load() && shared.received.load(std::memory_order_acquire) <
                                    shared.published.load(std::memory_order_acquire)) {
    if (Clock::now() > deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  shared.stop = true;
  receiver.join();
  consumer.close();
  progress.finish();
  if (shared.error) context.fail(*shared.error);
  context.noteAnswered();
  uint64_t received = shared.received.load();
  if (received < shared.published.load()) {
    context.note("warning: the consumer received " + std::to_string(received) + " of " +
                 std::to_string(shared.published.load()) + " acknowledged messages");
  }

  Summary summary;
  summary.workload = "latency";
  summary.extra = Json{{"topic", args.topic},
                       {"group", group},
                       {"rate", args.rate},
                       {"size", size},
                       {"published", shared.published.load()}};
  summary.messages = received;
  summary.bytes = received * size;
  summary.seconds = elapsed;
  summary.latencies.emplace_back("e2e_latency", summarize(std::move(e2e)));
  {
    std::lock_guard<std::mutex> lock(shared.mu);
    summary.latencies.emplace_back("ack_latency", summarize(shared.ackLatencies));
  }
  printSummary(context, summary);
  return kExitOk;
}

}  // namespace sluice::cli::bench
