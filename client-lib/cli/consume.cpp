// `sluice consume`: joins a consumer group, prints each message, then acknowledges it (or
// not, or nacks it); or, with --exec, hands each to a command and acks or nacks it by the
// command's exit status. Stops after --count messages, after --wait without messages, or on
// SIGINT/SIGTERM; unacknowledged messages are then redelivered by the broker.

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <iostream>
#include <memory>

#include "commands.h"
#include "exec.h"
#include "format.h"
#include "json.h"
#include "parse.h"

namespace sluice::cli {
namespace {

// How often a blocked receive() wakes up to notice a signal.
constexpr std::chrono::milliseconds kPollSlice{200};
// Messages asked for per fetch with --count (the broker bounds one answer at 4 MiB anyway).
constexpr uint64_t kFetchBatch = 256;

std::atomic<bool> gStop{false};

extern "C" void onStopSignal(int) {
  gStop.store(true);
}

void installStopHandlers() {
  struct sigaction action {};
  action.sa_handler = onStopSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

struct ConsumeArgs {
  std::string topic;
  std::string group;
  std::string from;
  uint64_t count = 0;
  std::string wait;
  bool noAck = false;
  bool nack = false;
  std::string exec;
  std::string ackTimeout;
  bool keyOrdered = false;
  std::vector<std::string> filter;  // PATTERN[,PATTERN...] values.
};

void printMessage(Context& context, const Message& message) {
  if (context.options.json) {
    std::cout << dumpLine(messageToJson(message)) << '\n';
  } else {
    std::cout << formatMessage(message);
  }
  // Flushed before the ack: a message is acknowledged only once it reached the output.
  std::cout.flush();
}

int runConsume(Context& context, const ConsumeArgs& args) {
  SubscribeOptions options;
  if (!args.from.empty()) {
    options.start = *parseStartPosition(args.from, nowMs()).value;
    auto existing = context.admin().describeGroup(args.topic, args.group);
    if (existing.ok()) {
      context.note("note: group \"" + args.group +
                   "\" exists, so --from is ignored; move it with `sluice groups reset`");
    } else if (existing.error().code != ErrorCode::kGroupNotFound) {
      context.fail(existing.error());
    }
  }
  if (!args.ackTimeout.empty()) options.ackTimeout = *parseDuration(args.ackTimeout).value;
  options.keyOrdered = args.keyOrdered;
  options.filter = patternsOf(args.filter);
  // With --count, a fetch consumer: the broker hands over exactly the messages fetched, so
  // stopping at N leaves nothing else held (or counted as a delivery) for this command. With
  // --exec too, one message at a time, so none waits (its ack timeout running) behind a job.
  const bool running = !args.exec.empty();
  const bool fetching = args.count > 0 || running;
  if (fetching) options.prefetch = 0;
  const uint64_t fetchBatch = running ? 1 : kFetchBatch;
  // Renewed twice per ack timeout, so one late renewal does not lose the message.
  const auto renewEvery = std::max(options.ackTimeout / 2, std::chrono::milliseconds(1));
  std::optional<std::chrono::milliseconds> wait;
  if (!args.wait.empty()) wait = *parseDuration(args.wait).value;

  installStopHandlers();
  Consumer consumer = context.take(context.client().subscribe(args.topic, args.group, options));
  uint64_t received = 0;
  std::deque<Message> fetched;
  // The next message within `slice`: pushed, or from the last fetch, or fetched now.
  auto next = [&](std::chrono::milliseconds slice) -> Result<Message> {
    if (!fetching) return consumer.receive(slice);
    if (fetched.empty()) {
      uint64_t left = args.count > 0 ? args.count - received : fetchBatch;
      auto want = static_cast<uint32_t>(std::min<uint64_t>(left, fetchBatch));
      auto batch = consumer.fetch(want, slice);
      if (!batch.ok()) return batch.error();
      for (Message& message : batch.value())
        fetched.push_back(std::move(message));
      if (fetched.empty()) return Error{ErrorCode::kTimeout, "nothing arrived"};
    }
    Message message = std::move(fetched.front());
    fetched.pop_front();
    return message;
  };
  auto lastActivity = std::chrono::steady_clock::now();
  while (!gStop.load() && (args.count == 0 || received < args.count)) {
    auto slice = kPollSlice;
    if (wait) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          lastActivity + *wait - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      slice = std::min(slice, left);
    }
    Result<Message> got = next(slice);
    if (!got.ok()) {
      if (got.error().code == ErrorCode::kTimeout) continue;
      context.fail(got.error());
    }
    const Message& message = got.value();
    bool nack = args.nack;
    if (running) {
      JobOutcome job = runJob(args.exec, message, renewEvery);
      if (!job.startProblem.empty()) context.fail(Error{ErrorCode::kInternal, job.startProblem});
      if (job.renewFailure) {
        context.note("warning: offset " + std::to_string(message.offset()) +
                     ": renewing its lease failed: " + job.renewFailure->toString());
      }
      if (job.exitCode != 0) {
        nack = true;
        context.note("note: offset " + std::to_string(message.offset()) + ": the command exited " +
                     std::to_string(job.exitCode) + "; nacked for redelivery");
      }
    } else {
      printMessage(context, message);
    }
    ++received;
    lastActivity = std::chrono::steady_clock::now();
    if (args.noAck) continue;
    Result<void> settled = nack ? message.nack() : message.ack();
    if (!settled.ok()) {
      ErrorCode code = settled.error().code;
      if (code != ErrorCode::kNotPending && code != ErrorCode::kStaleDelivery &&
          code != ErrorCode::kDisconnected) {
        context.fail(settled.error());
      }
      // Its ack timeout passed and it was delivered again, or the connection was lost (the
      // consumer is subscribed again through the cluster): that delivery will be settled.
      context.note("warning: offset " + std::to_string(message.offset()) +
                   " was not settled: " + settled.error().toString());
    }
  }
  consumer.close();
  return kExitOk;
}

}  // namespace

void addConsumeCommand(CLI::App& app, Context& context) {
  auto args = std::make_shared<ConsumeArgs>();
  CLI::App* cmd = app.add_subcommand(
      "consume", "Receive messages as a member of a consumer group, acking each after printing");
  cmd->footer(
      "--from, --key-ordered and --filter shape the group when this command creates it; move\n"
      "an existing group with `sluice groups reset`. An existing group is joined with its own\n"
      "--filter or none. Ctrl-C stops; unacknowledged messages are redelivered.\n"
      "--exec runs CMD for one message at a time with SLUICE_TOPIC, SLUICE_SUBJECT,\n"
      "SLUICE_OFFSET, SLUICE_DELIVERIES, SLUICE_TIMESTAMP_MS, SLUICE_KEY and SLUICE_ID set, and\n"
      "renews the message's lease twice per ack timeout while CMD runs.\n"
      "Examples:\n"
      "  sluice consume orders --group billing\n"
      "  sluice consume orders --group audit --from 2024-05-01T00:00:00Z --count 100 --json\n"
      "  sluice consume orders --group eu-billing --filter 'orders.eu.*'\n"
      "  sluice consume jobs --group workers --exec './resize-image' --ack-timeout 1m");
  cmd->add_option("TOPIC", args->topic, "Topic to consume")->required();
  cmd->add_option("--group,-g", args->group, "Consumer group (created if missing)")
      ->required()
      ->type_name("G");
  cmd->add_option("--from", args->from,
                  "Start of a new group: earliest (default), latest, OFFSET, TIME or DUR ago")
      ->check(startPositionValidator())
      ->type_name("POSITION");
  cmd->add_option("--count,-n", args->count, "Stop after N messages")
      ->check(CLI::PositiveNumber)
      ->type_name("N");
  cmd->add_option("--wait", args->wait, "Stop when nothing arrives for this long")
      ->check(durationValidator())
      ->type_name("DUR");
  CLI::Option* noAck =
      cmd->add_flag("--no-ack", args->noAck, "Do not acknowledge (messages are redelivered)");
  CLI::Option* nack = cmd->add_flag("--nack", args->nack, "Nack each message after printing");
  noAck->excludes(nack);
  CLI::Option* exec = cmd->add_option(
      "--exec", args->exec,
      "Run CMD (with /bin/sh) per message, payload on stdin: ack if it exits 0, else nack");
  exec->type_name("CMD");
  exec->excludes(noAck)->excludes(nack);
  cmd->add_option("--ack-timeout", args->ackTimeout,
                  "Redeliver a message not acked within DUR (default 30s); --exec renews it")
      ->check(durationValidator())
      ->type_name("DUR");
  cmd->add_flag("--key-ordered", args->keyOrdered,
                "Create the group key-ordered: one message per key in flight, in offset order");
  cmd->add_option("--filter", args->filter,
                  "Create the group with a subject filter: only messages whose subject matches "
                  "a pattern (comma-separated or repeated, at most 32)")
      ->check(patternListValidator())
      ->type_name("PATTERN[,PATTERN...]")
      ->allow_extra_args(false);
  cmd->callback([&context, args] {
    context.action = [&context, args] { return runConsume(context, *args); };
  });
}

}  // namespace sluice::cli
