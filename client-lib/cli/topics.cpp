// `sluice topics list|create|describe|subjects|delete|purge`.

#include <iostream>
#include <limits>
#include <memory>

#include "commands.h"
#include "format.h"
#include "json.h"
#include "parse.h"
#include "views.h"

namespace sluice::cli {
namespace {

struct CreateArgs {
  std::string name;
  std::string maxAge;
  std::string maxBytes;
  uint64_t maxMessages = 0;
  std::string maxMessageSize;
  bool workQueue = false;
  uint32_t maxDeliveries = 0;
  std::string deadLetter;
  std::string dedupWindow;
  std::string defaultTtl;
  bool deadLetterExpired = false;
  std::vector<std::string> subjects;  // PATTERN[,PATTERN...] values.
  bool ifNotExists = false;
};

struct SubjectsArgs {
  std::string name;
  std::vector<std::string> add;     // PATTERN[,PATTERN...] values.
  std::vector<std::string> remove;  // PATTERN[,PATTERN...] values.
};

struct NameArgs {
  std::string name;
  bool yes = false;
};

int runList(Context& context) {
  auto topics = context.take(context.admin().listTopics());
  if (context.options.json) {
    Json list = Json::array();
    for (const auto& topic : topics)
      list.push_back(topicToJson(topic));
    context.print(dumpDocument(Json{{"topics", list}}));
  } else {
    std::cout << topicsTable(topics);
  }
  return kExitOk;
}

TopicSettings settingsFrom(const CreateArgs& args) {
  // The validators already accepted every string here, so each parse succeeds.
  TopicSettings settings;
  if (!args.maxAge.empty()) settings.maxAge = *parseDuration(args.maxAge).value;
  if (!args.maxBytes.empty()) settings.maxBytes = *parseSize(args.maxBytes).value;
  settings.maxMessages = args.maxMessages;
  if (!args.maxMessageSize.empty()) {
    uint64_t size = *parseSize(args.maxMessageSize).value;
    if (size > std::numeric_limits<uint32_t>::max()) {
      throw CliExit(kExitUsage, "error: --max-message-size: " + args.maxMessageSize +
                                    " is too large; the limit is 4GiB - 1 byte");
    }
    settings.maxMessageSize = static_cast<uint32_t>(size);
  }
  settings.workQueue = args.workQueue;
  settings.maxDeliveries = args.maxDeliveries;
  settings.deadLetterTopic = args.deadLetter;
  if (!args.dedupWindow.empty()) settings.dedupWindow = *parseDuration(args.dedupWindow).value;
  if (!args.defaultTtl.empty()) settings.defaultTtl = *parseDuration(args.defaultTtl).value;
  settings.deadLetterExpired = args.deadLetterExpired;
  settings.subjects = patternsOf(args.subjects);
  return settings;
}

int runCreate(Context& context, const CreateArgs& args) {
  TopicSettings settings = settingsFrom(args);
  auto created = context.admin().createTopic(args.name, settings);
  bool existed = false;
  if (!created.ok() && created.error().code == ErrorCode::kTopicExists && args.ifNotExists) {
    created = context.admin().describeTopic(args.name);
    existed = true;
  }
  TopicInfo topic = context.take(std::move(created));
  if (context.options.json) {
    context.print(dumpDocument(topicToJson(topic)));
  } else {
    std::string line = std::string(existed ? "topic \"" : "created topic \"") + topic.name +
                       (existed ? "\" already exists" : "\"");
    if (!topic.settings.subjects.empty()) {
      line += (existed ? ", capturing " : " capturing ") + joinPatterns(topic.settings.subjects);
    }
    context.print(line);
  }
  return kExitOk;
}

// Changes the topic's patterns (or, with neither --add nor --remove, only shows them) and
// prints the resulting set, one pattern per line.
int runSubjects(Context& context, const SubjectsArgs& args) {
  std::vector<std::string> add = patternsOf(args.add);
  std::vector<std::string> remove = patternsOf(args.remove);
  TopicInfo topic = add.empty() && remove.empty()
                        ? context.take(context.admin().describeTopic(args.name))
                        : context.take(context.admin().changeSubjects(args.name, add, remove));
  const std::vector<std::string>& subjects = topic.settings.subjects;
  if (context.options.json) {
    context.print(dumpDocument(Json{{"topic", topic.name}, {"subjects", subjects}}));
  } else if (subjects.empty()) {
    context.print("No subject patterns: topic \"" + topic.name + "\" captures only its own name.");
  } else {
    for (const auto& pattern : subjects)
      context.print(pattern);
  }
  return kExitOk;
}

int runDescribe(Context& context, const NameArgs& args) {
  TopicInfo topic = context.take(context.admin().describeTopic(args.name));
  if (context.options.json) {
    context.print(dumpDocument(topicToJson(topic)));
  } else {
    std::cout << topicView(topic);
  }
  return kExitOk;
}

// Asks before a destructive change; the description also proves the topic exists, so an
// unknown topic fails with topicNotFound before anyone is asked anything.
void confirmTopicChange(Context& context, const NameArgs& args, const std::string& verb) {
  if (args.yes) return;
  TopicInfo topic = context.take(context.admin().describeTopic(args.name));
  std::string question = verb == "delete" ? "Delete topic \"" + topic.name + "\" and its " +
                                                std::to_string(topic.messages) + " messages?"
                                          : "Purge all " + std::to_string(topic.messages) +
                                                " messages of topic \"" + topic.name + "\"?";
  context.confirm(false, question, verb + " topic \"" + topic.name + "\"");
}

int runDelete(Context& context, const NameArgs& args) {
  confirmTopicChange(context, args, "delete");
  uint64_t removed = context.take(context.admin().deleteTopic(args.name));
  if (context.options.json) {
    context.print(
        dumpDocument(Json{{"topic", args.name}, {"deleted", true}, {"messages_removed", removed}}));
  } else {
    context.print("deleted topic \"" + args.name + "\" (" + std::to_string(removed) + " messages)");
  }
  return kExitOk;
}

int runPurge(Context& context, const NameArgs& args) {
  confirmTopicChange(context, args, "purge");
  uint64_t removed = context.take(context.admin().purgeTopic(args.name));
  if (context.options.json) {
    context.print(
        dumpDocument(Json{{"topic", args.name}, {"purged", true}, {"messages_removed", removed}}));
  } else {
    context.print("purged topic \"" + args.name + "\" (" + std::to_string(removed) +
                  " messages removed)");
  }
  return kExitOk;
}

}  // namespace

void addTopicsCommands(CLI::App& app, Context& context) {
  CLI::App* topics = app.add_subcommand(
      "topics", "List, create, describe, delete and purge topics, and route subjects to them");
  topics->require_subcommand(1);
  topics->footer("Example:\n  sluice topics list --json");

  CLI::App* list = topics->add_subcommand("list", "List topics with counts, bytes and rates");
  list->footer("Example:\n  sluice topics list");
  list->callback([&context] { context.action = [&context] { return runList(context); }; });

  auto create = std::make_shared<CreateArgs>();
  CLI::App* createCmd = topics->add_subcommand("create", "Create a topic");
  createCmd->footer(
      "PATTERN: dot-separated tokens; `*` matches one token, `>` one or more trailing ones.\n"
      "Examples:\n  sluice topics create orders.eu.created --max-age 7d --max-bytes 10GiB "
      "--dead-letter orders.dead --max-deliveries 5\n"
      "  sluice topics create orders --subjects 'orders.>'\n"
      "  sluice topics create audit --subjects '>'");
  createCmd->add_option("NAME", create->name, "Topic name: 1-200 of [A-Za-z0-9._-]")->required();
  createCmd->add_option("--max-age", create->maxAge, "Drop messages older than this")
      ->check(durationValidator())
      ->type_name("DUR");
  createCmd->add_option("--max-bytes", create->maxBytes, "Keep at most this many bytes")
      ->check(sizeValidator())
      ->type_name("SIZE");
  createCmd->add_option("--max-messages", create->maxMessages, "Keep at most N messages")
      ->check(CLI::NonNegativeNumber)
      ->type_name("N");
  createCmd
      ->add_option("--max-message-size", create->maxMessageSize,
                   "Largest accepted payload (default 1MiB)")
      ->check(sizeValidator())
      ->type_name("SIZE");
  createCmd->add_flag("--work-queue", create->workQueue,
                      "Also drop messages once every group acknowledged them");
  createCmd
      ->add_option("--max-deliveries", create->maxDeliveries,
                   "Dead-letter a message after N deliveries (default unlimited)")
      ->check(CLI::NonNegativeNumber)
      ->type_name("N");
  createCmd
      ->add_option("--dead-letter", create->deadLetter,
                   "Topic that receives messages past --max-deliveries (or expired ones)")
      ->type_name("TOPIC");
  createCmd
      ->add_option("--default-ttl", create->defaultTtl,
                   "Time to live of messages published without one (at most 30d; default none)")
      ->check(durationValidator())
      ->type_name("DUR");
  createCmd->add_flag("--dead-letter-expired", create->deadLetterExpired,
                      "Send expired messages to the --dead-letter topic (reason: expired)");
  createCmd
      ->add_option("--dedup-window", create->dedupWindow,
                   "How long a message id is remembered (default 2m)")
      ->check(durationValidator())
      ->type_name("DUR");
  createCmd
      ->add_option("--subjects", create->subjects,
                   "Subject patterns the topic captures (publish --subject), comma-separated or "
                   "repeated; default: only its own name")
      ->check(patternListValidator())
      ->type_name("PATTERN[,PATTERN...]")
      ->allow_extra_args(false);
  createCmd->add_flag("--if-not-exists", create->ifNotExists,
                      "Succeed without changes when the topic exists");
  createCmd->callback([&context, create] {
    context.action = [&context, create] { return runCreate(context, *create); };
  });

  auto describe = std::make_shared<NameArgs>();
  CLI::App* describeCmd = topics->add_subcommand(
      "describe", "Show a topic's settings, counts, offsets, rate and consumer groups");
  describeCmd->footer("Example:\n  sluice topics describe orders");
  describeCmd->add_option("NAME", describe->name, "Topic name")->required();
  describeCmd->callback([&context, describe] {
    context.action = [&context, describe] { return runDescribe(context, *describe); };
  });

  auto subjects = std::make_shared<SubjectsArgs>();
  CLI::App* subjectsCmd = topics->add_subcommand(
      "subjects", "Add or remove the subject patterns a topic captures; prints the result");
  subjectsCmd->footer(
      "Without --add or --remove, prints the topic's patterns. Stored messages stay where they\n"
      "are; publishes answered after the change route by the new set.\n"
      "Examples:\n"
      "  sluice topics subjects orders --add 'billing.>' --remove 'orders.>'\n"
      "  sluice topics subjects orders --json");
  subjectsCmd->add_option("NAME", subjects->name, "Topic name")->required();
  subjectsCmd
      ->add_option("--add", subjects->add,
                   "Patterns to add, comma-separated or repeated (at most 32 per topic)")
      ->check(patternListValidator())
      ->type_name("PATTERN[,PATTERN...]")
      ->allow_extra_args(false);
  subjectsCmd
      ->add_option("--remove", subjects->remove,
                   "Patterns to remove, comma-separated or repeated (removing them all leaves "
                   "the topic capturing only its own name)")
      ->check(patternListValidator())
      ->type_name("PATTERN[,PATTERN...]")
      ->allow_extra_args(false);
  subjectsCmd->callback([&context, subjects] {
    context.action = [&context, subjects] { return runSubjects(context, *subjects); };
  });

  auto remove = std::make_shared<NameArgs>();
  CLI::App* deleteCmd =
      topics->add_subcommand("delete", "Delete a topic with its messages and groups");
  deleteCmd->footer("Example:\n  sluice topics delete orders --yes");
  deleteCmd->add_option("NAME", remove->name, "Topic name")->required();
  deleteCmd->add_flag("--yes,-y", remove->yes, "Do not ask for confirmation");
  deleteCmd->callback([&context, remove] {
    context.action = [&context, remove] { return runDelete(context, *remove); };
  });

  auto purge = std::make_shared<NameArgs>();
  CLI::App* purgeCmd =
      topics->add_subcommand("purge", "Remove every message of a topic (offsets keep counting)");
  purgeCmd->footer("Example:\n  sluice topics purge orders --yes");
  purgeCmd->add_option("NAME", purge->name, "Topic name")->required();
  purgeCmd->add_flag("--yes,-y", purge->yes, "Do not ask for confirmation");
  purgeCmd->callback([&context, purge] {
    context.action = [&context, purge] { return runPurge(context, *purge); };
  });
}

}  // namespace sluice::cli
