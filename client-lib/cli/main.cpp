// `sluice`, the operator CLI. Wiring only: global options, the command groups, and the
// mapping of every way a command can end to an exit code (see context.h).

#include <functional>
#include <iostream>

#include <CLI/CLI.hpp>

#include "bench.h"
#include "commands.h"
#include "context.h"

using sluice::cli::CliExit;
using sluice::cli::Context;

int main(int argc, char** argv) {
  Context context;
  CLI::App app{"sluice: inspect and manage a Sluice message broker.", "sluice"};
  // Set before adding subcommands, which inherit it: global options may follow the command
  // (`sluice topics list --json`).
  app.fallthrough();
  app.require_subcommand(1);
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return "error: " + std::string(e.what()) + "\nRun with --help for usage.\n";
  });
  app.footer(
      "Examples:\n"
      "  sluice topics create orders --max-age 7d\n"
      "  echo '{\"id\":1}' | sluice publish orders\n"
      "  sluice publish --subject orders.eu.created '{\"id\":2}'\n"
      "  sluice consume orders --group billing --count 10 --json\n"
      "  sluice --token-file ~/.sluice-token auth whoami\n"
      "\n"
      "Exit codes: 0 ok, 1 error reported by the broker (also a refused token), 2 usage error\n"
      "or not confirmed, 3 cannot connect.");
  app.add_option("--broker", context.options.broker,
                 "Broker address, or a cluster's brokers separated by commas (the one that "
                 "leads answers); default $SLUICE_BROKER, then 127.0.0.1:7400")
      ->envname("SLUICE_BROKER")
      ->check(sluice::cli::brokerAddressValidator())
      ->type_name("HOST:PORT[,...]");
  app.add_flag("--json", context.options.json, "Print JSON (documented in the CLI README)");
  app.add_option("--timeout", context.options.timeout,
                 "Connect and per-call timeout, e.g. 10s (default: connect 5s, call 30s)")
      ->check(sluice::cli::durationValidator())
      ->type_name("DUR");
  app.add_flag("--tls", context.options.tls,
               "Connect with TLS, trusting the system's CAs (implied by every --tls-* option)")
      ->envname("SLUICE_TLS");
  app.add_option("--tls-ca", context.options.tlsCa,
                 "PEM CA bundle trusted for the broker's certificate (instead of the system's)")
      ->envname("SLUICE_TLS_CA")
      ->type_name("FILE");
  app.add_option("--tls-cert", context.options.tlsCert,
                 "PEM client certificate, for a broker that requires one (with --tls-key)")
      ->envname("SLUICE_TLS_CERT")
      ->type_name("FILE");
  app.add_option("--tls-key", context.options.tlsKey, "PEM private key of --tls-cert")
      ->envname("SLUICE_TLS_KEY")
      ->type_name("FILE");
  app.add_option("--tls-server-name", context.options.tlsServerName,
                 "Name the broker's certificate must carry (default: the host of --broker)")
      ->envname("SLUICE_TLS_SERVER_NAME")
      ->type_name("NAME");
  // $SLUICE_TOKEN is read when connecting, below both options (context.cpp).
  CLI::Option* tokenFile =
      app.add_option("--token-file", context.options.tokenFile,
                     "Authenticate with the secret in FILE (trailing whitespace ignored); "
                     "default $SLUICE_TOKEN, the secret itself")
          ->check(sluice::cli::nonEmptyValidator("FILE"))
          ->type_name("FILE");
  app.add_option("--token", context.options.token,
                 "Authenticate with SECRET; prefer --token-file or $SLUICE_TOKEN, as other users "
                 "can see a command line")
      ->check(sluice::cli::nonEmptyValidator("SECRET"))
      ->excludes(tokenFile)
      ->type_name("SECRET");

  sluice::cli::addTopicsCommands(app, context);
  sluice::cli::addRoutesCommands(app, context);
  sluice::cli::addPublishCommand(app, context);
  sluice::cli::addConsumeCommand(app, context);
  sluice::cli::addPeekCommand(app, context);
  sluice::cli::addGroupsCommands(app, context);
  sluice::cli::addStatsCommand(app, context);
  sluice::cli::addBackupCommand(app, context);
  sluice::cli::addAuthCommands(app, context);
  sluice::cli::addClusterCommands(app, context);
  sluice::cli::addBenchCommands(app, context);

  // A subcommand's help does not list its parents' options; name them in every footer.
  std::function<void(CLI::App*)> addGlobalNote = [&](CLI::App* command) {
    for (CLI::App* sub : command->get_subcommands({})) {
      sub->footer(sub->get_footer() +
                  "\n\nGlobal options (anywhere on the line): --broker HOST:PORT, --json, "
                  "--timeout DUR, --tls, --tls-ca FILE, --tls-cert FILE, --tls-key FILE, "
                  "--tls-server-name NAME, --token-file FILE, --token SECRET.");
      addGlobalNote(sub);
    }
  };
  addGlobalNote(&app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help prints usage and exits 0; every other parse failure is a usage error.
    return app.exit(e) == 0 ? sluice::cli::kExitOk : sluice::cli::kExitUsage;
  }
  try {
    return context.action ? context.action() : sluice::cli::kExitUsage;
  } catch (const CliExit& e) {
    std::cout.flush();
    std::cerr << e.what() << '\n';
    return e.code();
  } catch (const sluice::BadResultAccess& e) {
    std::cout.flush();
    std::cerr << "error: " << e.error().toString() << '\n';
    return context.exitCodeFor(e.error());
  }
}
