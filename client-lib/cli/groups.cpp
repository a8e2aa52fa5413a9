// `sluice groups list|describe|create|reset|delete`.

#include <iostream>
#include <memory>

#include "commands.h"
#include "format.h"
#include "json.h"
#include "parse.h"
#include "views.h"

namespace sluice::cli {
namespace {

struct GroupArgs {
  std::string topic;
  std::string group;
  std::string to;
  bool yes = false;
  bool keyOrdered = false;
  std::vector<std::string> filter;  // PATTERN[,PATTERN...] values.
};

int runList(Context& context, const GroupArgs& args) {
  auto groups = context.take(context.admin().listGroups(args.topic));
  if (context.options.json) {
    Json list = Json::array();
    for (const auto& group : groups)
      list.push_back(groupToJson(group));
    context.print(dumpDocument(Json{{"topic", args.topic}, {"groups", list}}));
  } else if (groups.empty()) {
    context.print("No consumer groups on topic \"" + args.topic + "\".");
  } else {
    std::cout << groupsTable(groups);
  }
  return kExitOk;
}

int runDescribe(Context& context, const GroupArgs& args) {
  GroupInfo group = context.take(context.admin().describeGroup(args.topic, args.group));
  if (context.options.json) {
    context.print(dumpDocument(groupToJson(group)));
  } else {
    std::cout << groupView(group);
  }
  return kExitOk;
}

int runCreate(Context& context, const GroupArgs& args) {
  StartPosition from =
      args.to.empty() ? StartPosition::earliest() : *parseStartPosition(args.to, nowMs()).value;
  GroupInfo group = context.take(context.admin().createGroup(
      args.topic, args.group, from, args.keyOrdered, patternsOf(args.filter)));
  if (context.options.json) {
    context.print(dumpDocument(groupToJson(group)));
  } else {
    context.print("group \"" + group.name + "\" on topic \"" + group.topic + "\": position " +
                  std::to_string(group.position) +
                  (group.keyOrdered ? ", key-ordered" : ", unordered") +
                  (group.filter.empty() ? "" : ", filter " + joinPatterns(group.filter)));
  }
  return kExitOk;
}

int runReset(Context& context, const GroupArgs& args) {
  StartPosition to = *parseStartPosition(args.to, nowMs()).value;
  GroupInfo group = context.take(context.admin().resetGroup(args.topic, args.group, to));
  if (context.options.json) {
    context.print(dumpDocument(groupToJson(group)));
  } else {
    context.print("reset group \"" + group.name + "\" on topic \"" + group.topic +
                  "\": next position " + std::to_string(group.position) + ", lag " +
                  std::to_string(group.lagMessages) + " messages");
  }
  return kExitOk;
}

int runDelete(Context& context, const GroupArgs& args) {
  if (!args.yes) {
    // Describing first also makes an unknown topic or group fail before any question.
    GroupInfo group = context.take(context.admin().describeGroup(args.topic, args.group));
    context.confirm(false,
                    "Delete group \"" + group.name + "\" of topic \"" + group.topic + "\" (" +
                        std::to_string(group.pending) + " pending messages)?",
                    "delete group \"" + group.name + "\"");
  }
  uint64_t dropped = context.take(context.admin().deleteGroup(args.topic, args.group));
  if (context.options.json) {
    context.print(dumpDocument(Json{{"topic", args.topic},
                                    {"group", args.group},
                                    {"deleted", true},
                                    {"pending_dropped", dropped}}));
  } else {
    context.print("deleted group \"" + args.group + "\" on topic \"" + args.topic + "\" (" +
                  std::to_string(dropped) + " pending messages dropped)");
  }
  return kExitOk;
}

// Adds a subcommand whose callback runs `run` with its own parsed arguments.
template <typename Run>
CLI::App* addGroupCommand(CLI::App& groups, Context& context, const std::string& name,
                          const std::string& description, const std::string& example,
                          bool takesGroup, std::shared_ptr<GroupArgs> args, Run run) {
  CLI::App* cmd = groups.add_subcommand(name, description);
  cmd->footer("Example:\n  " + example);
  cmd->add_option("TOPIC", args->topic, "Topic name")->required();
  if (takesGroup) cmd->add_option("GROUP", args->group, "Consumer group name")->required();
  cmd->callback([&context, args, run] {
    context.action = [&context, args, run] { return run(context, *args); };
  });
  return cmd;
}

}  // namespace

void addGroupsCommands(CLI::App& app, Context& context) {
  CLI::App* groups =
      app.add_subcommand("groups", "List, describe, create, reset and delete consumer groups");
  groups->require_subcommand(1);
  groups->footer("Example:\n  sluice groups describe orders billing");

  addGroupCommand(*groups, context, "list", "List a topic's consumer groups with their lag",
                  "sluice groups list orders", false, std::make_shared<GroupArgs>(), runList);
  addGroupCommand(
      *groups, context, "describe", "Show a group's position, pending, lag and connected consumers",
      "sluice groups describe orders billing", true, std::make_shared<GroupArgs>(), runDescribe);

  auto create = std::make_shared<GroupArgs>();
  CLI::App* createCmd = addGroupCommand(
      *groups, context, "create", "Create a consumer group (an existing one is shown unchanged)",
      "sluice groups create orders billing --key-ordered\n"
      "  sluice groups create orders eu-billing --filter 'orders.eu.*'",
      true, create, runCreate);
  createCmd
      ->add_option("--from", create->to,
                   "Start: earliest (default), latest, OFFSET, TIME (RFC 3339) or DUR ago")
      ->check(startPositionValidator())
      ->type_name("POSITION");
  createCmd->add_flag("--key-ordered", create->keyOrdered,
                      "Never two messages of one key in flight; each key in offset order");
  createCmd
      ->add_option("--filter", create->filter,
                   "Receive (and count as lag) only messages whose subject matches a pattern; "
                   "comma-separated or repeated, at most 32")
      ->check(patternListValidator())
      ->type_name("PATTERN[,PATTERN...]")
      ->allow_extra_args(false);

  auto reset = std::make_shared<GroupArgs>();
  CLI::App* resetCmd = addGroupCommand(
      *groups, context, "reset",
      "Move a group's position and forget its pending messages (no consumers connected)",
      "sluice groups reset orders billing --to 2024-05-01T00:00:00Z", true, reset, runReset);
  resetCmd
      ->add_option("--to", reset->to,
                   "New position: earliest, latest, OFFSET, TIME (RFC 3339) or DUR ago")
      ->required()
      ->check(startPositionValidator())
      ->type_name("POSITION");

  auto remove = std::make_shared<GroupArgs>();
  CLI::App* deleteCmd = addGroupCommand(
      *groups, context, "delete", "Delete a consumer group and its pending messages",
      "sluice groups delete orders billing --yes", true, remove, runDelete);
  deleteCmd->add_flag("--yes,-y", remove->yes, "Do not ask for confirmation");
}

}  // namespace sluice::cli
