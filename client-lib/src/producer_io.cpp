#include "producer_io.h"

#include <algorithm>

#include "convert.h"
#include "io_state.h"

namespace sluice::detail {

ProducerIo::ProducerIo(IoState& io, uint64_t id, const ProducerOptions& options)
    : io_(io),
      id_(id),
      // Zero limits would stall the queue forever; treat them as the smallest useful value.
      maxBatchMessages_(std::max<size_t>(options.maxBatchMessages, 1)),
      maxBatchBytes_(options.maxBatchBytes),
      maxInFlight_(std::max<size_t>(options.maxInFlightBatches, 1)) {}

void ProducerIo::enqueue(std::string topic, OutgoingMessage message, Completion<PublishAck> done) {
  uint64_t seq = nextSeq_++;
  outstanding_.insert(seq);
  queued_[std::move(topic)].push_back(Pending{seq, std::move(message), std::move(done)});
  schedulePump();
}

void ProducerIo::flush(Completion<void> done) {
  flushes_.emplace_back(nextSeq_, std::move(done));
  settleFlushes();
}

void ProducerIo::release() {
  released_ = true;
  eraseIfDone();
}

void ProducerIo::schedulePump() {
  if (pumpScheduled_) return;
  pumpScheduled_ = true;
  // Looked up by id: release() may have erased this object by the time it runs.
  io_.tasks->add(kj::evalLater([&io = io_, id = id_] {
    auto it = io.producers.find(id);
    if (it == io.producers.end()) return;
    it->second->pumpScheduled_ = false;
    it->second->pump();
  }));
}

void ProducerIo::pump() {
  if (io_.shuttingDown) return;
  while (inFlight_ < maxInFlight_ && !queued_.empty()) {
    auto it = queued_.upper_bound(lastTopic_);
    if (it == queued_.end()) it = queued_.begin();
    lastTopic_ = it->first;
    send(it->first, it->second);
    if (it->second.empty()) queued_.erase(it);
  }
}

void ProducerIo::send(const std::string& topic, std::deque<Pending>& queue) {
  std::vector<Pending> batch;
  size_t bytes = 0;
  while (!queue.empty() && batch.size() < maxBatchMessages_) {
    size_t size = batchBytes(queue.front().message);
    if (!batch.empty() && bytes + size > maxBatchBytes_) break;
    bytes += size;
    batch.push_back(std::move(queue.front()));
    queue.pop_front();
  }

  auto request = io_.broker.publishRequest();
  try {
    request.setTopic(asText(topic));
    auto messages = request.initMessages(static_cast<unsigned>(batch.size()));
    for (unsigned i = 0; i < batch.size(); ++i) {
      toWire(batch[i].message, messages[i]);
      batch[i].message = OutgoingMessage();  // The request holds its own copy now.
    }
  } catch (const kj::Exception& e) {
    // Capnp refuses blobs of 512 MiB and more. Fail this batch without sending it.
    Error error = fromException(e);
    for (auto& pending : batch) {
      outstanding_.erase(pending.seq);
      pending.done.complete(error);
    }
    settleFlushes();
    return;
  }

  ++inFlight_;
  size_t count = batch.size();
  io_.tasks->add(
      request.send()
          .then([count](capnp::Response<wire::Broker::PublishResults>&& response) {
            return fromWire(response.getResult(), count);
          })
          .catch_([](kj::Exception&& exception) -> Result<std::vector<PublishAck>> {
            return fromException(exception);
          })
          .then([this, batch = std::move(batch)](Result<std::vector<PublishAck>>&& acks) mutable {
            finished(std::move(batch), std::move(acks));
          }));
}

void ProducerIo::finished(std::vector<Pending> batch, Result<std::vector<PublishAck>> acks) {
  --inFlight_;
  for (size_t i = 0; i < batch.size(); ++i) {
    outstanding_.erase(batch[i].seq);
    if (acks.ok()) {
      batch[i].done.complete(acks.value()[i]);
    } else {
      batch[i].done.complete(acks.error());
    }
  }
  settleFlushes();
  pump();
  eraseIfDone();
}

void ProducerIo::settleFlushes() {
  while (!flushes_.empty() &&
         (outstanding_.empty() || *outstanding_.begin() >= flushes_.front().first)) {
    flushes_.front().second.complete(Result<void>());
    flushes_.pop_front();
  }
}

void ProducerIo::eraseIfDone() {
  if (released_ && idle() && queued_.empty()) io_.producers.erase(id_);
}

}  // namespace sluice::detail
