// `sluice cluster status`: the cluster as its leader sees it.

#include <iostream>

#include "commands.h"
#include "json.h"
#include "views.h"

namespace sluice::cli {

void addClusterCommands(CLI::App& app, Context& context) {
  CLI::App* cluster = app.add_subcommand("cluster", "Inspect a replicated cluster");
  cluster->require_subcommand(1);
  CLI::App* cmd = cluster->add_subcommand(
      "status", "Show the leader, its epoch, the in-sync set and each broker's replication lag");
  cmd->footer(
      "Only the leader serves clients, so give every broker of the cluster:\n"
      "  sluice cluster status --broker 10.0.0.1:7400,10.0.0.2:7400,10.0.0.3:7400\n"
      "LAG is in write-log batches behind the leader's last commit.");
  cmd->callback([&context] {
    context.action = [&context] {
      ClusterStatus status = context.take(context.admin().clusterStatus());
      if (context.options.json) {
        context.print(dumpDocument(clusterToJson(status)));
      } else {
        std::cout << clusterView(status);
      }
      return kExitOk;
    };
  });
}

}  // namespace sluice::cli
