#pragma once

// The crash driver's workers: producers that number their messages and consumers that record
// every delivery before acknowledging it. Each worker runs on its own thread for one broker run
// (a "cycle") and stops when the broker dies or the driver asks it to.

#include <atomic>
#include <cstdint>
#include <random>
#include <string>

#include "crash/ledger.h"

namespace sluice::crash {

inline constexpr const char* kTopic = "crash.events";

// Shared between the driver and the workers of one cycle.
struct CycleControl {
  std::string address;       // The broker of this cycle.
  uint32_t epoch = 0;        // Cycle number, starting at 1.
  bool resolveOnly = false;  // Final run: producers only retry what is in doubt.
  bool soak = false;         // Larger messages and bursts.
  std::atomic<bool> stop{false};
  std::atomic<bool> burst{false};  // Publish as fast as possible (kill under load).
  std::atomic<int64_t> publishesInFlight{0};
  std::atomic<int> producersDone{0};
};

// Publishes until the connection is lost or control.stop is set; first retries the ledger's
// in-doubt id messages and re-publishes its last acknowledged id message (dedup check).
void runProducer(ProducerLedger& ledger, CycleControl& control, uint64_t seed);

// Subscribes to `log.group` and records every delivery, then acknowledges it (sync or async),
// until the connection is lost or control.stop is set.
void runConsumer(ConsumerLog& log, CycleControl& control, uint64_t seed);

}  // namespace sluice::crash
