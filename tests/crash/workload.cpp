#include "crash/workload.h"

#include <chrono>
#include <deque>
#include <future>
#include <thread>
#include <utility>
#include <vector>

#include <sluice/sluice.h>

namespace sluice::crash {
namespace {

using namespace std::chrono_literals;

// How long a future may take once the broker is gone before the driver calls it a hang.
constexpr auto kSettleTimeout = 60s;

// Payload filler length, fixed per message so that a retry sends the same bytes: mostly small,
// some medium, a few past LMDB's ~2 KB overflow-page threshold.
size_t paddingOf(uint64_t key) {
  uint64_t h = key * 0x9E3779B97F4A7C15ull;
  h ^= h >> 29;
  uint64_t bucket = h % 100;
  if (bucket < 70) return 16 + h % 200;
  if (bucket < 95) return 200 + h % 1300;
  return 2000 + h % 2000;
}

OutgoingMessage messageFor(uint32_t producer, uint64_t seq) {
  uint64_t key = keyOf(producer, seq);
  OutgoingMessage message;
  message.payload = payloadFor(producer, seq, paddingOf(key));
  if (usesId(producer, seq)) message.id = idFor(producer, seq);
  if (seq % 3 == 0) message.key = "k" + std::to_string(seq % 7);
  if (seq % 4 == 0) message.headers["seq"] = std::to_string(seq);
  return message;
}

class ProducerRun {
 public:
  ProducerRun(ProducerLedger& ledger, CycleControl& control, uint64_t seed)
      : ledger_(ledger), control_(control), rng_(seed) {}

  void run() {
    size_t firstNew = ledger_.records.size();
    std::vector<uint64_t> oldRetry;
    oldRetry.swap(ledger_.retry);
    auto connected = Client::connect(control_.address, clientOptions());
    if (connected.ok()) {
      Client client = std::move(connected).value();
      Producer producer = client.producer();
      if (retryInDoubt(producer, oldRetry) && recheckDedup(producer) && !control_.resolveOnly) {
        publishLoop(producer);
      }
    } else if (control_.resolveOnly) {
      ledger_.anomalies.push_back("cannot connect for the final run: " +
                                  connected.error().toString());
    }
    // What is still unanswered and carries an id is retried after the next restart.
    for (uint64_t seq : oldRetry) {
      if (ledger_.records[seq].state == PublishState::kInDoubt) ledger_.retry.push_back(seq);
    }
    for (uint64_t seq = firstNew; seq < ledger_.records.size(); ++seq) {
      if (ledger_.records[seq].state == PublishState::kInDoubt && usesId(ledger_.producer, seq)) {
        ledger_.retry.push_back(seq);
      }
    }
    control_.producersDone.fetch_add(1);
  }

 private:
  // Records one answer; returns false when the connection is gone.
  bool settle(uint64_t seq, const Result<PublishAck>& answer) {
    PublishRecord& record = ledger_.records[seq];
    std::string which = "P" + std::to_string(ledger_.producer) + ":" + std::to_string(seq);
    if (answer.ok()) {
      if (answer.value().duplicate && record.attempts <= 1) {
        ledger_.anomalies.push_back(which + " was answered 'duplicate' on its first publish");
      }
      if (record.state == PublishState::kAcked && record.offset != answer.value().offset) {
        ledger_.anomalies.push_back(which + " acked twice at different offsets");
      }
      record.state = PublishState::kAcked;
      record.offset = answer.value().offset;
      record.duplicateAnswer = answer.value().duplicate;
      return true;
    }
    if (inDoubt(answer.error().code)) return false;
    record.state = PublishState::kRejected;
    ledger_.anomalies.push_back(which + " rejected: " + answer.error().toString());
    return true;
  }

  bool retryInDoubt(Producer& producer, std::vector<uint64_t>& seqs) {
    for (uint64_t seq : seqs) {
      if (control_.stop.load()) return false;
      PublishRecord& record = ledger_.records[seq];
      if (record.state != PublishState::kInDoubt) continue;
      ++record.attempts;
      auto answer = producer.publish(kTopic, messageFor(ledger_.producer, seq));
      if (!settle(seq, answer)) return false;
      ++ledger_.retriesAnswered;
    }
    return true;
  }

  // Publishing the newest acknowledged id message again must answer its offset, as duplicate.
  bool recheckDedup(Producer& producer) {
    for (uint64_t seq = ledger_.records.size(); seq-- > 0;) {
      const PublishRecord& record = ledger_.records[seq];
      if (record.state != PublishState::kAcked || !usesId(ledger_.producer, seq)) continue;
      auto answer = producer.publish(kTopic, messageFor(ledger_.producer, seq));
      if (!answer.ok()) return !inDoubt(answer.error().code);
      ++ledger_.dedupRechecks;
      if (!answer.value().duplicate || answer.value().offset != record.offset) {
        ++ledger_.dedupRecheckWrong;
        ledger_.anomalies.push_back("re-publishing P" + std::to_string(ledger_.producer) + ":" +
                                    std::to_string(seq) + " (acked at " +
                                    std::to_string(record.offset) + ") answered offset " +
                                    std::to_string(answer.value().offset) +
                                    (answer.value().duplicate ? " duplicate" : " as new"));
      }
      return true;
    }
    return true;
  }

  uint64_t newRecord() {
    ledger_.records.push_back(PublishRecord{PublishState::kInDoubt, false, 1, 0});
    return ledger_.records.size() - 1;
  }

  void publishLoop(Producer& producer) {
    std::uniform_int_distribution<int> percent(0, 99);
    while (!control_.stop.load()) {
      bool burst = control_.burst.load();
      int pick = percent(rng_);
      bool alive = true;
      if (burst || pick >= 60) {
        size_t count = burst ? 500 + rng_() % 1500 : 20 + rng_() % 280;
        alive = publishAsync(producer, count);
      } else if (pick < 30) {
        uint64_t seq = newRecord();
        control_.publishesInFlight.fetch_add(1);
        auto answer = producer.publish(kTopic, messageFor(ledger_.producer, seq));
        control_.publishesInFlight.fetch_sub(1);
        alive = settle(seq, answer);
      } else {
        alive = publishBatch(producer, 2 + rng_() % 99);
      }
      if (!alive) return;
      if (!burst) std::this_thread::sleep_for(std::chrono::microseconds(rng_() % 3000));
    }
  }

  bool publishBatch(Producer& producer, size_t count) {
    std::vector<OutgoingMessage> messages;
    std::vector<uint64_t> seqs;
    for (size_t i = 0; i < count; ++i) {
      seqs.push_back(newRecord());
      messages.push_back(messageFor(ledger_.producer, seqs.back()));
    }
    control_.publishesInFlight.fetch_add(static_cast<int64_t>(count));
    auto answer = producer.publishBatch(kTopic, std::move(messages));
    control_.publishesInFlight.fetch_sub(static_cast<int64_t>(count));
    if (!answer.ok()) {
      bool alive = true;
      for (uint64_t seq : seqs)
        alive = settle(seq, answer.error()) && alive;
      return alive;
    }
    if (answer.value().size() != count) {
      ledger_.anomalies.push_back("a batch of " + std::to_string(count) + " got " +
                                  std::to_string(answer.value().size()) + " acks");
      return true;
    }
    for (size_t i = 0; i < count; ++i)
      settle(seqs[i], answer.value()[i]);
    return true;
  }

  bool publishAsync(Producer& producer, size_t count) {
    std::vector<std::pair<uint64_t, std::future<Result<PublishAck>>>> sent;
    control_.publishesInFlight.fetch_add(static_cast<int64_t>(count));
    for (size_t i = 0; i < count; ++i) {
      uint64_t seq = newRecord();
      sent.emplace_back(seq, producer.publishAsync(kTopic, messageFor(ledger_.producer, seq)));
    }
    bool alive = true;
    for (auto& [seq, future] : sent) {
      bool ready = future.wait_for(kSettleTimeout) == std::future_status::ready;
      control_.publishesInFlight.fetch_sub(1);
      if (!ready) {
        ledger_.anomalies.push_back("publishAsync did not complete within 60 s");
        alive = false;
        continue;  // Stays in doubt.
      }
      alive = settle(seq, future.get()) && alive;
    }
    return alive;
  }

  ProducerLedger& ledger_;
  CycleControl& control_;
  std::mt19937_64 rng_;
};

class ConsumerRun {
 public:
  ConsumerRun(ConsumerLog& log, CycleControl& control, uint64_t seed)
      : log_(log), control_(control), rng_(seed) {}

  void run() {
    auto connected = Client::connect(control_.address, clientOptions());
    if (!connected.ok()) {
      if (control_.resolveOnly) {
        log_.anomalies.push_back("cannot connect for the final run: " +
                                 connected.error().toString());
      }
      return;
    }
    Client client = std::move(connected).value();
    SubscribeOptions options;
    static constexpr uint32_t kPrefetch[] = {8, 64, 256, 1024};
    options.prefetch = kPrefetch[rng_() % 4];
    options.ackTimeout = 10min;  // Only crashes cause redeliveries in this test.
    auto subscribed = client.subscribe(kTopic, log_.group, options);
    if (!subscribed.ok()) {
      if (!inDoubt(subscribed.error().code) || control_.resolveOnly) {
        log_.anomalies.push_back("subscribe failed: " + subscribed.error().toString());
      }
      return;
    }
    Consumer consumer = std::move(subscribed).value();
    while (!control_.stop.load()) {
      auto received = consumer.receive(20ms);
      if (!received.ok()) {
        if (received.error().code == ErrorCode::kTimeout) {
          settleReady();
          continue;
        }
        if (!inDoubt(received.error().code)) {
          log_.anomalies.push_back("receive failed: " + received.error().toString());
        }
        break;
      }
      const Message& message = received.value();
      log_.events.push_back(ConsumerEvent{ConsumerEventKind::kDelivered, control_.epoch,
                                          message.deliveries(), message.offset(),
                                          keyOfPayload(message.payload()).value_or(~uint64_t{0})});
      // Mostly batched async acks (as a busy worker would), sometimes a blocking one.
      if (rng_() % 50 == 0) {
        record(message.offset(), message.ack());
      } else {
        acks_.emplace_back(message.offset(), message.ackAsync());
      }
      settleReady();
    }
    for (auto& [offset, future] : acks_) {
      if (future.wait_for(kSettleTimeout) != std::future_status::ready) {
        log_.anomalies.push_back("ackAsync did not complete within 60 s");
        continue;
      }
      record(offset, future.get());
    }
    acks_.clear();
  }

 private:
  void settleReady() {
    while (!acks_.empty() && acks_.front().second.wait_for(0s) == std::future_status::ready) {
      record(acks_.front().first, acks_.front().second.get());
      acks_.pop_front();
    }
  }

  void record(uint64_t offset, const Result<void>& answer) {
    if (answer.ok()) {
      log_.events.push_back(ConsumerEvent{ConsumerEventKind::kAckOk, control_.epoch, 0, offset, 0});
      return;
    }
    log_.events.push_back(
        ConsumerEvent{ConsumerEventKind::kAckFailed, control_.epoch, 0, offset, 0});
    if (!inDoubt(answer.error().code)) {
      log_.anomalies.push_back("ack of offset " + std::to_string(offset) +
                               " failed: " + answer.error().toString());
    }
  }

  ConsumerLog& log_;
  CycleControl& control_;
  std::mt19937_64 rng_;
  std::deque<std::pair<uint64_t, std::future<Result<void>>>> acks_;
};

}  // namespace

Options clientOptions() {
  Options options;
  options.connectTimeout = 5s;
  options.callTimeout = 30s;
  return options;
}

bool inDoubt(ErrorCode code) {
  return code == ErrorCode::kDisconnected || code == ErrorCode::kTimeout ||
         code == ErrorCode::kShuttingDown || code == ErrorCode::kConnectFailed;
}

void runProducer(ProducerLedger& ledger, CycleControl& control, uint64_t seed) {
  ProducerRun(ledger, control, seed).run();
}

void runConsumer(ConsumerLog& log, CycleControl& control, uint64_t seed) {
  ConsumerRun(log, control, seed).run();
}

}  // namespace sluice::crash
