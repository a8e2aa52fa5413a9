// `sluice peek`: reads messages by offset, touching no consumer group.

#include <algorithm>
#include <iostream>
#include <memory>

#include "commands.h"
#include "format.h"
#include "json.h"

namespace sluice::cli {
namespace {

constexpr uint32_t kMaxPerCall = 1000;  // The broker's limit for one peek.
constexpr uint64_t kDefaultCount = 10;

struct PeekArgs {
  std::string topic;
  uint64_t from = 0;
  CLI::Option* fromOption = nullptr;
  uint64_t last = 0;
  CLI::Option* lastOption = nullptr;
  uint64_t count = kDefaultCount;
};

int runPeek(Context& context, const PeekArgs& args) {
  uint64_t next = args.from;
  uint64_t remaining = args.count;
  if (args.fromOption->count() == 0) {
    TopicInfo topic = context.take(context.admin().describeTopic(args.topic));
    if (args.lastOption->count() > 0) {
      remaining = args.last;
      next = topic.lastOffset >= args.last ? topic.lastOffset - args.last + 1 : 1;
      next = std::max(next, topic.firstOffset);
    } else {
      next = std::max<uint64_t>(topic.firstOffset, 1);
    }
  }
  uint64_t printed = 0;
  while (remaining > 0) {
    auto batch = static_cast<uint32_t>(std::min<uint64_t>(remaining, kMaxPerCall));
    auto messages = context.take(context.admin().peek(args.topic, next, batch));
    if (messages.empty()) break;
    for (const Message& message : messages) {
      if (context.options.json) {
        std::cout << dumpLine(messageToJson(message)) << '\n';
      } else {
        std::cout << formatMessage(message);
      }
    }
    printed += messages.size();
    remaining -= std::min<uint64_t>(remaining, messages.size());
    next = messages.back().offset() + 1;
  }
  std::cout.flush();
  if (printed == 0 && !context.options.json) {
    context.note("no messages at offset " + std::to_string(next) + " or later");
  }
  return kExitOk;
}

}  // namespace

void addPeekCommand(CLI::App& app, Context& context) {
  auto args = std::make_shared<PeekArgs>();
  CLI::App* cmd =
      app.add_subcommand("peek", "Read messages by offset without touching any consumer group");
  cmd->footer(
      "Without --from or --last, reads from the oldest retained message.\n"
      "Examples:\n"
      "  sluice peek orders --last 5\n"
      "  sluice peek orders --from 1200 --count 50 --json");
  cmd->add_option("TOPIC", args->topic, "Topic to read")->required();
  args->fromOption = cmd->add_option("--from", args->from, "First offset to read")
                         ->check(CLI::PositiveNumber)
                         ->type_name("OFFSET");
  args->lastOption = cmd->add_option("--last", args->last, "Read the newest N messages")
                         ->check(CLI::PositiveNumber)
                         ->type_name("N");
  CLI::Option* count =
      cmd->add_option("--count,-n", args->count, "Read at most N messages (default 10)")
          ->check(CLI::PositiveNumber)
          ->type_name("N");
  args->lastOption->excludes(args->fromOption)->excludes(count);
  cmd->callback(
      [&context, args] { context.action = [&context, args] { return runPeek(context, *args); }; });
}

}  // namespace sluice::cli
