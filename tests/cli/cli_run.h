#pragma once

// Running the `sluice` binary built with the tests, shared by the CLI test files.

#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "support/run_process.h"

namespace sluice::test {

// Runs `sluice ARGS` with `env` added to the environment; REQUIREs that it finished. A token in
// the environment of the test run never leaks in: SLUICE_TOKEN is empty unless `env` sets it.
inline RunResult runCli(std::vector<std::string> args,
                        std::map<std::string, std::string> env = {}) {
  args.insert(args.begin(), SLUICE_CLI_BIN);
  env.emplace("SLUICE_TOKEN", "");
  RunResult result = runProcess(args, "", env);
  REQUIRE_FALSE(result.timedOut);
  return result;
}

inline std::vector<std::string> splitLines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    lines.push_back(line);
  return lines;
}

}  // namespace sluice::test
