#pragma once

// Each command group registers its subcommands on the root app. A subcommand's callback
// stores the work in Context::action; main runs it after the whole command line parsed.

#include <CLI/CLI.hpp>

#include "context.h"

namespace sluice::cli {

void addTopicsCommands(CLI::App& app, Context& context);   // topics.cpp
void addRoutesCommands(CLI::App& app, Context& context);   // routes.cpp
void addPublishCommand(CLI::App& app, Context& context);   // publish.cpp
void addConsumeCommand(CLI::App& app, Context& context);   // consume.cpp
void addPeekCommand(CLI::App& app, Context& context);      // peek.cpp
void addGroupsCommands(CLI::App& app, Context& context);   // groups.cpp
void addStatsCommand(CLI::App& app, Context& context);     // stats.cpp
void addBackupCommand(CLI::App& app, Context& context);    // backup.cpp
void addAuthCommands(CLI::App& app, Context& context);     // auth.cpp
void addClusterCommands(CLI::App& app, Context& context);  // cluster.cpp

}  // namespace sluice::cli
