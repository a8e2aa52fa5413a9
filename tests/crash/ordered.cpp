// The key-ordered group's consumers and the order checker. See ordered.h and README.md.

#include "crash/ordered.h"

#include <chrono>
#include <deque>
#include <future>
#include <map>
#include <random>
#include <set>
#include <thread>
#include <tuple>
#include <utility>

#include <sluice/sluice.h>

namespace sluice::crash {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Short, so that messages sat on by a consumer go to the other one within a broker run.
constexpr auto kAckTimeout = 200ms;

class OrderedRun {
 public:
  OrderedRun(OrderLog& log, CycleControl& control, uint64_t seed)
      : log_(log), control_(control), rng_(seed) {}

  void run() {
    auto connected = Client::connect(control_.address, clientOptions());
    if (!connected.ok()) {
      if (control_.resolveOnly)
        anomaly("cannot connect for the final run: " + connected.error().toString());
      return;
    }
    Client client = std::move(connected).value();
    SubscribeOptions options;
    options.prefetch = 1 + static_cast<uint32_t>(rng_() % 32);
    options.ackTimeout = kAckTimeout;
    options.keyOrdered = true;
    auto subscribed = client.subscribe(kTopic, kOrderedGroup, options);
    if (!subscribed.ok()) {
      if (!inDoubt(subscribed.error().code) || control_.resolveOnly)
        anomaly("subscribe failed: " + subscribed.error().toString());
      return;
    }
    Consumer consumer = std::move(subscribed).value();
    while (!control_.stop.load()) {
      lateAcks();
      auto received = consumer.receive(20ms);
      if (!received.ok()) {
        if (received.error().code == ErrorCode::kTimeout) continue;
        if (!inDoubt(received.error().code))
          anomaly("receive failed: " + received.error().toString());
        break;
      }
      Message message = std::move(received).value();
      record(OrderEventKind::kDelivered, message, message.key());
      uint64_t roll = rng_() % 100;
      if (!control_.resolveOnly && roll < 10) {
        record(OrderEventKind::kNackSent, message);
        check(message.nack(std::chrono::milliseconds(rng_() % 30)), "nack");
      } else if (!control_.resolveOnly && roll < 13) {
        // Sat on past its ack timeout: redelivered meanwhile, so the late ack is refused,
        // unless the broker had not yet released it (then the ack holds, and counts).
        sitting_.emplace_back(Clock::now() + kAckTimeout + 100ms, std::move(message));
      } else {
        record(OrderEventKind::kAckSent, message);
        acks_.emplace_back(message.ackAsync());
      }
      while (!acks_.empty() && acks_.front().wait_for(0s) == std::future_status::ready) {
        check(acks_.front().get(), "ack");
        acks_.pop_front();
      }
    }
    for (auto& ack : acks_) {
      if (ack.wait_for(60s) != std::future_status::ready) {
        anomaly("ackAsync did not complete within 60 s");
        continue;
      }
      check(ack.get(), "ack");
    }
  }

 private:
  void lateAcks() {
    while (!sitting_.empty() && sitting_.front().first <= Clock::now()) {
      Message message = std::move(sitting_.front().second);
      sitting_.pop_front();
      record(OrderEventKind::kAckSent, message);
      auto answer = message.ack();
      std::lock_guard<std::mutex> lock(log_.mutex);
      ++log_.heldPastTimeout;
      if (!answer.ok() && (answer.error().code == ErrorCode::kStaleDelivery ||
                           answer.error().code == ErrorCode::kNotPending)) {
        log_.events.push_back(OrderEvent{OrderEventKind::kAckRefused, control_.epoch,
                                         message.offset(), message.deliveryId(), std::nullopt});
      } else if (!answer.ok() && !inDoubt(answer.error().code)) {
        log_.anomalies.push_back("late ack failed: " + answer.error().toString());
      }
    }
  }

  // Recorded before the request is sent: the broker cannot act on it earlier.
  void record(OrderEventKind kind, const Message& message,
              std::optional<std::string> key = std::nullopt) {
    std::lock_guard<std::mutex> lock(log_.mutex);
    log_.events.push_back(
        OrderEvent{kind, control_.epoch, message.offset(), message.deliveryId(), std::move(key)});
  }

  void check(const Result<void>& answer, const char* what) {
    if (answer.ok()) return;
    ErrorCode code = answer.error().code;
    // Superseded by a redelivery after this consumer's ack timeout, or the broker died.
    if (code == ErrorCode::kStaleDelivery || code == ErrorCode::kNotPending || inDoubt(code))
      return;
    anomaly(std::string(what) + " failed: " + answer.error().toString());
  }

  void anomaly(std::string text) {
    std::lock_guard<std::mutex> lock(log_.mutex);
    log_.anomalies.push_back(std::move(text));
  }

  OrderLog& log_;
  CycleControl& control_;
  std::mt19937_64 rng_;
  std::deque<std::future<Result<void>>> acks_;
  std::deque<std::pair<Clock::time_point, Message>> sitting_;
};

struct DeliveryName {
  uint32_t epoch = 0;
  uint64_t id = 0;
  bool operator<(const DeliveryName& other) const {
    return std::tie(epoch, id) < std::tie(other.epoch, other.id);
  }
};

}  // namespace

void runOrderedConsumer(OrderLog& log, CycleControl& control, uint64_t seed) {
  OrderedRun(log, control, seed).run();
}

void verifyOrder(Violations& violations, const OrderLog& log,
                 const std::vector<StoredMessage>& stored) {
  for (const std::string& anomaly : log.anomalies)
    violations.add("ordered consumer", anomaly);
  // Per key: the highest offset delivered so far and, per offset, its latest delivery.
  struct KeyState {
    uint64_t highest = 0;
    std::map<uint64_t, DeliveryName> latest;
  };
  std::map<std::string, KeyState> keys;
  std::set<DeliveryName> acked;
  std::map<uint64_t, DeliveryName> newest;  // Per offset, the newest delivery recorded.
  std::set<uint64_t> delivered;
  uint64_t deliveries = 0, lateRecords = 0, acks = 0, nacks = 0, refused = 0, checkedKeyed = 0;
  for (const OrderEvent& e : log.events) {
    DeliveryName name{e.epoch, e.deliveryId};
    switch (e.kind) {
      case OrderEventKind::kAckSent:
        acked.insert(name);
        ++acks;
        continue;
      case OrderEventKind::kNackSent:
        ++nacks;
        continue;
      case OrderEventKind::kAckRefused:
        ++refused;
        continue;
      case OrderEventKind::kDelivered:
        break;
    }
    ++deliveries;
    // Delivery ids grow within a run: an older one recorded after a newer one of the same
    // offset was read late from the client's buffer, after the broker had moved on.
    auto seen = newest.find(e.offset);
    if (seen != newest.end() && name < seen->second) {
      ++lateRecords;
      continue;
    }
    newest[e.offset] = name;
    delivered.insert(e.offset);
    if (!e.key) continue;
    ++checkedKeyed;
    KeyState& key = keys[*e.key];
    if (e.offset < key.highest) {
      violations.add("key order", "key " + *e.key + ": offset " + std::to_string(e.offset) +
                                      " delivered (run " + std::to_string(e.epoch) +
                                      ") after offset " + std::to_string(key.highest));
    }
    // The key's message before this one must have had its latest delivery acknowledged.
    auto before = key.latest.lower_bound(e.offset);
    if (before != key.latest.begin()) {
      --before;
      if (acked.count(before->second) == 0) {
        violations.add("key in flight twice",
                       "key " + *e.key + ": offset " + std::to_string(e.offset) +
                           " delivered (run " + std::to_string(e.epoch) + ") while offset " +
                           std::to_string(before->first) + "'s delivery in run " +
                           std::to_string(before->second.epoch) + " was not acknowledged");
      }
    }
    key.highest = std::max(key.highest, e.offset);
    key.latest[e.offset] = name;
  }
  uint64_t missing = 0;
  for (const StoredMessage& message : stored) {
    if (delivered.count(message.offset) == 0) {
      if (++missing <= 5)
        violations.add("ordered group", "stored offset " + std::to_string(message.offset) +
                                            " was never delivered to group ordered");
    }
  }
  std::printf(
      "  key-ordered group: %llu deliveries (%llu keyed, %llu keys), %llu acks, %llu nacks, "
      "%llu sat on past the ack timeout (%llu late acks refused), %llu late reads; "
      "order violations %zu, keys in flight twice %zu\n",
      static_cast<unsigned long long>(deliveries), static_cast<unsigned long long>(checkedKeyed),
      static_cast<unsigned long long>(keys.size()), static_cast<unsigned long long>(acks),
      static_cast<unsigned long long>(nacks), static_cast<unsigned long long>(log.heldPastTimeout),
      static_cast<unsigned long long>(refused), static_cast<unsigned long long>(lateRecords),
      violations.count("key order"), violations.count("key in flight twice"));
}

}  // namespace sluice::crash
