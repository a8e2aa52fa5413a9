// The transformer: a consume-transform-produce worker built on Consumer::transact. See
// workload.h and README.md.

#include "crash/workload.h"

#include <chrono>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include <sluice/sluice.h>

namespace sluice::crash {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A batch left in doubt comes back whole or not at all; one that has come back only in part
// and then nothing more for this long is transformed anew (the verification reports it).
constexpr auto kPartialPatience = 2s;
// After a restart, the conflict probe reuses an id applied at most this long ago: the broker
// remembers applied ids for 5 minutes.
constexpr int64_t kProbeWindowMs = 4 * 60 * 1000;

int64_t steadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch())
      .count();
}

OutgoingMessage withPayload(std::string payload) {
  OutgoingMessage message;
  message.payload = std::move(payload);
  return message;
}

OutgoingMessage outputOf(const Message& input) {
  return withPayload(outputPayload(input.offset(), keyOfPayload(input.payload())));
}

Transaction transactionOf(const std::string& id, const std::vector<Message>& inputs) {
  Transaction transaction;
  transaction.id = id;
  for (const Message& input : inputs)
    transaction.ack(input);
  for (const Message& input : inputs)
    transaction.publish(kOutTopic, outputOf(input));
  return transaction;
}

class TransformerRun {
 public:
  TransformerRun(TransformerLog& log, CycleControl& control, uint64_t seed)
      : log_(log), control_(control), rng_(seed) {}

  void run() {
    const size_t firstNew = log_.attempts.size();
    std::vector<size_t> previous;
    previous.swap(log_.inDoubt);
    for (size_t attempt : previous) {
      const std::vector<uint64_t>& inputs = log_.attempts[attempt].inputs;
      for (size_t i = 0; i < inputs.size(); ++i)
        waitingFor_[inputs[i]] = {waiting_.size(), i};
      waiting_.emplace_back();
      waiting_.back().attempt = attempt;
      waiting_.back().messages.resize(inputs.size());
    }
    auto connected = Client::connect(control_.address, clientOptions());
    if (connected.ok()) {
      Client client = std::move(connected).value();
      SubscribeOptions options;
      static constexpr uint32_t kPrefetch[] = {256, 1024, 4096};
      options.prefetch = kPrefetch[rng_() % 3];
      // Room for a whole batch in doubt (up to 1024) besides the batch being gathered.
      for (const Waiting& waiting : waiting_) {
        if (waiting.messages.size() * 2 > options.prefetch) options.prefetch = 4096;
      }
      options.ackTimeout = 10min;  // Only crashes (and the stale probes' nacks) redeliver.
      auto subscribed = client.subscribe(kTopic, kTxGroup, options);
      if (subscribed.ok()) {
        Consumer consumer = std::move(subscribed).value();
        if (probeAfterRestart(consumer)) transformLoop(consumer);
      } else if (!inDoubt(subscribed.error().code) || control_.resolveOnly) {
        log_.anomalies.push_back("subscribe failed: " + subscribed.error().toString());
      }
    } else if (control_.resolveOnly) {
      log_.anomalies.push_back("cannot connect for the final run: " + connected.error().toString());
    }
    // In doubt after this run: those whose messages did not come back (they had committed, or
    // this run ended first), and this run's own.
    for (const Waiting& waiting : waiting_) {
      if (!waiting.resolved) log_.inDoubt.push_back(waiting.attempt);
    }
    for (size_t i = firstNew; i < log_.attempts.size(); ++i) {
      const TxAttempt& attempt = log_.attempts[i];
      if (attempt.kind == TxKind::kApply && attempt.outcome == TxOutcome::kInDoubt)
        log_.inDoubt.push_back(i);
    }
  }

 private:
  // A transaction in doubt at a kill, gathering its messages as they are delivered again.
  struct Waiting {
    size_t attempt = 0;
    std::vector<std::optional<Message>> messages;  // Per input.
    size_t gathered = 0;
    Clock::time_point lastGathered{};
    bool resolved = false;  // Retried, or given up.
  };

  void transformLoop(Consumer& consumer) {
    std::vector<Message> batch;
    size_t target = nextTarget();
    while (!control_.stop.load()) {
      auto received = consumer.receive(batch.empty() ? 20ms : 0ms);
      if (received.ok()) {
        if (!take(consumer, std::move(received).value(), batch)) return;
        if (batch.size() < target) continue;
      } else if (received.error().code != ErrorCode::kTimeout) {
        if (!inDoubt(received.error().code)) {
          log_.anomalies.push_back("receive failed: " + received.error().toString());
        }
        return;
      }
      giveUpStalled(batch);
      if (batch.empty()) continue;
      if (!transform(consumer, batch)) return;
      batch.clear();
      target = nextTarget();
    }
  }

  // Batch sizes: one message, a few, or many (as many as are waiting, up to the target).
  size_t nextTarget() {
    uint64_t pick = rng_() % 100;
    if (pick < 10) return 1;
    if (pick < 35) return 2 + rng_() % 31;
    if (pick < 75) return 33 + rng_() % 224;
    return 257 + rng_() % 768;
  }

  // Records a delivery; a message of a transaction in doubt goes to it (retried once whole),
  // any other to `batch`. Returns false when the connection is gone.
  bool take(Consumer& consumer, Message message, std::vector<Message>& batch) {
    log_.deliveries.push_back(
        ConsumerEvent{ConsumerEventKind::kDelivered, control_.epoch, message.deliveries(),
                      message.offset(), keyOfPayload(message.payload()).value_or(~uint64_t{0})});
    auto it = waitingFor_.find(message.offset());
    if (it != waitingFor_.end()) {
      Waiting& waiting = waiting_[it->second.first];
      std::optional<Message>& slot = waiting.messages[it->second.second];
      if (!waiting.resolved && !slot) {
        slot = std::move(message);
        waiting.lastGathered = Clock::now();
        if (++waiting.gathered < waiting.messages.size()) return true;
        return retry(consumer, waiting);
      }
    }
    batch.push_back(std::move(message));
    return true;
  }

  // A transaction in doubt whose every message was delivered again had not committed: the
  // same id and content again must be applied now, once.
  bool retry(Consumer& consumer, Waiting& waiting) {
    waiting.resolved = true;
    std::vector<Message> messages;
    for (std::optional<Message>& message : waiting.messages)
      messages.push_back(std::move(*message));
    waiting.messages.clear();
    return apply(consumer, messages, true);
  }

  void giveUpStalled(std::vector<Message>& batch) {
    auto now = Clock::now();
    for (Waiting& waiting : waiting_) {
      if (waiting.resolved || waiting.gathered == 0 ||
          now - waiting.lastGathered < kPartialPatience)
        continue;
      waiting.resolved = true;
      ++log_.retriesGivenUp;
      for (std::optional<Message>& message : waiting.messages) {
        if (message) batch.push_back(std::move(*message));
      }
      waiting.messages.clear();
    }
  }

  bool transform(Consumer& consumer, std::vector<Message>& batch) {
    // Now and then the last message is nacked, and its superseded delivery acked in a
    // transaction, which must be refused; it comes back and joins a later batch.
    if (batch.size() > 1 && rng_() % 64 == 0) {
      Message old = std::move(batch.back());
      batch.pop_back();
      if (!staleProbe(consumer, old)) return false;
    }
    return apply(consumer, batch, false);
  }

  bool apply(Consumer& consumer, const std::vector<Message>& messages, bool isRetry) {
    TxAttempt attempt;
    attempt.kind = TxKind::kApply;
    attempt.epoch = control_.epoch;
    attempt.retry = isRetry;
    for (const Message& message : messages)
      attempt.inputs.push_back(message.offset());
    attempt.id = transactionIdFor(attempt.inputs);
    Transaction transaction = transactionOf(attempt.id, messages);
    std::vector<uint64_t> inputs = attempt.inputs;
    size_t index = record(std::move(attempt));
    if (!send(consumer, index, transaction)) return false;
    if (log_.attempts[index].outcome != TxOutcome::kApplied) return true;
    uint64_t pick = rng_() % 16;
    if (pick < 2) {
      // The same request again must answer the same offsets, replayed, and change nothing.
      return send(consumer, record(probe(TxKind::kResend, transaction.id, inputs)), transaction);
    }
    if (pick == 2) {
      Transaction other;
      other.id = transaction.id;
      for (const Message& message : messages) {
        other.ack(message);
        other.publish(kOutTopic, withPayload(conflictPayload(message.offset())));
      }
      return send(consumer, record(probe(TxKind::kConflict, other.id, inputs)), other);
    }
    return true;
  }

  bool staleProbe(Consumer& consumer, const Message& old) {
    auto nacked = old.nack();
    if (!nacked.ok()) {
      if (inDoubt(nacked.error().code)) return false;
      log_.anomalies.push_back("nack of offset " + std::to_string(old.offset()) +
                               " failed: " + nacked.error().toString());
      return true;
    }
    std::string id = "stale-" + std::to_string(control_.epoch) + "-" +
                     std::to_string(old.offset()) + "-" + std::to_string(old.deliveryId());
    Transaction transaction = transactionOf(id, {old});
    return send(consumer, record(probe(TxKind::kStale, id, {old.offset()})), transaction);
  }

  // An id applied in an earlier broker run, with other content (publishes only, no acks): the
  // broker must still know it, and refuse.
  bool probeAfterRestart(Consumer& consumer) {
    const TxAttempt* newest = nullptr;
    for (size_t i = log_.attempts.size(); i-- > 0;) {
      const TxAttempt& attempt = log_.attempts[i];
      if (attempt.kind == TxKind::kApply && attempt.outcome == TxOutcome::kApplied &&
          attempt.epoch < control_.epoch) {
        newest = &attempt;
        break;
      }
    }
    if (newest == nullptr || steadyMs() - newest->answeredMs > kProbeWindowMs) return true;
    Transaction other;
    other.id = newest->id;
    other.publish(kOutTopic, withPayload(conflictPayload(newest->inputs.front())));
    std::vector<uint64_t> inputs = newest->inputs;
    return send(consumer, record(probe(TxKind::kConflictAfterRestart, other.id, inputs)), other);
  }

  TxAttempt probe(TxKind kind, const std::string& id, std::vector<uint64_t> inputs) const {
    TxAttempt attempt;
    attempt.kind = kind;
    attempt.epoch = control_.epoch;
    attempt.id = id;
    attempt.inputs = std::move(inputs);
    return attempt;
  }

  size_t record(TxAttempt attempt) {
    log_.attempts.push_back(std::move(attempt));
    return log_.attempts.size() - 1;
  }

  // Sends the transaction and records its answer; returns false when the connection is gone
  // (the attempt stays in doubt).
  bool send(Consumer& consumer, size_t index, const Transaction& transaction) {
    auto answer = consumer.transact(transaction);
    TxAttempt& attempt = log_.attempts[index];
    if (answer.ok()) {
      const auto& outputs = answer.value().outputs;
      size_t expected = transaction.publishes.front().second.size();
      if (outputs.size() != 1 || outputs[0].first != kOutTopic ||
          outputs[0].second.size() != expected) {
        attempt.outcome = TxOutcome::kFailed;
        attempt.error = "answered " + std::to_string(outputs.size()) + " topics (" +
                        std::to_string(outputs.empty() ? 0 : outputs[0].second.size()) +
                        " acks) for " + std::to_string(expected) + " messages to " + kOutTopic;
        return true;
      }
      for (const PublishAck& ack : outputs[0].second)
        attempt.outputs.push_back(ack.offset);
      attempt.outcome = answer.value().replayed ? TxOutcome::kReplayed : TxOutcome::kApplied;
      attempt.answeredMs = steadyMs();
      return true;
    }
    ErrorCode code = answer.error().code;
    if (inDoubt(code)) return false;
    if (code == ErrorCode::kTransactionConflict) {
      attempt.outcome = TxOutcome::kConflict;
    } else if (code == ErrorCode::kStaleDelivery || code == ErrorCode::kNotPending) {
      attempt.outcome = TxOutcome::kStale;
    } else {
      attempt.outcome = TxOutcome::kFailed;
    }
    attempt.error = answer.error().toString();
    return true;
  }

  TransformerLog& log_;
  CycleControl& control_;
  std::mt19937_64 rng_;
  std::vector<Waiting> waiting_;
  // Input offset -> (index in waiting_, index of the input).
  std::unordered_map<uint64_t, std::pair<size_t, size_t>> waitingFor_;
};

}  // namespace

void runTransformer(TransformerLog& log, CycleControl& control, uint64_t seed) {
  TransformerRun(log, control, seed).run();
}

}  // namespace sluice::crash
