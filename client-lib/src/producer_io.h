#pragma once

// ProducerIo: the I/O thread's side of one Producer's asynchronous publishes.
//
// Messages queue per topic in publishAsync() order. pump() sends a batch (up to
// maxBatchMessages and maxBatchBytes) whenever fewer than maxInFlightBatches publish calls of
// this producer are outstanding; each answer completes its messages in order and pumps again.
// So under light load every message goes out at once, and under heavy load batches grow by
// themselves while earlier ones are in flight (Kafka's linger, without a timer).
//
// A batch is all-or-nothing on the broker: if it is refused (say one message is too large),
// every message of that batch gets the error.
//
// Thread: kj. Owned by IoState::producers; erased once its Producer is gone and it is idle.

#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "completion.h"
#include "sluice/client.h"

namespace sluice::detail {

struct IoState;

class ProducerIo {
 public:
  ProducerIo(IoState& io, uint64_t id, const ProducerOptions& options);
  ProducerIo(const ProducerIo&) = delete;
  ProducerIo& operator=(const ProducerIo&) = delete;

  void enqueue(std::string topic, OutgoingMessage message, Completion<PublishAck> done);
  // A message to a subject: queued apart from any topic of the same name.
  void enqueueRouted(std::string subject, OutgoingMessage message, Completion<RoutedAck> done);
  // Completes `done` once every message enqueued before it has been answered.
  void flush(Completion<void> done);
  // The Producer is gone: erase this from IoState once nothing is queued or in flight.
  // May destroy this object.
  void release();

 private:
  struct Pending {
    uint64_t seq;
    OutgoingMessage message;
    std::variant<Completion<PublishAck>, Completion<RoutedAck>> done;
  };
  // Queue keys: a topic's name, or kSubjectMark and a subject (names never hold it).
  static constexpr char kSubjectMark = '\x01';

  // Pumps once every command of the current wakeup has been enqueued, so that they can share
  // a batch.
  void schedulePump();
  // Sends batches while the in-flight limit allows, visiting topics round-robin.
  void pump();
  void send(const std::string& key, std::deque<Pending>& queue);
  // Completes `batch` from `acks` (or its error), then pumps. May destroy this object.
  void finished(std::vector<Pending> batch, Result<std::vector<PublishAck>> acks);
  void finishedRouted(std::vector<Pending> batch, Result<RoutedAcks> routed);
  void fail(std::vector<Pending>& batch, const Error& error);
  void push(std::string key, Pending pending);
  void settleFlushes();
  bool idle() const { return inFlight_ == 0 && outstanding_.empty(); }
  // Erases this object if released and idle. Must be the caller's last use of `this`.
  void eraseIfDone();

  IoState& io_;
  const uint64_t id_;
  const size_t maxBatchMessages_;
  const size_t maxBatchBytes_;
  const size_t maxInFlight_;

  std::map<std::string, std::deque<Pending>> queued_;  // By topic; no empty queues.
  std::string lastTopic_;                              // Served last by pump().
  bool pumpScheduled_ = false;
  size_t inFlight_ = 0;
  uint64_t nextSeq_ = 0;
  std::set<uint64_t> outstanding_;  // Seqs enqueued and not yet answered.
  // Each waits for every seq below its own; sorted, since seqs only grow.
  std::deque<std::pair<uint64_t, Completion<void>>> flushes_;
  bool released_ = false;
};

}  // namespace sluice::detail
