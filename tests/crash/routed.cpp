#include "crash/routed.h"

#include <cinttypes>
#include <cstdio>
#include <random>
#include <set>
#include <utility>

namespace sluice::crash {
namespace {

std::string idOf(uint64_t seq) {
  return "R" + std::to_string(seq);
}

std::string payloadOf(uint64_t seq) {
  std::string payload = "R:" + std::to_string(seq) + ";";
  payload.append(16 + (seq * 7919) % 1500, 'r');
  return payload;
}

std::string subjectOf(uint64_t seq) {
  return std::string(seq % 2 == 0 ? "route.eu." : "route.us.") + std::to_string(seq % 5);
}

bool isEu(const std::string& subject) {
  return subject.rfind("route.eu.", 0) == 0;
}

std::optional<uint64_t> seqOfPayload(const std::string& payload) {
  if (payload.size() < 4 || payload.compare(0, 2, "R:") != 0) return std::nullopt;
  uint64_t seq = 0;
  size_t i = 2;
  for (; i < payload.size() && payload[i] != ';'; ++i) {
    if (payload[i] < '0' || payload[i] > '9' || seq > (UINT64_MAX - 9) / 10) return std::nullopt;
    seq = seq * 10 + static_cast<uint64_t>(payload[i] - '0');
  }
  if (i == 2 || i == payload.size()) return std::nullopt;
  return seq;
}

OutgoingMessage messageOf(uint64_t seq) {
  OutgoingMessage message;
  message.payload = payloadOf(seq);
  message.id = idOf(seq);
  return message;
}

class RoutedRun {
 public:
  RoutedRun(RoutedLog& log, CycleControl& control, uint64_t seed)
      : log_(log), control_(control), rng_(seed) {}

  void run() {
    auto connected = Client::connect(control_.address, clientOptions());
    if (connected.ok()) {
      Client client = std::move(connected).value();
      Producer producer = client.producer();
      if (retryInDoubt(producer) && !control_.resolveOnly) publishLoop(producer);
    } else if (control_.resolveOnly) {
      log_.anomalies.push_back("routed: cannot connect for the final run: " +
                               connected.error().toString());
    }
    control_.producersDone.fetch_add(1);
  }

 private:
  // Records the answer for `seqs` (one subject); returns false when the connection is gone.
  bool settle(const std::vector<uint64_t>& seqs, const Result<RoutedAcks>& answer) {
    if (!answer.ok()) {
      if (inDoubt(answer.error().code)) return false;  // Stays in doubt; retried next run.
      log_.anomalies.push_back("routed: R" + std::to_string(seqs.front()) +
                               " refused: " + answer.error().toString());
      return true;
    }
    const std::string& subject = log_.records[seqs.front()].subject;
    std::set<std::string> expected = {kRoutedAll};
    if (isEu(subject)) expected.insert(kRoutedEu);
    std::set<std::string> got;
    for (const auto& [topic, acks] : answer.value())
      got.insert(topic);
    if (got != expected) {
      log_.anomalies.push_back("routed: R" + std::to_string(seqs.front()) + " (" + subject +
                               ") answered for " + std::to_string(got.size()) + " topics");
      return true;
    }
    for (size_t i = 0; i < seqs.size(); ++i) {
      RoutedRecord& record = log_.records[seqs[i]];
      std::set<bool> duplicates;
      for (const auto& [topic, acks] : answer.value()) {
        if (acks.size() != seqs.size()) {
          log_.anomalies.push_back("routed: an answer with " + std::to_string(acks.size()) +
                                   " acks for " + std::to_string(seqs.size()) + " messages");
          return true;
        }
        duplicates.insert(acks[i].duplicate);
        record.offsets[topic] = acks[i].offset;
      }
      if (duplicates.size() > 1) {
        log_.anomalies.push_back("routed: R" + std::to_string(seqs[i]) +
                                 " was a duplicate in one topic and new in the other: stored in "
                                 "one without the other");
      }
      if (record.attempts > 1) {
        ++log_.retried;
        if (*duplicates.begin()) ++log_.retriedStored;
      }
      if (*duplicates.begin() && record.attempts <= 1) {
        log_.anomalies.push_back("routed: R" + std::to_string(seqs[i]) +
                                 " was answered 'duplicate' on its first publish");
      }
      record.state = RoutedState::kAcked;
    }
    return true;
  }

  bool retryInDoubt(Producer& producer) {
    for (uint64_t seq = 0; seq < log_.records.size(); ++seq) {
      RoutedRecord& record = log_.records[seq];
      if (record.state != RoutedState::kInDoubt) continue;
      ++record.attempts;
      std::vector<OutgoingMessage> batch;
      batch.push_back(messageOf(seq));
      if (!settle({seq}, producer.publishSubject(record.subject, std::move(batch)))) return false;
    }
    return true;
  }

  void publishLoop(Producer& producer) {
    while (!control_.stop.load()) {
      const uint64_t first = log_.records.size();
      const std::string subject = subjectOf(first);
      size_t count = 1 + rng_() % (control_.burst.load() ? 64 : 4);
      std::vector<uint64_t> seqs;
      std::vector<OutgoingMessage> batch;
      for (size_t i = 0; i < count; ++i) {
        RoutedRecord record;
        record.subject = subject;
        record.attempts = 1;
        log_.records.push_back(std::move(record));
        seqs.push_back(first + i);
        batch.push_back(messageOf(first + i));
      }
      if (!settle(seqs, producer.publishSubject(subject, std::move(batch)))) return;
    }
  }

  RoutedLog& log_;
  CycleControl& control_;
  std::mt19937_64 rng_;
};

}  // namespace

void setUpRouted(Admin& admin) {
  TopicSettings all;
  all.dedupWindow = std::chrono::hours(24);
  all.subjects = {"route.>"};
  admin.createTopic(kRoutedAll, all).value();
  TopicSettings eu = all;
  eu.subjects = {"route.eu.*"};
  admin.createTopic(kRoutedEu, eu).value();
}

void runRoutedProducer(RoutedLog& log, CycleControl& control, uint64_t seed) {
  RoutedRun(log, control, seed).run();
}

void verifyRouted(Violations& violations, const RoutedLog& log,
                  const std::vector<RoutedCopy>& copies) {
  for (const std::string& anomaly : log.anomalies)
    violations.add("routed producer", anomaly);
  // seq -> topic -> offsets stored there.
  std::map<uint64_t, std::map<std::string, std::vector<uint64_t>>> where;
  for (const RoutedCopy& copy : copies) {
    auto seq = seqOfPayload(copy.payload);
    if (!seq || *seq >= log.records.size() || copy.payload != payloadOf(*seq)) {
      violations.add("routed: stored but never sent",
                     copy.topic + " offset " + std::to_string(copy.offset));
      continue;
    }
    if (copy.subject != log.records[*seq].subject) {
      violations.add("routed: wrong subject", "R" + std::to_string(*seq) + " in " + copy.topic +
                                                  " has subject \"" + copy.subject + "\"");
    }
    where[*seq][copy.topic].push_back(copy.offset);
  }
  uint64_t acked = 0;
  uint64_t both = 0;
  for (uint64_t seq = 0; seq < log.records.size(); ++seq) {
    const RoutedRecord& record = log.records[seq];
    const std::string which = "R" + std::to_string(seq);
    auto found = where.find(seq);
    const auto& topics =
        found == where.end() ? std::map<std::string, std::vector<uint64_t>>{} : found->second;
    const size_t expected = isEu(record.subject) ? 2 : 1;
    if (!topics.empty() && topics.size() != expected) {
      violations.add("routed: stored in one topic without the other",
                     which + " (" + record.subject + ") is in " + std::to_string(topics.size()) +
                         " of its " + std::to_string(expected) + " topics");
    }
    if (!isEu(record.subject) && topics.count(kRoutedEu) != 0)
      violations.add("routed: stored where no pattern captures it", which + " in " + kRoutedEu);
    for (const auto& [topic, offsets] : topics) {
      if (offsets.size() > 1) violations.add("routed: stored twice", which + " in " + topic);
    }
    if (record.state == RoutedState::kInDoubt) {
      violations.add("routed: still in doubt after the final run", which);
      continue;
    }
    ++acked;
    if (expected == 2 && topics.size() == 2) ++both;
    for (const auto& [topic, offset] : record.offsets) {
      auto stored = topics.find(topic);
      if (stored == topics.end() || stored->second.front() != offset) {
        violations.add("routed: acknowledged publish lost",
                       which + " acknowledged at " + topic + " offset " + std::to_string(offset));
      }
    }
  }
  std::printf("  routed: %zu published, %" PRIu64 " acknowledged (%" PRIu64
              " retried after a kill, %" PRIu64 " of them stored before it), %" PRIu64
              " stored in both topics, %zu copies read back\n",
              log.records.size(), acked, log.retried, log.retriedStored, both, copies.size());
}

}  // namespace sluice::crash
