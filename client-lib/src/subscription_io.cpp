#include "subscription_io.h"

#include <set>
#include <string>
#include <utility>

#include "convert.h"
#include "io_state.h"
#include "subscription_state.h"

namespace sluice::detail {
namespace {

using Named = SubscriptionIo::Named;
using Failures = std::map<Named, Error>;
using Waiters = std::vector<std::pair<Named, Completion<void>>>;

// Completes each waiter from the reply to one ack or nack call.
template <typename Results>
void completeFromReply(IoState& io, kj::Promise<capnp::Response<Results>> reply, Waiters waiters) {
  io.tasks->add(reply
                    .then([](capnp::Response<Results>&& response) -> Result<Failures> {
                      Failures failures;
                      for (auto failure : response.getFailures()) {
                        failures.emplace(Named{failure.getOffset(), failure.getDeliveryId()},
                                         fromWire(failure.getError()));
                      }
                      return failures;
                    })
                    .catch_([](kj::Exception&& exception) -> Result<Failures> {
                      return fromException(exception);
                    })
                    .then([waiters = std::move(waiters)](Result<Failures>&& failures) mutable {
                      for (auto& [delivery, done] : waiters) {
                        if (!failures.ok()) {
                          done.complete(failures.error());
                          continue;
                        }
                        auto it = failures.value().find(delivery);
                        if (it == failures.value().end()) {
                          done.complete(Result<void>());
                        } else {
                          done.complete(it->second);
                        }
                      }
                    }));
}

// Sets the request's offsets and delivery ids: each queued delivery once, in the order first
// queued.
template <typename Request>
void setDeliveries(Request& request, const Waiters& waiters) {
  std::vector<Named> named;
  std::set<Named> seen;
  for (const auto& waiter : waiters) {
    if (seen.insert(waiter.first).second) named.push_back(waiter.first);
  }
  auto offsets = request.initOffsets(static_cast<unsigned>(named.size()));
  auto ids = request.initDeliveryIds(static_cast<unsigned>(named.size()));
  for (unsigned i = 0; i < named.size(); ++i) {
    offsets.set(i, named[i].first);
    ids.set(i, named[i].second);
  }
}

}  // namespace

Error closedConsumerError(uint64_t offset) {
  return Error{ErrorCode::kNotPending,
               "message at offset " + std::to_string(offset) +
                   " cannot be acknowledged: the consumer that received it was closed, so the "
                   "broker hands it to the group's other consumers"};
}

DeliveryHandlerService::DeliveryHandlerService(std::weak_ptr<SubscriptionState> state,
                                               std::string topic)
    : state_(std::move(state)), topic_(std::move(topic)) {}

kj::Promise<void> DeliveryHandlerService::deliver(DeliverContext context) {
  auto state = state_.lock();
  if (!state) return kj::READY_NOW;
  auto deliveries = context.getParams().getMessages();
  std::vector<Message> messages;
  messages.reserve(deliveries.size());
  for (auto delivery : deliveries) {
    messages.push_back(SubscriptionState::makeMessage(fromWire(delivery), topic_, state));
  }
  state->push(std::move(messages));
  // The broker's prefetch window bounds what it sends, so the stream never needs to wait here.
  return kj::READY_NOW;
}

kj::Promise<void> DeliveryHandlerService::closed(ClosedContext context) {
  if (auto state = state_.lock()) state->end(fromWire(context.getParams().getError()), false);
  return kj::READY_NOW;
}

SubscriptionIo::SubscriptionIo(IoState& io, uint64_t id, wire::Subscription::Client subscription,
                               std::weak_ptr<SubscriptionState> state)
    : io_(io), id_(id), subscription_(kj::mv(subscription)), state_(std::move(state)) {}

SubscriptionIo::~SubscriptionIo() {
  // Settlements queued before close() still go out, ahead of the capability's release.
  if (!io_.shuttingDown) flush();
}

void SubscriptionIo::settle(Named delivery, Settlement settlement, Completion<void> done) {
  switch (settlement.kind) {
    case Settlement::Kind::kAck:
      acks_.emplace_back(delivery, std::move(done));
      break;
    case Settlement::Kind::kNack:
      nacks_[settlement.ms].emplace_back(delivery, std::move(done));
      break;
    case Settlement::Kind::kInProgress:
      renewals_[settlement.ms].emplace_back(delivery, std::move(done));
      break;
  }
  scheduleFlush();
}

void SubscriptionIo::scheduleFlush() {
  if (flushScheduled_) return;
  flushScheduled_ = true;
  // Runs after every command of this wakeup, so their settlements share one call. Looked up
  // by id because close() may have destroyed this object by then.
  io_.tasks->add(kj::evalLater([&io = io_, id = id_] {
    auto it = io.subscriptions.find(id);
    if (it != io.subscriptions.end()) it->second->flush();
  }));
}

void SubscriptionIo::flush() {
  flushScheduled_ = false;
  if (io_.shuttingDown) return;  // Queued waiters complete with kDisconnected when destroyed.
  if (!acks_.empty()) {
    auto request = subscription_.ackRequest();
    setDeliveries(request, acks_);
    completeFromReply<wire::Subscription::AckResults>(io_, request.send(), std::move(acks_));
    acks_.clear();
  }
  for (auto& [delayMs, waiters] : nacks_) {
    auto request = subscription_.nackRequest();
    setDeliveries(request, waiters);
    request.setDelayMs(delayMs);
    completeFromReply<wire::Subscription::NackResults>(io_, request.send(), std::move(waiters));
  }
  nacks_.clear();
  for (auto& [extendMs, waiters] : renewals_) {
    auto request = subscription_.inProgressRequest();
    setDeliveries(request, waiters);
    request.setExtendMs(extendMs);
    completeFromReply<wire::Subscription::InProgressResults>(io_, request.send(),
                                                             std::move(waiters));
  }
  renewals_.clear();
  if (!transactions_.empty()) sendTransactions(std::exchange(transactions_, {}));
}

void SubscriptionIo::fetch(uint64_t seq, uint32_t max, uint32_t timeoutMs) {
  // Settlements queued before the fetch reach the broker first (calls on one capability
  // arrive in order), so its held count is already lowered by them.
  flush();
  auto request = subscription_.fetchRequest();
  request.setMax(max);
  request.setTimeoutMs(timeoutMs);
  io_.tasks->add(
      request.send()
          .then([state = state_](capnp::Response<wire::Subscription::FetchResults>&& response)
                    -> Result<size_t> {
            auto result = response.getResult();
            if (result.isError()) return fromWire(result.getError());
            auto owner = state.lock();
            // Gone: the consumer was closed, which ends the subscription and releases these.
            if (!owner) return size_t{0};
            std::vector<Message> messages;
            messages.reserve(result.getMessages().size());
            for (auto delivery : result.getMessages()) {
              messages.push_back(
                  SubscriptionState::makeMessage(fromWire(delivery), owner->topic(), owner));
            }
            size_t count = messages.size();
            owner->push(std::move(messages));
            return count;
          })
          .catch_(
              [](kj::Exception&& exception) -> Result<size_t> { return fromException(exception); })
          .then([state = state_, seq, &io = io_, id = id_](Result<size_t>&& answer) {
            // Lost with a connection that may be made again: its shutdown answers this fetch
            // (nothing fetched: the broker delivers its messages again), and the caller's next
            // fetch goes to the subscription made again; or it ends the consumer.
            bool lost = !answer.ok() && answer.error().code == ErrorCode::kDisconnected;
            if (lost && io.reattach.count(id) > 0) return;
            if (auto owner = state.lock()) owner->fetchAnswered(seq, std::move(answer));
          }));
}

namespace {

constexpr size_t kTransactionsPerCall = 1024;         // The broker's limit.
constexpr size_t kTransactionBytesPerCall = 8 << 20;  // Well under its 80 MiB message limit.

size_t payloadBytes(const Transaction& transaction) {
  size_t bytes = 0;
  for (const auto& [topic, messages] : transaction.publishes) {
    for (const OutgoingMessage& m : messages) {
      bytes += m.payload.size() + m.id.size() + (m.key ? m.key->size() : 0);
      for (const auto& [key, value] : m.headers)
        bytes += key.size() + value.size();
    }
  }
  return bytes;
}

void setRequest(wire::TransactRequest::Builder request, const Transaction& transaction,
                const std::vector<SubscriptionIo::Named>& offsets) {
  request.setId(asText(transaction.id));
  auto wireOffsets = request.initOffsets(static_cast<unsigned>(offsets.size()));
  auto wireIds = request.initDeliveryIds(static_cast<unsigned>(offsets.size()));
  for (unsigned i = 0; i < offsets.size(); ++i) {
    wireOffsets.set(i, offsets[i].first);
    wireIds.set(i, offsets[i].second);
  }
  auto publishes = request.initPublishes(static_cast<unsigned>(transaction.publishes.size()));
  for (unsigned i = 0; i < transaction.publishes.size(); ++i) {
    const auto& [topic, messages] = transaction.publishes[i];
    publishes[i].setTopic(asText(topic));
    auto out = publishes[i].initMessages(static_cast<unsigned>(messages.size()));
    for (unsigned k = 0; k < messages.size(); ++k)
      toWire(messages[k], out[k]);
  }
}

Result<TransactionResult> resultOf(wire::TransactResult::Reader result,
                                   const Transaction& transaction) {
  if (result.isError()) return fromWire(result.getError());
  auto outputs = result.getOutputs();
  const auto& expected = transaction.publishes;
  if (outputs.size() != expected.size()) {
    return Error{ErrorCode::kInternal, "the broker answered a transaction of " +
                                           std::to_string(expected.size()) + " topics with " +
                                           std::to_string(outputs.size())};
  }
  TransactionResult answer;
  answer.replayed = result.getReplayed();
  for (unsigned i = 0; i < outputs.size(); ++i) {
    if (outputs[i].getAcks().size() != expected[i].second.size()) {
      return Error{ErrorCode::kInternal,
                   "the broker answered " + std::to_string(outputs[i].getAcks().size()) +
                       " acks for " + std::to_string(expected[i].second.size()) + " messages"};
    }
    std::vector<PublishAck> acks;
    for (auto ack : outputs[i].getAcks())
      acks.push_back(fromWire(ack));
    answer.outputs.emplace_back(toStd(outputs[i].getTopic()), std::move(acks));
  }
  return answer;
}

}  // namespace

kj::Promise<Result<TransactionResult>> SubscriptionIo::transact(Transaction transaction,
                                                                std::vector<Named> offsets) {
  auto answer = kj::newPromiseAndFulfiller<Result<TransactionResult>>();
  transactions_.push_back({std::move(transaction), std::move(offsets), kj::mv(answer.fulfiller)});
  scheduleFlush();
  return kj::mv(answer.promise);
}

void SubscriptionIo::sendTransactions(std::vector<QueuedTransaction> queued) {
  for (size_t first = 0; first < queued.size();) {
    size_t end = first;
    size_t bytes = 0;
    while (end < queued.size() && end - first < kTransactionsPerCall &&
           (end == first ||
            bytes + payloadBytes(queued[end].transaction) <= kTransactionBytesPerCall)) {
      bytes += payloadBytes(queued[end].transaction);
      ++end;
    }
    auto request = subscription_.transactManyRequest();
    auto list = request.initTransactions(static_cast<unsigned>(end - first));
    auto calls = std::make_shared<std::vector<QueuedTransaction>>();
    for (size_t i = first; i < end; ++i) {
      setRequest(list[static_cast<unsigned>(i - first)], queued[i].transaction, queued[i].offsets);
      calls->push_back(std::move(queued[i]));
    }
    first = end;
    // Every waiter is answered: from the reply, or with the call's failure (a lost connection).
    io_.tasks->add(
        request.send()
            .then([calls](capnp::Response<wire::Subscription::TransactManyResults>&& response) {
              auto results = response.getResults();
              if (response.hasRefused()) {
                Error refused = fromWire(response.getRefused());
                for (auto& call : *calls)
                  call.answer->fulfill(Result<TransactionResult>(refused));
                return;
              }
              for (size_t i = 0; i < calls->size(); ++i) {
                auto& call = (*calls)[i];
                call.answer->fulfill(
                    i < results.size()
                        ? resultOf(results[static_cast<unsigned>(i)], call.transaction)
                        : Result<TransactionResult>(
                              Error{ErrorCode::kInternal,
                                    "the broker answered " + std::to_string(results.size()) +
                                        " of " + std::to_string(calls->size()) + " transactions"}));
              }
            })
            .catch_([calls](kj::Exception&& exception) {
              Error error = fromException(exception);
              for (auto& call : *calls) {
                if (call.answer->isWaiting())
                  call.answer->fulfill(Result<TransactionResult>(error));
              }
            }));
  }
}

void SubscriptionIo::end(const Error& error, bool dropQueued) {
  if (auto state = state_.lock()) state->end(error, dropQueued);
}

void SubscriptionIo::lostConnection() {
  if (auto state = state_.lock()) state->dropInbox();
}

}  // namespace sluice::detail
