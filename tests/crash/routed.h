#pragma once

// The routed producer and its checker: one producer publishes numbered messages to subjects,
// with ids, and the broker stores each in every topic that captures its subject in one commit.
// `crash.routed.all` captures `route.>`, `crash.routed.eu` captures `route.eu.*`; subjects
// alternate between `route.eu.<n>` (both topics) and `route.us.<n>` (the first only). A publish
// whose answer was lost to a kill is retried with the same id after the restart: its copies
// must come back both duplicates (it was stored) or both new (it was not). The check proves
// that no message was ever stored in one of its topics without the other.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "crash/violations.h"
#include "crash/workload.h"

namespace sluice::crash {

inline constexpr const char* kRoutedAll = "crash.routed.all";
inline constexpr const char* kRoutedEu = "crash.routed.eu";

enum class RoutedState : uint8_t { kInDoubt, kAcked };

struct RoutedRecord {
  std::string subject;
  RoutedState state = RoutedState::kInDoubt;
  uint32_t attempts = 0;
  std::map<std::string, uint64_t> offsets;  // Per topic, once answered.
};

struct RoutedLog {
  std::vector<RoutedRecord> records;  // Indexed by sequence number.
  std::vector<std::string> anomalies;
  uint64_t retried = 0;        // Publishes retried after a kill lost their answer.
  uint64_t retriedStored = 0;  // Of those, answered duplicate in every topic: had been stored.
};

// Creates both topics with their patterns.
void setUpRouted(Admin& admin);
// Retries what is in doubt, then (unless control.resolveOnly) publishes until the broker dies
// or control.stop is set. Adds one to control.producersDone when it ends.
void runRoutedProducer(RoutedLog& log, CycleControl& control, uint64_t seed);

// A stored copy, as read back at the end.
struct RoutedCopy {
  std::string topic;
  uint64_t offset = 0;
  std::string subject;
  std::string payload;
};

// Checks the log against both topics as stored at the end; prints the figures.
void verifyRouted(Violations& violations, const RoutedLog& log,
                  const std::vector<RoutedCopy>& copies);

}  // namespace sluice::crash
