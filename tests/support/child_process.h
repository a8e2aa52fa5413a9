#pragma once

// Internals shared by run_process.cpp and sluiced_process.cpp: starting a child safely.

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace sluice::test::detail {

// File descriptors the child gets as 0, 1 and 2 (-1: /dev/null).
struct ChildStdio {
  int in = -1;
  int out = -1;
  int err = -1;
};

// Forks and execs argv (PATH lookup when argv[0] has no '/'), with `env` as the complete
// environment. The child dies with the calling thread (PR_SET_PDEATHSIG), has default signal
// dispositions and an empty signal mask. Throws std::runtime_error if exec fails.
pid_t spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env,
            const ChildStdio& stdio);

// This process's environment as "KEY=VALUE" strings.
std::vector<std::string> currentEnvironment();

// Waits for `pid` to exit for at most `timeout`; on timeout SIGKILLs it and waits for that.
// Returns the raw wait status.
int waitWithDeadline(pid_t pid, std::chrono::milliseconds timeout);

// WEXITSTATUS, or 128 + the signal number.
int exitCodeOf(int waitStatus);

// Opens a pipe with both ends close-on-exec. Throws std::runtime_error on failure.
void makePipe(int fds[2]);

}  // namespace sluice::test::detail
