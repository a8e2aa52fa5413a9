#pragma once

// sluiced's offline modes, run on a stopped broker's data directory and exiting:
//   --check            verify every database's invariants
//   --dump             print a logical dump of the state databases (for comparing stores)
//   --replay-log SRC   apply SRC's write log, from sequence 1, to the (empty) --data store
// Thread: main.

#include <string>

namespace sluice::daemon {

int runCheck(const std::string& dataDir);
int runDump(const std::string& dataDir);
// `windowBytes`, `maxAgeMs`: the write-log window of the store being written (0: keep no log;
// 0: no age bound). Replayed batches keep the commit times of the source.
int runReplayLog(const std::string& sourceDir, const std::string& dataDir, uint64_t windowBytes,
                 uint64_t maxAgeMs);

}  // namespace sluice::daemon
