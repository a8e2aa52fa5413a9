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
  push(std::move(topic), Pending{0, std::move(message), std::move(done)});
}

void ProducerIo::enqueueRouted(std::string subject, OutgoingMessage message,
                               Completion<RoutedAck> done) {
  push(kSubjectMark + subject, Pending{0, std::move(message), std::move(done)});
}

void ProducerIo::push(std::string key, Pending pending) {
  pending.seq = nextSeq_++;
  outstanding_.insert(pending.seq);
  queued_[std::move(key)].push_back(std::move(pending));
  schedulePump();
}

void ProducerIo::fail(std::vector<Pending>& batch, const Error& error) {
  for (auto& pending : batch) {
    outstanding_.erase(pending.seq);
    std::visit([&](auto& done) { done.complete(error); }, pending.done);
  }
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

void ProducerIo::send(const std::string& key, std::deque<Pending>& queue) {
  std::vector<Pending> batch;
  size_t bytes = 0;
  while (!queue.empty() && batch.size() < maxBatchMessages_) {
    size_t size = batchBytes(queue.front().message);
    if (!batch.empty() && bytes + size > maxBatchBytes_) break;
    bytes += size;
    batch.push_back(std::move(queue.front()));
    queue.pop_front();
  }

  const bool routed = !key.empty() && key.front() == kSubjectMark;
  auto fill = [&batch](auto messages) {
    for (unsigned i = 0; i < batch.size(); ++i) {
      toWire(batch[i].message, messages[i]);
      batch[i].message = OutgoingMessage();  // The request holds its own copy now.
    }
  };
  const size_t count = batch.size();
  if (routed) {
    auto request = io_.broker.publishSubjectRequest();
    try {
      request.setSubject(capnp::Text::Reader(key.data() + 1, key.size() - 1));  // NUL-ended.
      fill(request.initMessages(static_cast<unsigned>(count)));
    } catch (const kj::Exception& e) {
      fail(batch, fromException(e));  // As below.
      settleFlushes();
      return;
    }
    ++inFlight_;
    io_.tasks->add(
        request.send()
            .then([count](capnp::Response<wire::Broker::PublishSubjectResults>&& response) {
              return fromWire(response.getResult(), count);
            })
            .catch_([](kj::Exception&& exception) -> Result<RoutedAcks> {
              return fromException(exception);
            })
            .then([this, batch = std::move(batch)](Result<RoutedAcks>&& acks) mutable {
              finishedRouted(std::move(batch), std::move(acks));
            }));
    return;
  }

  auto request = io_.broker.publishRequest();
  try {
    request.setTopic(asText(key));
    fill(request.initMessages(static_cast<unsigned>(count)));
  } catch (const kj::Exception& e) {
    // Capnp refuses blobs of 512 MiB and more. Fail this batch without sending it.
    fail(batch, fromException(e));
    settleFlushes();
    return;
  }

  ++inFlight_;
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
  if (!acks.ok()) {
    fail(batch, acks.error());
  } else {
    for (size_t i = 0; i < batch.size(); ++i) {
      outstanding_.erase(batch[i].seq);
      std::get<Completion<PublishAck>>(batch[i].done).complete(acks.value()[i]);
    }
  }
  settleFlushes();
  pump();
  eraseIfDone();
}

void ProducerIo::finishedRouted(std::vector<Pending> batch, Result<RoutedAcks> routed) {
  --inFlight_;
  if (!routed.ok()) {
    fail(batch, routed.error());
  } else {
    for (size_t i = 0; i < batch.size(); ++i) {
      outstanding_.erase(batch[i].seq);
      RoutedAck ack;
      ack.reserve(routed.value().size());
      for (const auto& [topic, acks] : routed.value())
        ack.emplace_back(topic, acks[i]);
      std::get<Completion<RoutedAck>>(batch[i].done).complete(std::move(ack));
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
