#include "context.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "net/host_port.h"
#include "parse.h"

namespace sluice::cli {
namespace {

// The secret in `path`: its text without trailing whitespace (so `echo SECRET > FILE` works).
std::string readTokenFile(const std::string& path) {
  std::error_code ignored;
  if (std::filesystem::is_directory(path, ignored)) {
    throw CliExit(kExitUsage,
                  "error: --token-file \"" + path + "\": cannot read it: it is a directory");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw CliExit(kExitUsage,
                  "error: --token-file \"" + path + "\": cannot read it: " + std::strerror(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    throw CliExit(kExitUsage,
                  "error: --token-file \"" + path + "\": cannot read it: " + std::strerror(errno));
  }
  std::string secret = trimTrailingSpace(text.str());
  if (secret.empty()) {
    throw CliExit(kExitUsage, "error: --token-file \"" + path +
                                  "\" holds no secret (it is empty or only whitespace)");
  }
  return secret;
}

}  // namespace

Options Context::clientOptions() const {
  Options result;
  if (!options.timeout.empty()) {
    auto timeout = parseDuration(options.timeout);
    if (timeout.ok()) {
      result.connectTimeout = *timeout.value;
      result.callTimeout = *timeout.value;
    }
  }
  result.tls.enabled = options.tls || !options.tlsCa.empty() || !options.tlsCert.empty() ||
                       !options.tlsKey.empty() || !options.tlsServerName.empty();
  result.tls.caFile = options.tlsCa;
  result.tls.certFile = options.tlsCert;
  result.tls.keyFile = options.tlsKey;
  result.tls.serverName = options.tlsServerName;
  if (!options.tokenFile.empty()) {
    result.token = readTokenFile(options.tokenFile);
  } else if (!options.token.empty()) {
    result.token = options.token;
  } else if (const char* fromEnv = std::getenv("SLUICE_TOKEN")) {
    result.token = fromEnv;
  }
  return result;
}

Client Context::connect() const {
  auto connected = Client::connect(options.broker, clientOptions());
  if (!connected.ok()) {
    // The library's message names the address. Unusable options (TLS files) are usage errors;
    // a refused token is the broker's answer, as any other error.
    ErrorCode code = connected.error().code;
    int exitCode = code == ErrorCode::kInvalidArgument   ? kExitUsage
                   : code == ErrorCode::kUnauthenticated ? kExitError
                                                         : kExitConnect;
    throw CliExit(exitCode, "error: " + connected.error().toString());
  }
  return std::move(connected).value();
}

Client& Context::client() {
  if (!client_) client_.emplace(connect());
  return *client_;
}

Admin& Context::admin() {
  if (!admin_) admin_.emplace(client().admin());
  return *admin_;
}

void Context::take(const Result<void>& result) {
  if (!result.ok()) fail(result.error());
  answered_ = true;
}

int Context::exitCodeFor(const Error& error) const {
  if (error.code == ErrorCode::kConnectFailed) return kExitConnect;
  if (error.code == ErrorCode::kDisconnected && !answered_) return kExitConnect;
  return kExitError;
}

void Context::fail(const Error& error) const {
  throw CliExit(exitCodeFor(error), "error: " + error.toString());
}

void Context::confirm(bool yes, const std::string& question, const std::string& action) const {
  if (yes) return;
  if (!::isatty(STDIN_FILENO)) {
    throw CliExit(kExitUsage, "error: refusing to " + action +
                                  " without confirmation (stdin is not a terminal); pass --yes "
                                  "to confirm");
  }
  std::cerr << question << " [y/N] " << std::flush;
  std::string answer;
  std::getline(std::cin, answer);
  if (!isYes(answer)) throw CliExit(kExitUsage, "aborted: did not " + action);
}

void Context::print(const std::string& text) const {
  std::cout << text << '\n';
}

void Context::note(const std::string& text) const {
  std::cerr << text << '\n';
}

namespace {

template <typename ParseFn>
CLI::Validator validatorFrom(const std::string& name, ParseFn parse) {
  return CLI::Validator(
      [parse](std::string& text) -> std::string {
        auto parsed = parse(text);
        return parsed.ok() ? std::string() : parsed.error;
      },
      // No description: the option's type name (DUR, SIZE...) already says what it takes.
      std::string(), name);
}

}  // namespace

CLI::Validator durationValidator() {
  return validatorFrom("DUR", [](const std::string& t) { return parseDuration(t); });
}

CLI::Validator timeValidator() {
  return validatorFrom("TIME", [](const std::string& t) { return parseRfc3339(t); });
}

CLI::Validator sizeValidator() {
  return validatorFrom("SIZE", [](const std::string& t) { return parseSize(t); });
}

CLI::Validator startPositionValidator() {
  return validatorFrom("POSITION", [](const std::string& t) { return parseStartPosition(t, 0); });
}

CLI::Validator headerValidator() {
  return validatorFrom("K=V", [](const std::string& t) { return parseHeader(t); });
}

CLI::Validator patternListValidator() {
  return validatorFrom("PATTERN[,PATTERN...]",
                       [](const std::string& t) { return parsePatternList(t); });
}

CLI::Validator brokerAddressValidator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        // One address, or a cluster's brokers separated by commas.
        for (std::string_view piece : net::splitList(text)) {
          std::string one(piece);
          std::string problem;
          auto address = net::parseHostPort(one, &problem);
          if (!address) return "invalid broker address: " + problem;
          if (address->port == 0) return "invalid broker address \"" + one + "\": port 0";
        }
        return {};
      },
      std::string(), "HOST:PORT[,HOST:PORT...]");
}

CLI::Validator allowRuleValidator() {
  return validatorFrom("ACTIONS:PATTERN",
                       [](const std::string& t) { return parseRule(t, /*allow=*/true); });
}

CLI::Validator denyRuleValidator() {
  return validatorFrom("ACTIONS:PATTERN",
                       [](const std::string& t) { return parseRule(t, /*allow=*/false); });
}

CLI::Validator nonEmptyValidator(const std::string& typeName) {
  return CLI::Validator(
      [](std::string& text) -> std::string { return text.empty() ? "it is empty" : ""; },
      std::string(), typeName);
}

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace sluice::cli
