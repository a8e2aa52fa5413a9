#pragma once

// Runs a command to completion and captures its output: for tests of CLI binaries.

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace sluice::test {

struct RunResult {
  // WEXITSTATUS, or 128 + signal number when killed by a signal, or -1 on timeout.
  int exitCode = -1;
  std::string stdoutText;
  std::string stderrText;
  bool timedOut = false;
};

// Runs argv[0] (looked up in PATH when it has no '/') with `argv`, feeding `stdinData` to its
// stdin and then closing it. `env` adds to (or overrides) this process's environment. After
// `timeout` the child is SIGKILLed and the result has timedOut = true. Throws
// std::runtime_error if the process cannot be started (e.g. the binary does not exist).
RunResult runProcess(std::vector<std::string> argv, std::string stdinData = "",
                     std::map<std::string, std::string> env = {},
                     std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace sluice::test
