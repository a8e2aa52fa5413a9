#include "admin/metrics_page.h"

#include <cstdint>
#include <cstdio>

namespace sluice::admin {
namespace {

std::string number(double value) {
  char buf[64];
  // Whole numbers (counters, bytes) print exactly; others with enough digits.
  if (value == static_cast<double>(static_cast<int64_t>(value)) && value < 9.0e15 &&
      value > -9.0e15) {
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(value));
  } else {
    std::snprintf(buf, sizeof buf, "%.9g", value);
  }
  return buf;
}

class Page {
 public:
  // Starts a metric family with its HELP and TYPE lines.
  Page& family(const char* name, const char* type, const char* help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
    return *this;
  }
  Page& sample(const std::string& name, const std::string& labels, double value) {
    out_ += name;
    if (!labels.empty()) out_ += "{" + labels + "}";
    out_ += ' ';
    out_ += number(value);
    out_ += '\n';
    return *this;
  }
  Page& histogram(const char* name, const char* help, const HistogramSnapshot& h) {
    family(name, "histogram", help);
    for (size_t i = 0; i < h.bounds.size(); ++i) {
      sample(std::string(name) + "_bucket", "le=\"" + number(h.bounds[i]) + "\"",
             static_cast<double>(h.buckets[i]));
    }
    sample(std::string(name) + "_bucket", "le=\"+Inf\"", static_cast<double>(h.count));
    sample(std::string(name) + "_sum", "", h.sum);
    sample(std::string(name) + "_count", "", static_cast<double>(h.count));
    return *this;
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

std::string topicLabel(const std::string& topic) {
  return "topic=\"" + escapeLabel(topic) + "\"";
}
std::string groupLabels(const core::GroupView& g) {
  return topicLabel(g.topic) + ",group=\"" + escapeLabel(g.name) + "\"";
}

}  // namespace

std::string escapeLabel(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string renderMetrics(const MetricsSnapshot& s) {
  Page page;
  page.family("sluice_build_info", "gauge", "Build information; the value is always 1.")
      .sample("sluice_build_info", "version=\"" + escapeLabel(s.version) + "\"", 1);
  page.family("sluice_uptime_seconds", "gauge", "Seconds since the broker started.")
      .sample("sluice_uptime_seconds", "", static_cast<double>(s.stats.uptimeMs) / 1000.0);
  page.family("sluice_storage_used_bytes", "gauge", "Live data in the store (all databases).")
      .sample("sluice_storage_used_bytes", "", static_cast<double>(s.stats.storageUsed));
  page.family("sluice_storage_limit_bytes", "gauge", "Configured storage limit (--max-storage).")
      .sample("sluice_storage_limit_bytes", "", static_cast<double>(s.stats.storageLimit));
  page.family("sluice_storage_failed", "gauge", "1 after a failed commit (writes refused).")
      .sample("sluice_storage_failed", "", s.storageFailed ? 1 : 0);
  page.family("sluice_connections", "gauge", "Open client connections.")
      .sample("sluice_connections", "", static_cast<double>(s.stats.connections));
  if (s.tlsCertificateExpiry != 0) {
    page.family("sluice_tls_certificate_expiry_seconds", "gauge",
                "When the TLS listener's certificate expires (Unix time, seconds).")
        .sample("sluice_tls_certificate_expiry_seconds", "",
                static_cast<double>(s.tlsCertificateExpiry));
    page.family("sluice_tls_handshake_failures_total", "counter",
                "TLS handshakes that failed, timed out, or were refused over the limit.")
        .sample("sluice_tls_handshake_failures_total", "",
                static_cast<double>(s.tlsHandshakeFailures));
  }
  page.family("sluice_auth_failures_total", "counter",
              "Failed authentications (unknown, expired or revoked tokens and grants); a peer "
              "that keeps failing has its answers slowed down.")
      .sample("sluice_auth_failures_total", "", static_cast<double>(s.authFailures));
  page.family("sluice_consumers", "gauge", "Connected consumers (subscriptions).")
      .sample("sluice_consumers", "", static_cast<double>(s.stats.consumers));
  page.family("sluice_topics", "gauge", "Topics.")
      .sample("sluice_topics", "", static_cast<double>(s.stats.topics));
  page.family("sluice_commits_total", "counter", "Write transactions committed.")
      .sample("sluice_commits_total", "", static_cast<double>(s.stats.commits));
  page.histogram("sluice_commit_duration_seconds",
                 "Duration of a group commit including its fsyncs.", s.commitSeconds);
  page.histogram("sluice_fsync_duration_seconds",
                 "Duration of each fdatasync/fsync call (LMDB's data flush at every commit; the "
                 "meta page's O_DSYNC write counts in the commit duration only).",
                 s.fsyncSeconds);
  page.histogram("sluice_commit_batch_jobs", "Jobs (publishes, acks, ...) per group commit.",
                 s.batchJobs);

  page.family("sluice_topic_messages", "gauge", "Retained messages per topic.");
  for (const auto& t : s.topics) {
    page.sample("sluice_topic_messages", topicLabel(t.name), static_cast<double>(t.messages));
  }
  page.family("sluice_topic_bytes", "gauge", "Retained payload, key and header bytes per topic.");
  for (const auto& t : s.topics) {
    page.sample("sluice_topic_bytes", topicLabel(t.name), static_cast<double>(t.bytes));
  }
  page.family("sluice_topic_published_messages_total", "counter",
              "Messages appended per topic since the broker started.");
  for (const auto& t : s.topics) {
    page.sample("sluice_topic_published_messages_total", topicLabel(t.name),
                static_cast<double>(t.publishedTotal));
  }
  page.family("sluice_topic_published_bytes_total", "counter",
              "Payload, key and header bytes appended per topic since the broker started.");
  for (const auto& t : s.topics) {
    page.sample("sluice_topic_published_bytes_total", topicLabel(t.name),
                static_cast<double>(t.publishedBytes));
  }
  page.family("sluice_topic_expired_messages_total", "counter",
              "Messages removed per topic for their time to live since the broker started.");
  for (const auto& t : s.topics) {
    page.sample("sluice_topic_expired_messages_total", topicLabel(t.name),
                static_cast<double>(t.expired));
  }

  struct GroupCounter {
    const char* name;
    const char* type;
    const char* help;
    double (*value)(const core::GroupView&);
  };
  static const GroupCounter kGroupMetrics[] = {
      {"sluice_group_delivered_messages_total", "counter",
       "Deliveries (including redeliveries) per group since the broker started.",
       [](const core::GroupView& g) { return static_cast<double>(g.delivered); }},
      {"sluice_group_acked_messages_total", "counter",
       "Acknowledged messages per group since the broker started.",
       [](const core::GroupView& g) { return static_cast<double>(g.acked); }},
      {"sluice_group_nacked_messages_total", "counter",
       "Negative acknowledgements per group since the broker started.",
       [](const core::GroupView& g) { return static_cast<double>(g.nacked); }},
      {"sluice_group_redelivered_messages_total", "counter", "Redeliveries per group.",
       [](const core::GroupView& g) { return static_cast<double>(g.redelivered); }},
      {"sluice_group_dead_lettered_messages_total", "counter",
       "Messages moved to the dead-letter topic (or dropped) per group.",
       [](const core::GroupView& g) { return static_cast<double>(g.deadLettered); }},
      {"sluice_group_scheduled_messages", "gauge",
       "Delayed messages a group holds for their time, not yet delivered.",
       [](const core::GroupView& g) { return static_cast<double>(g.scheduled); }},
      {"sluice_group_key_blocked_messages", "gauge",
       "Key-ordered groups: messages held back behind an earlier one of their key.",
       [](const core::GroupView& g) { return static_cast<double>(g.keyBlocked); }},
      {"sluice_group_expired_messages_total", "counter",
       "Messages passed over (dropped or dead-lettered) for their time to live per group.",
       [](const core::GroupView& g) { return static_cast<double>(g.expired); }},
      {"sluice_group_pending_messages", "gauge", "Delivered or due, not yet acknowledged.",
       [](const core::GroupView& g) { return static_cast<double>(g.pending); }},
      {"sluice_group_lag_messages", "gauge", "Retained messages not yet delivered to the group.",
       [](const core::GroupView& g) { return static_cast<double>(g.lagMessages); }},
      {"sluice_group_lag_seconds", "gauge", "Age of the oldest message not yet delivered.",
       [](const core::GroupView& g) { return static_cast<double>(g.lagMs) / 1000.0; }},
      {"sluice_group_consumers", "gauge", "Connected consumers per group.",
       [](const core::GroupView& g) { return static_cast<double>(g.consumers.size()); }},
  };
  for (const GroupCounter& metric : kGroupMetrics) {
    page.family(metric.name, metric.type, metric.help);
    for (const auto& t : s.topics) {
      for (const auto& g : t.groups)
        page.sample(metric.name, groupLabels(g), metric.value(g));
    }
  }
  page.family("sluice_published_messages_total", "counter", "Messages appended since start.")
      .sample("sluice_published_messages_total", "", static_cast<double>(s.stats.publishedTotal));
  page.family("sluice_delivered_messages_total", "counter", "Deliveries since start.")
      .sample("sluice_delivered_messages_total", "", static_cast<double>(s.stats.deliveredTotal));
  page.family("sluice_acked_messages_total", "counter", "Acknowledgements since start.")
      .sample("sluice_acked_messages_total", "", static_cast<double>(s.ackedTotal));
  page.family("sluice_nacked_messages_total", "counter", "Negative acknowledgements since start.")
      .sample("sluice_nacked_messages_total", "", static_cast<double>(s.nackedTotal));
  page.family("sluice_redelivered_messages_total", "counter", "Redeliveries since start.")
      .sample("sluice_redelivered_messages_total", "", static_cast<double>(s.redeliveredTotal));
  page.family("sluice_dead_lettered_messages_total", "counter", "Dead-lettered since start.")
      .sample("sluice_dead_lettered_messages_total", "", static_cast<double>(s.deadLetteredTotal));
  page.family("sluice_expired_messages_total", "counter",
              "Messages groups passed over for their time to live since start.")
      .sample("sluice_expired_messages_total", "", static_cast<double>(s.expiredTotal));
  return page.take();
}

}  // namespace sluice::admin
