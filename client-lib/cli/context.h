#pragma once

// What every command shares: the global options, the lazily opened connection, the mapping
// of failures to exit codes, confirmation of destructive commands, and CLI11 validators for
// the CLI's value syntaxes.

#include <chrono>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>

#include <CLI/CLI.hpp>

#include "sluice/client.h"

namespace sluice::cli {

// Exit codes, documented in README.md.
enum ExitCode : int {
  kExitOk = 0,
  kExitError = 1,    // The broker (or the library) reported an error.
  kExitUsage = 2,    // Bad command line, or a destructive command was not confirmed.
  kExitConnect = 3,  // Could not connect to the broker.
};

// Ends the command with `code` after main prints `message` (one line) to stderr.
class CliExit : public std::runtime_error {
 public:
  CliExit(int code, const std::string& message) : std::runtime_error(message), code_(code) {}
  int code() const { return code_; }

 private:
  int code_;
};

struct GlobalOptions {
  std::string broker = "127.0.0.1:7400";
  bool json = false;
  std::string timeout;  // DUR; empty: the library's defaults.
  // TLS: on with --tls or any --tls-* option.
  bool tls = false;
  std::string tlsCa, tlsCert, tlsKey, tlsServerName;
  // Authentication: --token-file (the secret is the file's text without trailing whitespace)
  // or --token (the secret itself; not both), else $SLUICE_TOKEN; none of them: no token.
  std::string tokenFile;
  std::string token;
};

class Context {
 public:
  GlobalOptions options;
  // Set by the callback of the subcommand that was parsed; main runs it after parsing.
  std::function<int()> action;

  // Connects on first use; see connect().
  Client& client();
  Admin& admin();

  // The value of `result`, or throws CliExit with `error: <code>: <message>` and the exit
  // code for that error (see exitCodeFor).
  template <typename T>
  T take(Result<T> result) {
    if (!result.ok()) fail(result.error());
    answered_ = true;
    return std::move(result).value();
  }
  void take(const Result<void>& result);
  // Records that the broker answered a call that did not go through take().
  void noteAnswered() { answered_ = true; }
  [[noreturn]] void fail(const Error& error) const;
  // kConnectFailed, or kDisconnected before the broker ever answered: 3; anything else: 1.
  int exitCodeFor(const Error& error) const;

  // Returns when `yes`, or when stdin is a terminal and the user answers y/yes to
  // `question` (asked on stderr). Otherwise throws CliExit(kExitUsage) saying nothing was
  // changed; without a terminal the message names `action` and --yes.
  void confirm(bool yes, const std::string& question, const std::string& action) const;

  // Writes a line to stdout / stderr.
  void print(const std::string& text) const;
  void note(const std::string& text) const;

  // The library's options from the global ones (timeouts, TLS, token). Throws
  // CliExit(kExitUsage) when the token file cannot be read or holds no secret.
  Options clientOptions() const;
  // A new connection with clientOptions(). Throws CliExit: kExitConnect when the broker is
  // unreachable, kExitError when it refuses the token (unauthenticated), kExitUsage for
  // unusable options (TLS or token files).
  Client connect() const;

 private:
  std::optional<Client> client_;
  std::optional<Admin> admin_;
  bool answered_ = false;  // The broker has answered at least one call.
};

// CLI11 validators that accept exactly what parse.h parses; their messages name the value.
CLI::Validator durationValidator();
CLI::Validator sizeValidator();
CLI::Validator timeValidator();  // RFC 3339
CLI::Validator startPositionValidator();
CLI::Validator headerValidator();
CLI::Validator patternListValidator();  // PATTERN[,PATTERN...]
CLI::Validator brokerAddressValidator();
CLI::Validator allowRuleValidator();  // ACTIONS:PATTERN
CLI::Validator denyRuleValidator();   // ACTIONS:PATTERN
CLI::Validator nonEmptyValidator(const std::string& typeName);

// Unix milliseconds now.
int64_t nowMs();

}  // namespace sluice::cli
