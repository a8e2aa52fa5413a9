// `sluice publish`: one message (argument, file or stdin), one per line (--lines), or N
// generated messages (--count), to a topic or (--subject) to every topic capturing a subject.
// Stdout carries exactly one line per message, in input order (its offset; routed, its offset
// in each topic), so a script can record what was acknowledged; with --count, a summary instead.

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <fstream>
#include <future>
#include <iostream>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "commands.h"
#include "format.h"
#include "json.h"
#include "parse.h"

namespace sluice::cli {
namespace {

// Acknowledgements awaited at once; bounds client memory while keeping the pipe full.
constexpr size_t kWindow = 8192;
constexpr size_t kDefaultGeneratedSize = 100;
// One routed publish request carries at most this many messages and payload bytes (a larger
// message still goes alone): the library's batch limits for direct asynchronous publishes.
const size_t kRoutedBatchMessages = ProducerOptions{}.maxBatchMessages;
const size_t kRoutedBatchBytes = ProducerOptions{}.maxBatchBytes;

struct PublishArgs {
  std::string topic;
  CLI::Option* topicOption = nullptr;
  std::string subject;  // Non-empty: publish to this subject; `topic` is then empty.
  CLI::Option* subjectOption = nullptr;
  std::string message;
  CLI::Option* messageOption = nullptr;
  bool hasMessage = false;  // MESSAGE was given (set by resolveArguments).
  CLI::Option* fileOption = nullptr;
  CLI::Option* linesOption = nullptr;
  CLI::Option* sizeOption = nullptr;
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

// CLI11 fills positionals in order, so with --subject (and no TOPIC) a lone MESSAGE lands in
// `topic`; moves it to `message`, and rejects a missing or doubled destination and the conflicts
// CLI11 could therefore not see. Runs at parse time; throws CLI::ValidationError (exit 2).
void resolveArguments(PublishArgs& args) {
  args.hasMessage = args.messageOption->count() > 0;
  const bool hasTopic = args.topicOption->count() > 0;
  if (args.subjectOption->count() == 0) {
    if (!hasTopic) {
      throw CLI::ValidationError("publish needs a TOPIC or --subject SUBJECT; got neither");
    }
    return;
  }
  if (args.subject.empty()) throw CLI::ValidationError("--subject: the subject is empty");
  if (args.hasMessage) {
    throw CLI::ValidationError("give a TOPIC or --subject, not both; got TOPIC \"" + args.topic +
                               "\" and --subject \"" + args.subject + "\"");
  }
  if (!hasTopic) return;
  args.message = std::move(args.topic);
  args.topic.clear();
  args.hasMessage = true;
  for (CLI::Option* other : {args.fileOption, args.linesOption, args.sizeOption}) {
    if (other->count() > 0) {
      throw CLI::ValidationError("with --subject there is no TOPIC, so \"" + args.message +
                                 "\" is the MESSAGE, which excludes " + other->get_name());
    }
  }
}

bool routed(const PublishArgs& args) {
  return !args.subject.empty();
}

// Bytes a message adds to a request, roughly: payload, key and headers.
size_t messageBytes(const OutgoingMessage& message) {
  size_t bytes = message.payload.size() + (message.key ? message.key->size() : 0);
  for (const auto& [name, value] : message.headers)
    bytes += name.size() + value.size();
  return bytes;
}

// Moves queued messages into one routed publish request, within the request limits.
std::vector<OutgoingMessage> takeBatch(std::deque<OutgoingMessage>& queued) {
  std::vector<OutgoingMessage> batch;
  size_t bytes = 0;
  while (!queued.empty() && batch.size() < kRoutedBatchMessages) {
    size_t size = messageBytes(queued.front());
    if (!batch.empty() && bytes + size > kRoutedBatchBytes) break;
    bytes += size;
    batch.push_back(std::move(queued.front()));
    queued.pop_front();
  }
  return batch;
}

void printRoutedAck(Context& context, const std::string& subject, const RoutedAcks& acks,
                    size_t index) {
  if (context.options.json) {
    std::cout << dumpLine(routedAckToJson(subject, acks, index)) << '\n';
  } else {
    std::cout << formatRoutedAck(acks, index) << '\n';
  }
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
  if (routed(args)) {
    std::vector<OutgoingMessage> messages;
    messages.push_back(std::move(message));
    RoutedAcks acks = context.take(producer.publishSubject(args.subject, std::move(messages)));
    printRoutedAck(context, args.subject, acks, 0);
    return kExitOk;
  }
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

// --lines to a subject. There is no asynchronous routed publish, so a sender thread takes all
// lines queued so far (within a request's limits) once the previous request is answered: a
// slow stream goes out line by line, a fast one in large requests, as the library batches
// direct publishes. A request fails as a whole, and nothing is sent after a failure.
int runLinesRouted(Context& context, const PublishArgs& args, std::istream& in) {
  Producer producer = context.client().producer();
  std::mutex mu;
  std::condition_variable changed;
  std::deque<OutgoingMessage> queued;  // Guarded by mu.
  bool ended = false;                  // Guarded by mu: the input is over.
  std::optional<Error> failure;        // Guarded by mu.
  uint64_t stored = 0;                 // The sender's until it is joined.

  std::thread sender([&] {
    for (;;) {
      std::vector<OutgoingMessage> batch;
      {
        std::unique_lock<std::mutex> lock(mu);
        changed.wait(lock, [&] { return !queued.empty() || ended; });
        if (queued.empty()) return;
        batch = takeBatch(queued);
      }
      changed.notify_all();  // The reader may have waited for room.
      size_t count = batch.size();
      Result<RoutedAcks> result = producer.publishSubject(args.subject, std::move(batch));
      if (!result.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        failure = result.error();
        changed.notify_all();
        return;
      }
      context.noteAnswered();
      for (size_t i = 0; i < count; ++i)
        printRoutedAck(context, args.subject, result.value(), i);
      std::cout.flush();
      stored += count;
    }
  });

  std::string line;
  uint64_t number = 0;
  while (std::getline(in, line)) {
    OutgoingMessage message = baseMessage(args);
    message.payload = std::move(line);
    message.id = idFor(args, ++number);
    std::unique_lock<std::mutex> lock(mu);
    changed.wait(lock, [&] { return queued.size() < kWindow || failure; });
    if (failure) break;
    queued.push_back(std::move(message));
    lock.unlock();
    changed.notify_all();
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    ended = true;
  }
  changed.notify_all();
  sender.join();
  std::cout.flush();
  if (failure) {
    throw CliExit(context.exitCodeFor(*failure),
                  "error: " + failure->toString() + " (input line " + std::to_string(stored + 1) +
                      " was not stored, nor any after it; the " + std::to_string(stored) +
                      " lines before it were)");
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
  bool fixed = args.hasMessage;
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

// Per capturing topic, what --count to a subject stored there.
struct TopicTally {
  std::string topic;
  uint64_t firstOffset = 0;
  uint64_t lastOffset = 0;
  uint64_t duplicates = 0;
};

// --count to a subject: requests of up to the routed batch limits, one at a time.
int runGeneratedRouted(Context& context, const PublishArgs& args) {
  size_t size = kDefaultGeneratedSize;
  if (!args.size.empty()) size = static_cast<size_t>(*parseSize(args.size).value);
  Producer producer = context.client().producer();
  ProgressBar progress(args.count);
  std::vector<TopicTally> tallies;  // In the broker's order.
  uint64_t acked = 0, bytes = 0;
  auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  std::deque<OutgoingMessage> queued;
  uint64_t number = 0;
  while (acked < args.count) {
    // Enough for one full request (fewer when large); what it leaves goes in the next.
    while (number < args.count && queued.size() < kRoutedBatchMessages) {
      OutgoingMessage message = baseMessage(args);
      message.payload = args.hasMessage ? args.message : generatedPayload(number + 1, size);
      message.id = idFor(args, ++number);
      queued.push_back(std::move(message));
    }
    std::vector<OutgoingMessage> batch = takeBatch(queued);
    size_t count = batch.size();
    uint64_t batchBytes = 0;
    for (const auto& message : batch)
      batchBytes += message.payload.size();
    Result<RoutedAcks> result = producer.publishSubject(args.subject, std::move(batch));
    if (!result.ok()) {
      progress.finish();
      context.note("published " + std::to_string(acked) + " of " + std::to_string(args.count) +
                   " messages before the error");
      context.fail(result.error());
    }
    context.noteAnswered();
    for (const auto& [topic, acks] : result.value()) {
      auto tally = std::find_if(tallies.begin(), tallies.end(),
                                [&](const TopicTally& t) { return t.topic == topic; });
      if (tally == tallies.end()) tally = tallies.insert(tallies.end(), TopicTally{topic});
      for (const PublishAck& ack : acks) {
        if (tally->firstOffset == 0) tally->firstOffset = ack.offset;
        tally->lastOffset = ack.offset;
        tally->duplicates += ack.duplicate ? 1 : 0;
      }
    }
    acked += count;
    bytes += batchBytes;
    progress.update(acked, elapsed());
  }
  double seconds = elapsed();
  progress.finish();
  double rate = seconds > 0 ? static_cast<double>(acked) / seconds : 0;
  double byteRate = seconds > 0 ? static_cast<double>(bytes) / seconds : 0;
  if (context.options.json) {
    Json topics = Json::object();
    for (const auto& tally : tallies) {
      topics[tally.topic] = Json{{"first_offset", tally.firstOffset},
                                 {"last_offset", tally.lastOffset},
                                 {"duplicates", tally.duplicates}};
    }
    context.print(dumpLine(Json{{"subject", args.subject},
                                {"messages", acked},
                                {"bytes", bytes},
                                {"seconds", seconds},
                                {"messages_per_second", rate},
                                {"bytes_per_second", byteRate},
                                {"topics", topics}}));
  } else {
    char secondsText[32];
    std::snprintf(secondsText, sizeof secondsText, "%.2fs", seconds);
    std::string line = "published " + std::to_string(acked) + " messages (" + formatBytes(bytes) +
                       ") to subject \"" + args.subject + "\" in " + secondsText + ": " +
                       formatRate(rate) + ", " + formatBytes(static_cast<uint64_t>(byteRate)) +
                       "/s";
    for (const auto& tally : tallies) {
      line += "; " + tally.topic + " offsets " + std::to_string(tally.firstOffset) + ".." +
              std::to_string(tally.lastOffset);
      if (tally.duplicates > 0) line += " (" + std::to_string(tally.duplicates) + " duplicates)";
    }
    context.print(line);
  }
  return kExitOk;
}

int runPublish(Context& context, const PublishArgs& args) {
  if (args.countOption->count() > 0) {
    return routed(args) ? runGeneratedRouted(context, args) : runGenerated(context, args);
  }
  if (args.hasMessage) return runSingle(context, args, args.message);
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
  if (args.lines) {
    return routed(args) ? runLinesRouted(context, args, *in) : runLines(context, args, *in);
  }
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
      "Give a TOPIC, or --subject and no TOPIC: each message is stored in every topic capturing\n"
      "the subject, in one commit, and its line lists TOPIC=OFFSET for each (noRoute: none).\n"
      "Examples:\n"
      "  sluice publish orders '{\"id\":1}' --key customer-7 --header source=web\n"
      "  sluice publish orders --lines --id import-2024-05 < orders.jsonl\n"
      "  sluice publish orders --count 100000 --size 1KiB\n"
      "  sluice publish reminders '{\"user\":7}' --delay 1h\n"
      "  sluice publish --subject orders.eu.created '{\"id\":7}'     # prints audit=1 orders=1");
  args->topicOption =
      cmd->add_option("TOPIC", args->topic, "Topic to publish to (or --subject instead)");
  args->messageOption = cmd->add_option("MESSAGE", args->message, "Payload (else stdin)");
  args->subjectOption =
      cmd->add_option("--subject", args->subject,
                      "Publish to this subject instead of a TOPIC: stored in every topic whose "
                      "subject patterns match it")
          ->type_name("SUBJECT");
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
  args->fileOption = file;
  args->linesOption = lines;
  args->countOption =
      cmd->add_option("--count", args->count,
                      "Publish N generated messages (or MESSAGE N times); prints a summary")
          ->check(CLI::PositiveNumber)
          ->type_name("N");
  CLI::Option* size =
      cmd->add_option("--size", args->size, "Payload size of generated messages (default 100)")
          ->check(sizeValidator())
          ->type_name("BYTES");
  args->sizeOption = size;
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
    resolveArguments(*args);
    context.action = [&context, args] { return runPublish(context, *args); };
  });
}

}  // namespace sluice::cli
