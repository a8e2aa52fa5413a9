// `sluice publish`: one message (argument, file or stdin), one per line (--lines), or N
// generated messages (--count). Stdout carries exactly one offset per message, in input order,
// so a script can record what was acknowledged; with --count, a summary instead.

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <deque>
#include <fstream>
#include <future>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>

#include "commands.h"
#include "format.h"
#include "json.h"
#include "parse.h"

namespace sluice::cli {
namespace {

// Acknowledgements awaited at once; bounds client memory while keeping the pipe full.
constexpr size_t kWindow = 8192;
constexpr size_t kDefaultGeneratedSize = 100;

struct PublishArgs {
  std::string topic;
  std::string message;
  CLI::Option* messageOption = nullptr;
  std::string key;
  CLI::Option* keyOption = nullptr;
  std::vector<std::string> headers;
  std::string id;
  std::string file;
  bool lines = false;
  uint64_t count = 0;
  CLI::Option* countOption = nullptr;
  std::string size;
  std::string delay;
  std::string at;
  std::string ttl;
};

OutgoingMessage baseMessage(const PublishArgs& args) {
  OutgoingMessage message;
  if (args.keyOption->count() > 0) message.key = args.key;
  for (const auto& header : args.headers)
    message.headers.insert(*parseHeader(header).value);
  if (!args.delay.empty()) message.delay = *parseDuration(args.delay).value;
  if (!args.at.empty()) message.deliverAtMs = *parseRfc3339(args.at).value;
  if (!args.ttl.empty()) message.ttl = *parseDuration(args.ttl).value;
  return message;
}

// With several messages, `--id X` gives message n (1-based) the id `X-n`, so re-running the
// same command within the dedup window stores nothing twice.
std::string idFor(const PublishArgs& args, uint64_t number) {
  return args.id.empty() ? std::string() : args.id + "-" + std::to_string(number);
}

void printAck(Context& context, const PublishAck& ack) {
  if (context.options.json) {
    std::cout << dumpLine(publishAckToJson(ack)) << '\n';
  } else {
    std::cout << ack.offset << '\n';
  }
}

int runSingle(Context& context, const PublishArgs& args, std::string payload) {
  OutgoingMessage message = baseMessage(args);
  message.payload = std::move(payload);
  message.id = args.id;
  Producer producer = context.client().producer();
  printAck(context, context.take(producer.publish(args.topic, std::move(message))));
  return kExitOk;
}

std::string readAll(std::istream& in) {
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Publishes each line of `in` (without its '\n'; empty lines are empty messages).
int runLines(Context& context, const PublishArgs& args, std::istream& in) {
  Producer producer = context.client().producer();
  struct Sent {
    uint64_t line;
    std::future<Result<PublishAck>> ack;
  };
  std::deque<Sent> inFlight;
  std::optional<Error> failure;
  uint64_t failedLine = 0;
  uint64_t storedAfterFailure = 0;

  // Settles in input order, so stdout stays in input order; after the first failure no
  // offset is printed (a gap would shift every later line), but later successes are counted.
  auto settleOldest = [&] {
    Sent sent = std::move(inFlight.front());
    inFlight.pop_front();
    Result<PublishAck> result = sent.ack.get();
    if (failure) {
      if (result.ok()) ++storedAfterFailure;
    } else if (result.ok()) {
      context.noteAnswered();
      printAck(context, result.value());
    } else {
      failure = result.error();
      failedLine = sent.line;
    }
  };

  std::string line;
  uint64_t number = 0;
  while (!failure && std::getline(in, line)) {
    OutgoingMessage message = baseMessage(args);
    message.payload = std::move(line);
    message.id = idFor(args, ++number);
    inFlight.push_back({number, producer.publishAsync(args.topic, std::move(message))});
    if (inFlight.size() >= kWindow) settleOldest();
  }
  while (!inFlight.empty())
    settleOldest();
  std::cout.flush();
  if (failure) {
    // The library sends lines in batches and a batch fails as a whole, so the first failed
    // line is not necessarily the offending one; the broker's message names the culprit's
    // position within its batch.
    std::string where = " (input line " + std::to_string(failedLine) + " was not stored; the " +
                        std::to_string(failedLine - 1) + " lines before it were";
    if (storedAfterFailure > 0) {
      where += ", and so were " + std::to_string(storedAfterFailure) + " later lines already sent";
    }
    throw CliExit(context.exitCodeFor(*failure), "error: " + failure->toString() + where + ")");
  }
  return kExitOk;
}

class ProgressBar {
 public:
  explicit ProgressBar(uint64_t total) : total_(total), enabled_(::isatty(STDERR_FILENO) != 0) {}

  void update(uint64_t done, double seconds) {
    if (!enabled_) return;
    auto now = std::chrono::steady_clock::now();
    if (done != total_ && now - lastDraw_ < std::chrono::milliseconds(100)) return;
    lastDraw_ = now;
    constexpr int kWidth = 30;
    int filled = total_ == 0 ? kWidth : static_cast<int>(done * kWidth / total_);
    std::string bar = std::string(static_cast<size_t>(filled), '#') +
                      std::string(static_cast<size_t>(kWidth - filled), '.');
    double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0;
    std::fprintf(stderr, "\r[%s] %3d%% %llu/%llu %s ", bar.c_str(),
                 total_ == 0 ? 100 : static_cast<int>(done * 100 / total_),
                 static_cast<unsigned long long>(done), static_cast<unsigned long long>(total_),
                 formatRate(rate).c_str());
    std::fflush(stderr);
  }

  void finish() {
    if (enabled_) std::fputs("\r\033[K", stderr);  // Clear the bar's line.
  }

 private:
  uint64_t total_;
  bool enabled_;
  std::chrono::steady_clock::time_point lastDraw_{};
};

// `size` bytes that differ per message: the message number, then filler.
std::string generatedPayload(uint64_t number, size_t size) {
  std::string payload = std::to_string(number) + " ";
  payload.resize(size, 'x');
  return payload;
}

int runGenerated(Context& context, const PublishArgs& args) {
  size_t size = kDefaultGeneratedSize;
  if (!args.size.empty()) size = static_cast<size_t>(*parseSize(args.size).value);
  bool fixed = args.messageOption->count() > 0;
  Producer producer = context.client().producer();
  ProgressBar progress(args.count);
  std::deque<std::future<Result<PublishAck>>> inFlight;
  uint64_t acked = 0, duplicates = 0, bytes = 0, firstOffset = 0, lastOffset = 0;
  auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  auto settleOldest = [&] {
    Result<PublishAck> result = inFlight.front().get();
    inFlight.pop_front();
    if (!result.ok()) {
      progress.finish();
      context.note("published " + std::to_string(acked) + " of " + std::to_string(args.count) +
                   " messages before the error");
      context.fail(result.error());
    }
    context.noteAnswered();
    if (firstOffset == 0) firstOffset = result.value().offset;
    lastOffset = result.value().offset;
    duplicates += result.value().duplicate ? 1 : 0;
    ++acked;
    progress.update(acked, elapsed());
  };
  for (uint64_t number = 1; number <= args.count; ++number) {
    OutgoingMessage message = baseMessage(args);
    message.payload = fixed ? args.message : generatedPayload(number, size);
    message.id = idFor(args, number);
    bytes += message.payload.size();
    inFlight.push_back(producer.publishAsync(args.topic, std::move(message)));
    if (inFlight.size() >= kWindow) settleOldest();
  }
  while (!inFlight.empty())
    settleOldest();
  double seconds = elapsed();
  progress.finish();
  double rate = seconds > 0 ? static_cast<double>(acked) / seconds : 0;
  double byteRate = seconds > 0 ? static_cast<double>(bytes) / seconds : 0;
  if (context.options.json) {
    context.print(dumpLine(Json{{"messages", acked},
                                {"duplicates", duplicates},
                                {"bytes", bytes},
                                {"seconds", seconds},
                                {"messages_per_second", rate},
                                {"bytes_per_second", byteRate},
                                {"first_offset", firstOffset},
                                {"last_offset", lastOffset}}));
  } else {
    char secondsText[32];
    std::snprintf(secondsText, sizeof secondsText, "%.2fs", seconds);
    std::string line = "published " + std::to_string(acked) + " messages (" + formatBytes(bytes) +
                       ") in " + secondsText + ": " + formatRate(rate) + ", " +
                       formatBytes(static_cast<uint64_t>(byteRate)) + "/s";
    if (acked > 0) {
      line += "; offsets " + std::to_string(firstOffset) + ".." + std::to_string(lastOffset);
    }
    if (duplicates > 0) line += "; " + std::to_string(duplicates) + " duplicates";
    context.print(line);
  }
  return kExitOk;
}

int runPublish(Context& context, const PublishArgs& args) {
  if (args.countOption->count() > 0) return runGenerated(context, args);
  if (args.messageOption->count() > 0) return runSingle(context, args, args.message);
  std::ifstream file;
  std::istream* in = &std::cin;
  if (!args.file.empty()) {
    file.open(args.file, std::ios::binary);
    if (!file) throw CliExit(kExitUsage, "error: --file: cannot open \"" + args.file + "\"");
    in = &file;
  }
  if (in == &std::cin && ::isatty(STDIN_FILENO)) {
    context.note(args.lines ? "reading messages from the terminal, one per line; Ctrl-D ends"
                            : "reading the message from the terminal; Ctrl-D ends it");
  }
  if (args.lines) return runLines(context, args, *in);
  std::string payload = readAll(*in);
  if (in->bad()) throw CliExit(kExitUsage, "error: cannot read the message input");
  return runSingle(context, args, std::move(payload));
}

}  // namespace

void addPublishCommand(CLI::App& app, Context& context) {
  auto args = std::make_shared<PublishArgs>();
  CLI::App* cmd = app.add_subcommand(
      "publish", "Publish messages; prints each acknowledged offset, one per line");
  cmd->footer(
      "MESSAGE, --file or stdin: the whole input is one message; with --lines each line is one.\n"
      "Examples:\n"
      "  sluice publish orders '{\"id\":1}' --key customer-7 --header source=web\n"
      "  sluice publish orders --lines --id import-2024-05 < orders.jsonl\n"
      "  sluice publish orders --count 100000 --size 1KiB\n"
      "  sluice publish reminders '{\"user\":7}' --delay 1h");
  cmd->add_option("TOPIC", args->topic, "Topic to publish to")->required();
  args->messageOption = cmd->add_option("MESSAGE", args->message, "Payload (else stdin)");
  args->keyOption = cmd->add_option("--key", args->key, "Message key")->type_name("K");
  cmd->add_option("--header", args->headers, "Header, repeatable")
      ->check(headerValidator())
      ->type_name("K=V")
      ->allow_extra_args(false);
  cmd->add_option("--id", args->id,
                  "Message id for deduplication; with several messages, message n gets MSGID-n")
      ->type_name("MSGID");
  CLI::Option* file =
      cmd->add_option("--file", args->file, "Read the payload from a file")->type_name("PATH");
  CLI::Option* lines = cmd->add_flag("--lines", args->lines, "Publish each input line");
  args->countOption =
      cmd->add_option("--count", args->count,
                      "Publish N generated messages (or MESSAGE N times); prints a summary")
          ->check(CLI::PositiveNumber)
          ->type_name("N");
  CLI::Option* size =
      cmd->add_option("--size", args->size, "Payload size of generated messages (default 100)")
          ->check(sizeValidator())
          ->type_name("BYTES");
  CLI::Option* delay =
      cmd->add_option("--delay", args->delay,
                      "Delayed delivery: no group gets the message(s) before DUR (at most 30d)")
          ->check(durationValidator())
          ->type_name("DUR");
  cmd->add_option("--at", args->at,
                  "Delayed delivery: no group gets the message(s) before TIME (RFC 3339; past: "
                  "at once)")
      ->check(timeValidator())
      ->type_name("TIME")
      ->excludes(delay);
  cmd->add_option("--ttl", args->ttl,
                  "Time to live from when deliverable (1ms to 30d): never delivered after, "
                  "then dropped (default: the topic's)")
      ->check(durationValidator())
      ->type_name("DUR");
  size->needs(args->countOption);
  file->excludes(args->messageOption);
  lines->excludes(args->messageOption);
  args->countOption->excludes(file)->excludes(lines);
  size->excludes(args->messageOption);
  cmd->callback([&context, args] {
    context.action = [&context, args] { return runPublish(context, *args); };
  });
}

}  // namespace sluice::cli
