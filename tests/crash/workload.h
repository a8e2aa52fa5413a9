#pragma once

// The crash driver's workers: producers that number their messages, consumers that record
// every delivery before acknowledging it, and a transformer that acknowledges its deliveries
// and publishes their outputs in transactions. Each worker runs on its own thread for one
// broker run (a "cycle") and stops when the broker dies or the driver asks it to.

#include <atomic>
#include <cstdint>
#include <random>
#include <string>

#include <sluice/sluice.h>

#include "crash/ledger.h"

namespace sluice::crash {

inline constexpr const char* kTopic = "crash.events";
// The transformer's group on kTopic, and the topic its transactions publish to.
inline constexpr const char* kTxGroup = "tx";
inline constexpr const char* kOutTopic = "crash.out";

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

// The workers' client options: 5 s connect timeout, 30 s call timeout.
Options clientOptions();
// Errors after which a request may or may not have been applied: the broker died or was
// stopping.
bool inDoubt(ErrorCode code);

// Publishes until the connection is lost or control.stop is set; first retries the ledger's
// in-doubt id messages and re-publishes its last acknowledged id message (dedup check).
void runProducer(ProducerLedger& ledger, CycleControl& control, uint64_t seed);

// Subscribes to `log.group` and records every delivery, then acknowledges it (sync or async),
// until the connection is lost or control.stop is set.
void runConsumer(ConsumerLog& log, CycleControl& control, uint64_t seed);

// Subscribes to kTxGroup and, for each batch of deliveries, acknowledges it and publishes its
// outputs to kOutTopic in one transaction; first probes an id applied in an earlier run, and
// retries a transaction left in doubt once its messages are delivered again. The group's only
// consumer, so that a batch's messages come back to it together.
void runTransformer(TransformerLog& log, CycleControl& control, uint64_t seed);

}  // namespace sluice::crash
