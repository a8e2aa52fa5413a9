// `sluice routes test`: which topics a publish to a subject would be stored in.

#include <memory>

#include "commands.h"
#include "json.h"

namespace sluice::cli {
namespace {

struct RouteArgs {
  std::string subject;
};

// One capturing topic per line. None is not an error: the answer is an empty list (stdout
// stays empty, so `for t in $(sluice routes test S)` sees no topic) and a note on stderr.
int runTest(Context& context, const RouteArgs& args) {
  std::vector<std::string> topics = context.take(context.admin().route(args.subject));
  if (context.options.json) {
    context.print(dumpDocument(Json{{"subject", args.subject}, {"topics", topics}}));
    return kExitOk;
  }
  for (const auto& topic : topics)
    context.print(topic);
  if (topics.empty()) {
    context.note("no topic captures subject \"" + args.subject +
                 "\"; a publish to it would fail with noRoute");
  }
  return kExitOk;
}

}  // namespace

void addRoutesCommands(CLI::App& app, Context& context) {
  CLI::App* routes = app.add_subcommand("routes", "Show how subjects route to topics");
  routes->require_subcommand(1);
  routes->footer("Example:\n  sluice routes test orders.eu.created");

  auto test = std::make_shared<RouteArgs>();
  CLI::App* testCmd = routes->add_subcommand(
      "test", "Print the topics a publish to SUBJECT would be stored in, one per line");
  testCmd->footer(
      "Stores nothing. No capturing topic: nothing on stdout, a note on stderr, exit 0.\n"
      "Examples:\n"
      "  sluice routes test orders.eu.created\n"
      "  sluice routes test orders.eu.created --json");
  testCmd->add_option("SUBJECT", test->subject, "Subject: dot-separated tokens, no wildcards")
      ->required();
  testCmd->callback(
      [&context, test] { context.action = [&context, test] { return runTest(context, *test); }; });
}

}  // namespace sluice::cli
