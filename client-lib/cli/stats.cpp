// `sluice stats`: broker-wide counters and rates.

#include <iostream>

#include "commands.h"
#include "json.h"
#include "views.h"

namespace sluice::cli {

void addStatsCommand(CLI::App& app, Context& context) {
  CLI::App* cmd = app.add_subcommand(
      "stats", "Show broker version, uptime, totals, storage, connections and rates");
  cmd->footer("Example:\n  sluice stats --json");
  cmd->callback([&context] {
    context.action = [&context] {
      BrokerStats stats = context.take(context.admin().stats());
      if (context.options.json) {
        context.print(dumpDocument(statsToJson(stats)));
      } else {
        std::cout << statsView(stats);
      }
      return kExitOk;
    };
  });
}

}  // namespace sluice::cli
