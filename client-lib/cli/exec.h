#pragma once

// The job of `sluice consume --exec`: one message handed to a shell command, its lease renewed
// while the command runs.

#include <chrono>
#include <optional>
#include <string>

#include "sluice/client.h"

namespace sluice::cli {

struct JobOutcome {
  // Empty when the command ran; otherwise why it could not be started.
  std::string startProblem;
  // The command's exit status; a command killed by a signal counts as 128 + the signal.
  int exitCode = 0;
  // The first failed renewal, if any (the message may then have been delivered again).
  std::optional<Error> renewFailure;
};

// Runs `/bin/sh -c command` with the payload on its stdin and SLUICE_TOPIC, SLUICE_SUBJECT,
// SLUICE_OFFSET, SLUICE_DELIVERIES, SLUICE_TIMESTAMP_MS, SLUICE_KEY and SLUICE_ID (when set, and
// free of NUL bytes) in its environment; stdout and stderr are this process's. Every `renewEvery`
// until the command exits, the message's lease is renewed (Message::inProgress). Waits for the
// command even across SIGINT/SIGTERM, which the terminal delivers to it too.
JobOutcome runJob(const std::string& command, const Message& message,
                  std::chrono::milliseconds renewEvery);

}  // namespace sluice::cli
