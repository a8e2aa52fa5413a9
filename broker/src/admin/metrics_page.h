#pragma once

// Renders the Prometheus text exposition (format 0.0.4) of a metrics snapshot. The snapshot is
// taken on the KJ thread (plain values only); rendering runs on the admin thread.

#include <string>
#include <vector>

#include "common/histogram.h"
#include "core/broker.h"

namespace sluice::admin {

struct MetricsSnapshot {
  std::string version;
  core::StatsView stats;
  std::vector<core::TopicView> topics;
  uint64_t ackedTotal = 0, nackedTotal = 0, redeliveredTotal = 0, deadLetteredTotal = 0;
  uint64_t expiredTotal = 0;
  HistogramSnapshot commitSeconds;  // Whole commit, including LMDB's two fsyncs.
  HistogramSnapshot fsyncSeconds;   // Each fdatasync()/fsync() call (store/fsync_timing.h).
  HistogramSnapshot batchJobs;      // Jobs (publishes, acks, …) per commit.
  bool storageFailed = false;
  int64_t tlsCertificateExpiry = 0;  // Unix seconds; 0: no TLS listener.
  uint64_t tlsHandshakeFailures = 0;
  uint64_t authFailures = 0;  // Failed authentications, any peer.
};

std::string renderMetrics(const MetricsSnapshot& snapshot);

// Escapes a label value per the exposition format (backslash, quote, newline).
std::string escapeLabel(const std::string& value);

}  // namespace sluice::admin
