#include "core/delivery.h"

#include <algorithm>
#include <map>
#include <tuple>

#include <kj/time.h>

#include "core/log.h"
#include "core/names.h"
#include "core/subjects.h"

namespace sluice::core {
namespace {

constexpr uint64_t kDefaultAckTimeoutMs = 30000;

Status notPending(Offset offset) {
  return Status(Code::kNotPending,
                "offset " + std::to_string(offset) +
                    " is not pending for this consumer (never delivered to it, already "
                    "acknowledged, or released by a nack or its ack timeout and not delivered "
                    "again yet)");
}

Status staleDelivery(Offset offset, uint64_t named, const Lease& current) {
  return Status(
      Code::kStaleDelivery,
      "offset " + std::to_string(offset) + ": delivery " + std::to_string(named) +
          " is not the current one (the message was delivered again since, " +
          (current.owner() != nullptr ? "now as delivery " + std::to_string(current.generation)
                                      : std::string("and released again")) +
          "); nothing changed");
}

Status deliveryIdsMismatch(size_t offsets, size_t ids) {
  return Status(Code::kInvalidArgument, "deliveryIds must be empty or one per offset: got " +
                                            std::to_string(ids) + " for " +
                                            std::to_string(offsets) + " offsets");
}

// An offset and the delivery an ack or nack names for it (0: none).
using Named = std::pair<Offset, uint64_t>;

std::vector<Named> pair(const std::vector<Offset>& offsets, const std::vector<uint64_t>& ids) {
  std::vector<Named> out;
  out.reserve(offsets.size());
  for (size_t i = 0; i < offsets.size(); ++i)
    out.emplace_back(offsets[i], ids.size() == offsets.size() ? ids[i] : 0);
  return out;
}

Status subscriptionGone() {
  return Status(Code::kTopicNotFound, "the topic or group of this subscription was deleted");
}

// What an ack, nack or inProgress call may fail with as a whole.
std::optional<Status> checkSettling(const Context& ctx, const Consumer* consumer, size_t offsets,
                                    size_t ids) {
  if (Status refused = ctx.writeRefusal(); !refused.ok()) return refused;
  if (consumer == nullptr || consumer->group == nullptr) return subscriptionGone();
  if (ids != 0 && ids != offsets) return deliveryIdsMismatch(offsets, ids);
  return std::nullopt;
}

std::vector<OffsetFailure> failAll(const std::vector<Named>& named, const Status& why) {
  std::vector<OffsetFailure> failures;
  for (const auto& [offset, deliveryId] : named)
    failures.push_back({offset, why, deliveryId});
  return failures;
}

// The failures found before committing, and every settled offset too if the commit fails.
kj::Promise<std::vector<OffsetFailure>> answerAfter(kj::Promise<Result<uint64_t>> committed,
                                                    std::vector<OffsetFailure> failures,
                                                    std::vector<Named> done) {
  return committed.then(
      [failures = std::move(failures), done = std::move(done)](Result<uint64_t> result) mutable {
        if (!result.ok()) {
          for (const auto& [offset, deliveryId] : done)
            failures.push_back({offset, result.status(), deliveryId});
        }
        return std::move(failures);
      });
}

}  // namespace

Consumer* GroupDelivery::consumerOf(uint64_t id) {
  auto it = ctx_.consumers.find(id);
  return it == ctx_.consumers.end() ? nullptr : it->second.get();
}

// Subscribing ----------------------------------------------------------------------------------

Result<uint64_t> GroupDelivery::subscribe(std::string_view topicName, std::string_view groupName,
                                          StartAt start, uint32_t prefetch, uint64_t ackTimeoutMs,
                                          ConsumerSink& sink, std::string peer, bool keyOrdered,
                                          const std::vector<std::string>& filter) {
  if (ctx_.stopped) return shuttingDown();
  const Limits& limits = ctx_.limits();
  if (prefetch > limits.maxPrefetch) {
    return Status(Code::kInvalidArgument,
                  "prefetch must be 1-" + std::to_string(limits.maxPrefetch) +
                      " (or 0 for a fetch consumer), got " + std::to_string(prefetch));
  }
  if (ackTimeoutMs == 0) ackTimeoutMs = kDefaultAckTimeoutMs;
  if (ackTimeoutMs > limits.maxAckTimeoutMs) {
    return Status(Code::kInvalidArgument, "ack timeout must be at most " +
                                              std::to_string(limits.maxAckTimeoutMs) + " ms, got " +
                                              std::to_string(ackTimeoutMs));
  }
  auto topic = ctx_.requireTopic(topicName);
  if (!topic.ok()) return topic.status();
  WriteBatch batch;
  auto group = groups_.ensure(batch, *topic.value(), groupName, start, keyOrdered, filter);
  if (!group.ok()) return group.status();
  if (!batch.empty()) ctx_.store.commitDetached(std::move(batch), "create group");
  auto consumer = std::make_unique<Consumer>();
  consumer->id = nextConsumerId_++;
  consumer->group = group.value();
  consumer->sink = &sink;
  consumer->prefetch = prefetch;
  consumer->ackTimeoutMs = ackTimeoutMs;
  consumer->peer = std::move(peer);
  consumer->connectedMs = wallClockMs();
  group.value()->consumers.push_back(consumer.get());
  uint64_t id = consumer->id;
  coreLog()->debug("consumer joined topic={} group={} consumer={} peer={}", topicName, groupName,
                   id, consumer->peer);
  ctx_.consumers.emplace(id, std::move(consumer));
  ctx_.metrics.consumers.store(ctx_.consumers.size(), std::memory_order_relaxed);
  schedulePump(*group.value());
  return id;
}

void GroupDelivery::releaseConsumer(Consumer& consumer, RedeliveryCause cause) {
  Group* group = consumer.group;
  if (group == nullptr) return;
  endFetch(consumer, subscriptionGone());
  int64_t now = wallClockMs();
  WriteBatch batch;
  Settle settle = Settle::of(*group);
  auto snapshot = ctx_.store.snapshot();
  std::vector<Offset> held;
  for (const auto& [offset, lease] : group->leases)
    if (lease.owner() == &consumer) held.push_back(offset);
  for (Offset offset : held)
    release(batch, settle, *group, offset, cause, now, *snapshot);
  auto& members = group->consumers;
  members.erase(std::remove(members.begin(), members.end(), &consumer), members.end());
  consumer.group = nullptr;
  if (!batch.empty()) {
    ctx_.tasks.add(commitSettling(std::move(batch), std::move(settle)).ignoreResult());
  }
  schedulePump(*group);
}

void GroupDelivery::unsubscribe(uint64_t consumerId) {
  auto it = ctx_.consumers.find(consumerId);
  if (it == ctx_.consumers.end()) return;
  releaseConsumer(*it->second, RedeliveryCause::kConsumerGone);
  coreLog()->debug("consumer left consumer={}", consumerId);
  ctx_.consumers.erase(it);
  ctx_.metrics.consumers.store(ctx_.consumers.size(), std::memory_order_relaxed);
}

void GroupDelivery::closeConsumer(uint64_t consumerId, const Status& why) {
  auto it = ctx_.consumers.find(consumerId);
  if (it == ctx_.consumers.end()) return;
  endFetch(*it->second, why);
  it->second->sink->closed(why);
  unsubscribe(consumerId);
}

void GroupDelivery::close(Group& group, const Status& why) {
  for (Consumer* consumer : group.consumers) {
    endFetch(*consumer, why);
    consumer->group = nullptr;
    consumer->sink->closed(why);
  }
  group.consumers.clear();
  for (auto& [offset, lease] : group.leases) {
    lease.setOwner(nullptr);
    lease.gone = true;  // The group is going away (or the broker): nothing more to deliver.
  }
}

// Releasing, settling and dead-lettering --------------------------------------------------------

namespace {

std::string maxDeliveriesReason(const Group& group, RedeliveryCause cause) {
  return "max deliveries (" + std::to_string(group.topic->settings.maxDeliveries) +
         ") reached; last: " + causeName(cause);
}

}  // namespace

void GroupDelivery::release(WriteBatch& batch, Settle& settle, Group& group, Offset offset,
                            RedeliveryCause cause, int64_t visibleAtMs,
                            const StoreSnapshot& snapshot) {
  auto it = group.leases.find(offset);
  if (it == group.leases.end()) return;
  Lease& lease = it->second;
  lease.setOwner(nullptr);
  lease.dueAtMs = visibleAtMs;
  lease.cause = cause;
  group.releasedLeases.insert(offset);
  group.noteDue(visibleAtMs);
  settle.leases.emplace_back(offset, lease.generation);
  uint32_t maxDeliveries = group.topic->settings.maxDeliveries;
  if (maxDeliveries > 0 && lease.deliveries >= maxDeliveries) {
    lease.gone = true;
    deadLetter(batch, settle, group, offset, lease.deliveries, maxDeliveriesReason(group, cause),
               snapshot);
    return;
  }
  batch.ops.push_back(
      PutPendingOp{group.topic->id, group.name, offset, lease.deliveries, visibleAtMs, cause});
  if (!settle.dueAtMs || visibleAtMs < *settle.dueAtMs) settle.dueAtMs = visibleAtMs;
}

void GroupDelivery::deadLetter(WriteBatch& batch, Settle& settle, Group& group, Offset offset,
                               uint32_t deliveries, const std::string& reason,
                               const StoreSnapshot& snapshot) {
  ++group.deadLettered;
  ctx_.metrics.deadLetteredTotal.fetch_add(1, std::memory_order_relaxed);
  Topic& topic = *group.topic;
  const std::string& dlq = topic.settings.deadLetterTopic;
  coreLog()->info("message dead-lettered topic={} group={} offset={} deliveries={} reason={} to={}",
                  topic.name, group.name, offset, deliveries, reason,
                  dlq.empty() ? "(dropped)" : dlq);
  int64_t now = wallClockMs();
  if (!dlq.empty()) {
    if (auto message = snapshot.readMessage(topic.id, offset)) {
      Topic* target = ctx_.findTopic(dlq);
      if (target == nullptr) target = &ctx_.createTopicIn(batch, dlq, TopicConfig{}, now);
      MessageData data = std::move(message->data);
      data.headers.emplace_back("sluice-origin-topic", topic.name);
      data.headers.emplace_back("sluice-origin-group", group.name);
      data.headers.emplace_back("sluice-origin-offset", std::to_string(offset));
      data.headers.emplace_back("sluice-deliveries", std::to_string(deliveries));
      data.headers.emplace_back("sluice-reason", reason);
      data.id.clear();
      settle.appends.push_back(log_.appendInternal(batch, *target, std::move(data), now, snapshot));
    }
  }
  // Atomic with the append above: both or neither are committed.
  removePending(batch, group, offset, &settle);
  batch.ops.push_back(PutGroupOp{group.record()});
}

void GroupDelivery::deadLetterNow(Group& group, Offset offset, uint32_t deliveries,
                                  const std::string& reason, const StoreSnapshot& snapshot) {
  // A gone lease keeps the message from being delivered until the commit has removed its
  // pending entry; settled() then erases it.
  WriteBatch batch;
  Lease& lease = group.leases[offset];
  lease = Lease{};
  lease.deliveries = deliveries;
  lease.gone = true;
  lease.generation = ctx_.nextLeaseGeneration++;
  Settle settle = Settle::of(group);
  settle.leases.emplace_back(offset, lease.generation);
  deadLetter(batch, settle, group, offset, deliveries, reason, snapshot);
  ctx_.tasks.add(commitSettling(std::move(batch), std::move(settle)).ignoreResult());
}

kj::Promise<Result<uint64_t>> GroupDelivery::commitSettling(WriteBatch batch, Settle settle) {
  return ctx_.commit(std::move(batch))
      .then([this, settle = std::move(settle)](Result<uint64_t> committed) {
        settled(settle, committed.ok());
        return committed;
      });
}

void GroupDelivery::settled(const Settle& settle, bool committed) {
  for (const AppendTicket& ticket : settle.appends) {
    log_.appended(ticket, committed);
    if (Topic* target = ctx_.findTopic(ticket.topic, ticket.id)) {
      for (auto& [name, group] : target->groups)
        schedulePump(*group);
    }
  }
  Group* group = ctx_.findGroup(settle.topic, settle.topicId, settle.group);
  if (group == nullptr) return;
  for (const auto& [offset, generation] : settle.leases) {
    auto it = group->leases.find(offset);
    if (it != group->leases.end() && it->second.owner() == nullptr &&
        it->second.generation == generation) {
      group->leases.erase(it);
    }
  }
  if (!committed) return;  // Woken, if ever, by the start-up after a restart (restoreKeys()).
  if (settle.dueAtMs) {
    group->noteDue(*settle.dueAtMs);
    if (*settle.dueAtMs <= wallClockMs()) schedulePump(*group);
  }
  for (const auto& [offset, dueAtMs] : settle.wakes)
    wake(*group, offset, dueAtMs);  // fill() passes over one settled meanwhile.
}

void GroupDelivery::expireLeases(Group& group, int64_t nowMs) {
  if (nowMs < group.nextAckDeadlineMs) return;
  std::vector<Offset> expired;
  group.nextAckDeadlineMs = std::numeric_limits<int64_t>::max();
  for (const auto& [offset, lease] : group.leases) {
    if (lease.owner() == nullptr) continue;
    if (lease.ackDeadlineMs <= nowMs) {
      expired.push_back(offset);
    } else {
      group.noteAckDeadline(lease.ackDeadlineMs);
    }
  }
  if (expired.empty()) return;
  WriteBatch batch;
  Settle settle = Settle::of(group);
  auto snapshot = ctx_.store.snapshot();
  for (Offset offset : expired)
    release(batch, settle, group, offset, RedeliveryCause::kAckTimeout, nowMs, *snapshot);
  ctx_.tasks.add(commitSettling(std::move(batch), std::move(settle)).ignoreResult());
}

// Acks and nacks -------------------------------------------------------------------------------

Result<Lease*> GroupDelivery::settleable(Group& group, const Consumer& consumer, Offset offset,
                                         uint64_t deliveryId) {
  auto it = group.leases.find(offset);
  if (it == group.leases.end()) return notPending(offset);
  Lease& lease = it->second;
  if (deliveryId != 0 && lease.generation != deliveryId) {
    return staleDelivery(offset, deliveryId, lease);
  }
  if (lease.owner() != &consumer) return notPending(offset);
  return &lease;
}

kj::Promise<std::vector<OffsetFailure>> GroupDelivery::ack(uint64_t consumerId,
                                                           std::vector<Offset> offsets,
                                                           std::vector<uint64_t> deliveryIds) {
  std::vector<Named> named = pair(offsets, deliveryIds);
  Consumer* consumer = consumerOf(consumerId);
  if (auto refused = checkSettling(ctx_, consumer, offsets.size(), deliveryIds.size()))
    return failAll(named, *refused);
  Group& group = *consumer->group;
  std::vector<OffsetFailure> failures;
  std::vector<Named> done;
  WriteBatch batch;
  Settle settle = Settle::of(group);
  done.reserve(named.size());
  batch.ops.reserve(named.size());
  settle.leases.reserve(named.size());
  for (const auto& [offset, deliveryId] : named) {
    auto lease = settleable(group, *consumer, offset, deliveryId);
    if (!lease.ok()) {
      failures.push_back({offset, lease.status(), deliveryId});
      continue;
    }
    lease.value()->setOwner(nullptr);
    lease.value()->gone = true;
    settle.leases.emplace_back(offset, lease.value()->generation);
    removePending(batch, group, offset, &settle);
    done.emplace_back(offset, deliveryId);
  }
  group.acked += done.size();
  ctx_.metrics.ackedTotal.fetch_add(done.size(), std::memory_order_relaxed);
  if (done.empty()) return failures;
  schedulePump(group);
  return answerAfter(commitSettling(std::move(batch), std::move(settle)), std::move(failures),
                     std::move(done));
}

kj::Promise<std::vector<OffsetFailure>> GroupDelivery::nack(uint64_t consumerId,
                                                            std::vector<Offset> offsets,
                                                            uint32_t delayMs,
                                                            std::vector<uint64_t> deliveryIds) {
  std::vector<Named> named = pair(offsets, deliveryIds);
  Consumer* consumer = consumerOf(consumerId);
  if (auto refused = checkSettling(ctx_, consumer, offsets.size(), deliveryIds.size()))
    return failAll(named, *refused);
  if (delayMs > ctx_.limits().maxNackDelayMs) {
    return failAll(
        named, Status(Code::kInvalidArgument, "nack delay must be at most 24h (86400000 ms), got " +
                                                  std::to_string(delayMs)));
  }
  Group& group = *consumer->group;
  int64_t visibleAt = notBeforeMs(delayMs);
  std::vector<OffsetFailure> failures;
  std::vector<Named> done;
  WriteBatch batch;
  Settle settle = Settle::of(group);
  auto snapshot = ctx_.store.snapshot();
  for (const auto& [offset, deliveryId] : named) {
    auto lease = settleable(group, *consumer, offset, deliveryId);
    if (!lease.ok()) {
      failures.push_back({offset, lease.status(), deliveryId});
      continue;
    }
    ++group.nacked;
    ctx_.metrics.nackedTotal.fetch_add(1, std::memory_order_relaxed);
    release(batch, settle, group, offset, RedeliveryCause::kNack, visibleAt, *snapshot);
    done.emplace_back(offset, deliveryId);
  }
  snapshot.reset();
  schedulePump(group);
  if (done.empty()) return failures;
  return answerAfter(commitSettling(std::move(batch), std::move(settle)), std::move(failures),
                     std::move(done));
}

// Transactions ---------------------------------------------------------------------------------

namespace {

Status conflict(const std::string& id) {
  return Status(Code::kTransactionConflict,
                "transaction " + quoted(id) +
                    " was already applied with other content (other acks or messages); "
                    "nothing changed. A retry must repeat the request exactly; a new "
                    "transaction needs a new id");
}

}  // namespace

kj::Promise<Result<TransactionOutcome>> GroupDelivery::transact(uint64_t consumerId,
                                                                TransactionRequest request) {
  std::vector<TransactionRequest> one;
  one.push_back(std::move(request));
  return transactMany(consumerId, std::move(one))
      .then([](std::vector<Result<TransactionOutcome>> answers) { return std::move(answers[0]); });
}

kj::Promise<std::vector<Result<TransactionOutcome>>> GroupDelivery::transactMany(
    uint64_t consumerId, std::vector<TransactionRequest> requests) {
  using Answer = Result<TransactionOutcome>;
  using Answers = std::vector<Answer>;
  const size_t count = requests.size();
  if (Status refused = ctx_.writeRefusal(); !refused.ok()) return Answers(count, Answer(refused));
  Consumer* consumer = consumerOf(consumerId);
  if (consumer == nullptr || consumer->group == nullptr)
    return Answers(count, Answer(subscriptionGone()));
  Group& group = *consumer->group;
  const int64_t now = wallClockMs();

  // Each request is answered at once (refused, or a retry), or staged into the one batch.
  struct Staged {
    std::vector<TopicLog::Prepared> prepared;
    TransactionOutcome outcome;
  };
  std::vector<kj::Maybe<kj::Promise<Answer>>> early(count);
  std::vector<size_t> stagedAt(count, SIZE_MAX);  // Index into `staged`, or into it as a retry.
  std::vector<bool> retryOfStaged(count, false);
  std::vector<Staged> staged;
  std::vector<std::pair<std::string, std::string>> ids;  // Staged ids and fingerprints.
  std::map<std::string, size_t, std::less<>> stagedIds;
  WriteBatch batch;
  Settle settle = Settle::of(group);
  std::unique_ptr<StoreSnapshot> snapshot;
  size_t acked = 0;
  for (size_t i = 0; i < count; ++i) {
    TransactionRequest& request = requests[i];
    auto refuse = [&](Status why) { early[i] = kj::Promise<Answer>(Answer(std::move(why))); };
    if (auto problem = checkTransaction(request, ctx_.limits())) {
      refuse(*problem);
      continue;
    }
    // A retry is recognised before its acks are checked: they were settled by the first call.
    std::string print;
    if (!request.id.empty()) {
      print = fingerprint(group.topic->name, group.name, request);
      auto local = stagedIds.find(request.id);
      if (local != stagedIds.end()) {  // Earlier in this call.
        if (ids[local->second].second != print) {
          refuse(conflict(request.id));
        } else {
          stagedAt[i] = local->second;
          retryOfStaged[i] = true;
        }
        continue;
      }
      auto inFlight = txns_.find(request.id);
      if (inFlight != txns_.end()) {
        if (inFlight->second.fingerprint != print) {
          refuse(conflict(request.id));
          continue;
        }
        early[i] = inFlight->second.answers->addBranch().then(
            [at = inFlight->second.index](Answers answers) {
              Answer answer = std::move(answers[at]);
              if (answer.ok()) answer.value().replayed = true;
              return answer;
            });
        continue;
      }
      if (!snapshot) snapshot = ctx_.store.snapshot();
      auto stored = snapshot->txn(request.id);
      if (stored && stored->expiresMs > now) {
        if (stored->fingerprint != print) {
          refuse(conflict(request.id));
        } else {
          early[i] =
              kj::Promise<Answer>(Answer(TransactionOutcome{std::move(stored->outputs), true}));
        }
        continue;
      }
    }

    // Check everything before changing anything.
    std::vector<Named> named = pair(request.offsets, request.deliveryIds);
    std::vector<Lease*> leases;
    leases.reserve(named.size());
    std::optional<Status> refused;
    for (const auto& [offset, deliveryId] : named) {
      auto lease = settleable(group, *consumer, offset, deliveryId);
      if (!lease.ok()) {
        refused = Status(lease.status().code(), "transaction: " + lease.status().message());
        break;
      }
      leases.push_back(lease.value());
    }
    std::vector<uint64_t> estimates;
    uint32_t newTopics = 0;
    for (size_t k = 0; !refused && k < request.publishes.size(); ++k) {
      const TopicBatch& out = request.publishes[k];
      estimates.push_back(ctx_.store.estimateAppendBytes(out.messages));
      Status admitted = log_.checkPublish(out.topic, out.messages, estimates.back());
      if (!admitted.ok()) {
        refused = Status(admitted.code(),
                         "transaction: topic " + quoted(out.topic) + ": " + admitted.message());
      }
      if (ctx_.findTopic(out.topic) == nullptr) ++newTopics;
    }
    if (!refused && newTopics > 1) {
      Status room = log_.topicRoom(newTopics);
      if (!room.ok()) refused = room;
    }
    if (refused) {
      refuse(std::move(*refused));
      continue;
    }

    // Into the one batch: the acks, the appends, and the record that makes a retry idempotent.
    for (size_t k = 0; k < named.size(); ++k) {
      Lease& lease = *leases[k];
      lease.setOwner(nullptr);
      lease.gone = true;
      settle.leases.emplace_back(named[k].first, lease.generation);
      removePending(batch, group, named[k].first, &settle);
    }
    acked += named.size();
    Staged step;
    for (size_t k = 0; k < request.publishes.size(); ++k) {
      TopicBatch& out = request.publishes[k];
      step.prepared.push_back(
          log_.prepare(batch, std::move(out.topic), std::move(out.messages), estimates[k], now));
      step.outcome.outputs.push_back(step.prepared.back().acks);
    }
    if (!request.id.empty()) {
      batch.ops.push_back(
          PutTxnOp{request.id, print, now + kTransactionWindowMs, step.outcome.outputs});
      stagedIds.emplace(request.id, staged.size());
      ids.emplace_back(request.id, std::move(print));
    } else {
      ids.emplace_back();
    }
    stagedAt[i] = staged.size();
    staged.push_back(std::move(step));
  }
  snapshot.reset();
  group.acked += acked;
  ctx_.metrics.ackedTotal.fetch_add(acked, std::memory_order_relaxed);
  if (acked > 0) schedulePump(group);

  // One commit for every staged transaction; their answers, in staging order.
  kj::Promise<Answers> committed = Answers();
  if (!staged.empty()) {
    committed = commitSettling(std::move(batch), std::move(settle))
                    .then([this, staged = std::move(staged)](Result<uint64_t> done) mutable {
                      Answers answers;
                      for (Staged& step : staged) {
                        for (const TopicLog::Prepared& p : step.prepared)
                          log_.published(p, done.ok());
                        answers.push_back(done.ok() ? Answer(std::move(step.outcome))
                                                    : Answer(done.status()));
                      }
                      return answers;
                    });
  }
  bool named =
      std::any_of(ids.begin(), ids.end(), [](const auto& id) { return !id.first.empty(); });
  if (named) {
    // A retry of a staged id while this commits joins its answer; forgotten once answered, when
    // the store's record answers a retry.
    auto forked = std::make_shared<kj::ForkedPromise<Answers>>(committed.fork());
    committed = forked->addBranch();
    std::vector<std::string> mine;
    for (size_t k = 0; k < ids.size(); ++k) {
      if (ids[k].first.empty()) continue;
      txns_.insert_or_assign(ids[k].first, InFlightTxn{std::move(ids[k].second), forked, k});
      mine.push_back(std::move(ids[k].first));
    }
    ctx_.tasks.add(forked->addBranch().then([this, forked, mine = std::move(mine)](Answers) {
      for (const std::string& id : mine) {
        auto it = txns_.find(id);
        if (it != txns_.end() && it->second.answers == forked) txns_.erase(it);
      }
    }));
  }
  return committed.then([early = std::move(early), stagedAt = std::move(stagedAt),
                         retryOfStaged = std::move(retryOfStaged)](Answers fromCommit) mutable {
    auto parts = kj::heapArrayBuilder<kj::Promise<Answer>>(early.size());
    for (size_t i = 0; i < early.size(); ++i) {
      KJ_IF_MAYBE (answer, early[i]) {
        parts.add(kj::mv(*answer));
        continue;
      }
      Answer answer = fromCommit[stagedAt[i]];
      if (retryOfStaged[i] && answer.ok()) answer.value().replayed = true;
      parts.add(kj::mv(answer));
    }
    return kj::joinPromises(parts.finish()).then([](kj::Array<Answer> all) {
      return Answers(std::make_move_iterator(all.begin()), std::make_move_iterator(all.end()));
    });
  });
}

std::vector<OffsetFailure> GroupDelivery::inProgress(uint64_t consumerId,
                                                     std::vector<Offset> offsets, uint32_t extendMs,
                                                     std::vector<uint64_t> deliveryIds) {
  std::vector<Named> named = pair(offsets, deliveryIds);
  Consumer* consumer = consumerOf(consumerId);
  if (auto refused = checkSettling(ctx_, consumer, offsets.size(), deliveryIds.size()))
    return failAll(named, *refused);
  if (extendMs > ctx_.limits().maxAckTimeoutMs) {
    return failAll(
        named, Status(Code::kInvalidArgument, "an ack deadline can be extended by at most " +
                                                  std::to_string(ctx_.limits().maxAckTimeoutMs) +
                                                  " ms (24h), got " + std::to_string(extendMs)));
  }
  int64_t deadline = notBeforeMs(extendMs == 0 ? consumer->ackTimeoutMs : extendMs);
  std::vector<OffsetFailure> failures;
  for (const auto& [offset, deliveryId] : named) {
    auto lease = settleable(*consumer->group, *consumer, offset, deliveryId);
    if (!lease.ok()) {
      failures.push_back({offset, lease.status(), deliveryId});
      continue;
    }
    lease.value()->ackDeadlineMs = deadline;
  }
  consumer->group->noteAckDeadline(deadline);
  return failures;
}

// Fetch ----------------------------------------------------------------------------------------

namespace {

// A fetched message is held without a deadline until its fetch is answered.
constexpr int64_t kNoDeadline = INT64_MAX;
// Delayed messages one delivery pass moves to the due index, and expired ones it passes over,
// at most.
constexpr size_t kMaxPassedOverPerPass = 4096;
constexpr size_t kMaxSkippedPerPass = 16384;

}  // namespace

kj::Promise<Result<std::vector<Delivery>>> GroupDelivery::fetch(uint64_t consumerId, uint32_t max,
                                                                uint32_t timeoutMs,
                                                                uint32_t enough) {
  using Answer = Result<std::vector<Delivery>>;
  if (ctx_.stopped) return Answer(shuttingDown());
  Consumer* consumer = consumerOf(consumerId);
  if (consumer == nullptr || consumer->group == nullptr) return Answer(subscriptionGone());
  const Limits& limits = ctx_.limits();
  if (consumer->prefetch != 0) {
    return Answer(
        Status(Code::kInvalidArgument,
               "fetch is for consumers subscribed with prefetch 0; this one has prefetch " +
                   std::to_string(consumer->prefetch) + ", so messages are pushed to it"));
  }
  if (max == 0 || max > limits.maxPrefetch) {
    return Answer(Status(Code::kInvalidArgument, "fetch takes 1-" +
                                                     std::to_string(limits.maxPrefetch) +
                                                     " messages, got " + std::to_string(max)));
  }
  if (timeoutMs > limits.maxFetchTimeoutMs) {
    return Answer(Status(Code::kInvalidArgument, "fetch timeout must be at most " +
                                                     std::to_string(limits.maxFetchTimeoutMs) +
                                                     " ms, got " + std::to_string(timeoutMs)));
  }
  if (consumer->fetch) {
    return Answer(Status(Code::kInvalidArgument,
                         "a fetch is already waiting on this subscription; wait for its answer"));
  }
  if (uint64_t{consumer->held()} + max > limits.maxPrefetch) {
    return Answer(
        Status(Code::kLimitExceeded, "fetching " + std::to_string(max) + " more would hold " +
                                         std::to_string(uint64_t{consumer->held()} + max) +
                                         " unacknowledged messages; at most " +
                                         std::to_string(limits.maxPrefetch) + ": ack some first"));
  }
  // From the clock, not the timer's notion of now (the time of the loop's last wakeup), so the
  // answer never comes before the timeout has passed.
  kj::TimePoint notBefore = kj::systemPreciseMonotonicClock().now() + timeoutMs * kj::MILLISECONDS;
  auto full = kj::newPromiseAndFulfiller<void>();
  uint64_t seq = ++consumer->fetches;
  if (enough == 0 || enough > max) enough = max;
  consumer->fetch = Consumer::Fetch{seq, max, enough, 0, {}, {}, kj::mv(full.fulfiller)};
  schedulePump(*consumer->group);
  // Takes the gathered messages out of the fetch; their ack timeout starts now.
  auto take = [this, consumerId, seq]() -> std::optional<Answer> {
    Consumer* consumer = consumerOf(consumerId);
    if (consumer == nullptr || !consumer->fetch || consumer->fetch->seq != seq) return {};
    Consumer::Fetch done = std::move(*consumer->fetch);
    consumer->fetch.reset();
    if (done.ended) return Answer(*done.ended);
    if (consumer->group != nullptr) {
      int64_t deadline = notBeforeMs(consumer->ackTimeoutMs);
      consumer->group->noteAckDeadline(deadline);
      for (const Delivery& delivery : done.got) {
        auto lease = consumer->group->leases.find(delivery.message.offset);
        if (lease != consumer->group->leases.end() && lease->second.owner() == consumer)
          lease->second.ackDeadlineMs = deadline;
      }
    }
    return Answer(std::move(done.got));
  };
  return fetches_.wrap(full.promise.exclusiveJoin(timer_.atTime(notBefore))
                           .then([take]() -> Answer {
                             if (auto answer = take()) return std::move(*answer);
                             return Answer(subscriptionGone());
                           })
                           // A fetch whose call is dropped unanswered leaves what it gathered held
                           // with an ack deadline, as if the answer had been lost on the way.
                           .attach(kj::defer([take]() { take(); })));
}

size_t GroupDelivery::room(Consumer& consumer) const {
  if (consumer.prefetch > 0) {
    return consumer.prefetch > consumer.held() ? consumer.prefetch - consumer.held() : 0;
  }
  if (!consumer.fetch || consumer.fetch->ended || !consumer.fetch->full->isWaiting()) return 0;
  const Consumer::Fetch& fetch = *consumer.fetch;
  if (fetch.bytes >= ctx_.limits().maxDeliveryBatchBytes) return 0;
  return fetch.want - fetch.got.size();
}

void GroupDelivery::endFetch(Consumer& consumer, std::optional<Status> why) {
  if (!consumer.fetch) return;
  if (why && !consumer.fetch->ended) consumer.fetch->ended = std::move(why);
  if (consumer.fetch->full->isWaiting()) consumer.fetch->full->fulfill();
}

// Delivery -------------------------------------------------------------------------------------

void GroupDelivery::schedulePump(Group& group) {
  if (group.pumpScheduled || ctx_.stopped) return;
  group.pumpScheduled = true;
  ctx_.tasks.add(
      kj::evalLater([this, topic = group.topic->name, id = group.topic->id, name = group.name]() {
        if (Group* group = ctx_.findGroup(topic, id, name)) {
          group->pumpScheduled = false;
          pump(*group);
        }
      }));
}

std::vector<DueEntry> GroupDelivery::dueEntries(Group& group, const StoreSnapshot& snapshot,
                                                int64_t nowMs, size_t max) const {
  // Released leases that are due (still settling: their disk entries may not be written yet),
  // then the disk's entries: those at 0 are left by consumers of an earlier run (heldAtStop),
  // the rest wait for their time. Disk entries of leases (held, or released and settling) are
  // not due from disk.
  std::vector<DueEntry> due;
  const Topic& topic = *group.topic;
  group.forEachReleased([&](Offset offset, const Lease& lease) {
    if (lease.dueAtMs <= nowMs && due.size() < max)
      due.push_back(DueEntry{offset, lease.deliveries, lease.dueAtMs, lease.cause});
  });
  // Due order across both sources: a message released just now must not overtake one that
  // was due earlier. Each source is in due order already but for the few released ones.
  auto dueOrder = [](const DueEntry& a, const DueEntry& b) {
    return std::tie(a.visibleAtMs, a.offset) < std::tie(b.visibleAtMs, b.offset);
  };
  std::sort(due.begin(), due.end(), dueOrder);
  const size_t released = due.size();
  auto leased = [&](Offset offset) { return group.leases.count(offset) != 0; };
  if (group.heldAtStop > 0) {
    auto held = snapshot.due(topic.id, group.name, 0, 0, max, leased);
    due.insert(due.end(), held.begin(), held.end());
  }
  if (due.size() - released < max) {
    auto later =
        snapshot.due(topic.id, group.name, 1, nowMs, max - (due.size() - released), leased);
    due.insert(due.end(), later.begin(), later.end());
  }
  std::inplace_merge(due.begin(), due.begin() + static_cast<std::ptrdiff_t>(released), due.end(),
                     dueOrder);
  if (due.size() > max) due.resize(max);
  return due;
}

void GroupDelivery::pump(Group& group) {
  if (ctx_.stopped || group.consumers.empty()) return;
  Topic& topic = *group.topic;
  const Limits& limits = ctx_.limits();
  int64_t now = wallClockMs();
  size_t room = 0;
  for (Consumer* consumer : group.consumers)
    room += std::min<size_t>(this->room(*consumer), limits.maxDeliveryBatch);
  bool dueKnown = group.heldAtStop > 0 || (group.nextDueMs && *group.nextDueMs <= now);
  if (room == 0 || (!group.mayHaveDue(now) && group.position >= topic.committedNext)) return;

  auto snapshot = ctx_.store.snapshot();
  std::vector<DueEntry> due;
  if (dueKnown) due = dueEntries(group, *snapshot, now, room);
  WriteBatch batch;
  batch.ops.reserve(room + 1);
  Offset startPosition = group.position;
  size_t nextDue = 0;
  size_t members = group.consumers.size();
  uint64_t deliveredBefore = group.delivered;
  std::optional<int64_t> scheduledDueMs;
  for (size_t k = 0; k < members; ++k) {
    Consumer& consumer = *group.consumers[(group.nextConsumer + k) % members];
    fill(group, consumer, due, nextDue, *snapshot, batch, now, scheduledDueMs);
  }
  group.nextConsumer = (group.nextConsumer + 1) % members;
  if (dueKnown) {
    group.nextDueMs = snapshot->nextDueMs(topic.id, group.name, 1);
    group.forEachReleased([&](Offset, const Lease& lease) { group.noteDue(lease.dueAtMs); });
  }
  snapshot.reset();
  // A push is capped per consumer; come back in a later turn for the rest, so that one busy
  // group cannot hold the event loop.
  bool more = nextDue < due.size() || group.position < topic.committedNext || group.mayHaveDue(now);
  if (more && (group.delivered > deliveredBefore || group.position != startPosition))
    schedulePump(group);
  if (group.position != startPosition) batch.ops.push_back(PutGroupOp{group.record()});
  if (batch.empty()) return;
  if (scheduledDueMs) {
    // Delayed messages are due from disk, so their time counts once they are committed there
    // (as a release's does; see settled()).
    group.scheduling = true;
    ctx_.tasks.add(ctx_.commit(std::move(batch))
                       .then([this, topic = topic.name, id = topic.id, name = group.name,
                              dueMs = *scheduledDueMs](Result<uint64_t> committed) {
                         Group* group = ctx_.findGroup(topic, id, name);
                         if (group == nullptr) return;
                         group->scheduling = false;
                         if (committed.ok()) group->noteDue(dueMs);
                         schedulePump(*group);
                       }));
    return;
  }
  // Delivery state is written without waiting: a crash before this commits only means the
  // messages are delivered again (at-least-once), and the writer's FIFO order puts these
  // writes before any ack of the same messages.
  ctx_.store.commitDetached(std::move(batch), "delivery state");
}

// Key order -----------------------------------------------------------------------------------

GroupDelivery::Take GroupDelivery::takeKeyed(Group& group, const MessageHead& message,
                                             WriteBatch& batch) {
  if (!group.keyOrdered || !message.key) return Take::kDeliver;
  if (group.keyOf.size() >= ctx_.limits().maxKeyedMessages) return Take::kFull;
  auto [line, fresh] = group.keys.try_emplace(*message.key);
  group.track(message.offset, &*line);
  if (fresh) {
    line->second.active = message.offset;
    return Take::kDeliver;
  }
  // Behind its key's message in flight: on disk as never due, so a restart keeps it parked.
  line->second.parked.emplace_back(message.offset, message.deliverAtMs);
  batch.ops.push_back(PutPendingOp{group.topic->id, group.name, message.offset, 0, kParkedMs,
                                   RedeliveryCause::kNone});
  return Take::kParked;
}

void GroupDelivery::removePending(WriteBatch& batch, Group& group, Offset offset, Settle* settle) {
  batch.ops.push_back(RemovePendingOp{group.topic->id, group.name, offset});
  if (group.keyOrdered) keySettled(group, offset, batch, settle);
}

void GroupDelivery::keySettled(Group& group, Offset offset, WriteBatch& batch, Settle* settle) {
  auto tracked = group.keyOf.find(offset);
  if (tracked == group.keyOf.end()) return;
  KeyLines::value_type& line = *tracked->second;
  group.keyOf.erase(tracked);
  if (line.second.active == offset) {
    unparkNext(group, line, batch, settle);
    return;
  }
  auto& parked = line.second.parked;  // A parked one that retention removed.
  auto it = std::find_if(parked.begin(), parked.end(),
                         [&](const auto& entry) { return entry.first == offset; });
  if (it != parked.end()) {
    parked.erase(it);
  }
}

void GroupDelivery::unparkNext(Group& group, KeyLines::value_type& line, WriteBatch& batch,
                               Settle* settle) {
  const Topic& topic = *group.topic;
  auto& parked = line.second.parked;
  while (!parked.empty()) {
    auto [next, deliverAtMs] = parked.front();
    parked.pop_front();
    if (next < topic.firstOffset) {  // Removed by retention meanwhile.
      group.keyOf.erase(next);
      continue;
    }
    line.second.active = next;
    int64_t now = wallClockMs();
    if (deliverAtMs > now) {
      // Not due yet: it waits in the due index, on disk, as any delayed message.
      batch.ops.push_back(
          PutPendingOp{topic.id, group.name, next, 0, deliverAtMs, RedeliveryCause::kNone});
      if (settle == nullptr) {
        wake(group, next, deliverAtMs);  // Its entry is not committed yet.
      } else if (!settle->dueAtMs || deliverAtMs < *settle->dueAtMs) {
        settle->dueAtMs = deliverAtMs;
      }
      return;
    }
    // Due now: delivered from memory, its entry left parked. Durable as it is: at start-up a
    // key's first entry, parked, is due (restoreKeys()), so nothing is written for it, and the
    // due index never holds a key's next message while it is being delivered.
    if (settle != nullptr) {
      // Due once the commit that settled its predecessor is durable (settled()): a consumer
      // never gets a key's next message while the last one's ack could still be lost.
      settle->wakes.emplace_back(next, now);
    } else {
      wake(group, next, now);
    }
    return;
  }
  // By iterator: `line` is the element itself, so a key argument would refer into it.
  group.keys.erase(group.keys.find(line.first));
}

void GroupDelivery::wake(Group& group, Offset offset, int64_t dueAtMs) {
  if (dueAtMs <= wallClockMs()) {
    group.woken.push_back(offset);
    schedulePump(group);
    return;
  }
  // Due later (a delayed message): a lease without an owner until then.
  Lease& lease = group.leases[offset];
  lease = Lease{};
  lease.dueAtMs = dueAtMs;
  lease.generation = ctx_.nextLeaseGeneration++;
  group.releasedLeases.insert(offset);
  group.noteDue(dueAtMs);
  if (dueAtMs <= wallClockMs()) schedulePump(group);
}

void GroupDelivery::forgetTrimmed(Group& group, WriteBatch& batch) {
  const Offset first = group.topic->firstOffset;
  if (first <= group.keyFloor) return;  // Nothing tracked was removed.
  std::vector<Offset> removed;
  Offset floor = std::numeric_limits<Offset>::max();
  for (const auto& [offset, line] : group.keyOf) {
    // A held one stays its key's until settled; a released one's late entry, if any, finds
    // its message gone in fill().
    auto lease = group.leases.find(offset);
    if (offset < first && (lease == group.leases.end() || lease->second.owner() == nullptr)) {
      removed.push_back(offset);
    } else {
      floor = std::min(floor, offset);
    }
  }
  std::sort(removed.begin(), removed.end());
  for (Offset offset : removed)
    keySettled(group, offset, batch, nullptr);
  // Offsets tracked since (a key's next message) are at or above `first`.
  group.keyFloor = std::min(floor, first);
}

void GroupDelivery::restoreKeys(Group& group, const std::vector<KeyedEntry>& keyed) {
  WriteBatch batch;
  for (const KeyedEntry& entry : keyed) {
    auto [line, fresh] = group.keys.try_emplace(entry.key);
    group.track(entry.offset, &*line);
    if (fresh) {
      line->second.active = entry.offset;
      if (entry.parked) wake(group, entry.offset, std::max(wallClockMs(), entry.deliverAtMs));
      continue;
    }
    line->second.parked.emplace_back(entry.offset, entry.deliverAtMs);
    if (!entry.parked) {
      coreLog()->warn(
          "key-ordered group {} of topic {}: offset {} was due behind offset {} of its "
          "key; parked again",
          group.name, group.topic->name, entry.offset, line->second.active);
      batch.ops.push_back(PutPendingOp{group.topic->id, group.name, entry.offset, 0, kParkedMs,
                                       RedeliveryCause::kNone});
    }
  }
  if (!batch.empty()) ctx_.store.commitDetached(std::move(batch), "key order");
}

void GroupDelivery::expire(Group& group, Offset offset, uint32_t deliveries, bool pending,
                           const StoreSnapshot& snapshot, WriteBatch& batch) {
  ++group.expired;
  ctx_.metrics.expiredTotal.fetch_add(1, std::memory_order_relaxed);
  const TopicConfig& settings = group.topic->settings;
  if (settings.deadLetterExpired && !settings.deadLetterTopic.empty()) {
    deadLetterNow(group, offset, deliveries, "expired", snapshot);
    return;
  }
  if (pending) removePending(batch, group, offset, nullptr);
}

void GroupDelivery::fill(Group& group, Consumer& consumer, std::vector<DueEntry>& due,
                         size_t& nextDue, const StoreSnapshot& snapshot, WriteBatch& batch,
                         int64_t nowMs, std::optional<int64_t>& scheduledDueMs) {
  Topic& topic = *group.topic;
  const Limits& limits = ctx_.limits();
  const size_t window = std::min<size_t>(room(consumer), limits.maxDeliveryBatch);
  if (window == 0) return;
  // A fetch's answer, gathered over several passes, is bounded as one push is.
  const bool fetching = consumer.prefetch == 0;
  const uint64_t byteBudget = limits.maxDeliveryBatchBytes - (fetching ? consumer.fetch->bytes : 0);
  std::vector<Delivery> out;
  uint64_t bytes = 0;
  // Delayed messages passed over into the due index: bounded per pass, and one pass's worth
  // at a time per group (`group.scheduling`), so memory does not grow with a backlog of them
  // ahead of the writer.
  // Expired messages are passed over, and count against the same bound.
  size_t passedOver = 0;
  // Messages a filtered group passes over on their heads: cheap, but bounded per pass too,
  // so that a long run of them does not hold the event loop.
  size_t skipped = 0;
  bool blocked = false;
  auto full = [&] {
    return out.size() >= window || bytes >= byteBudget || passedOver >= kMaxPassedOverPerPass ||
           skipped >= kMaxSkippedPerPass || blocked;
  };
  // `parked`: its entry is parked (a key's next message, woken) and stays so while it is
  // held: at start-up a key's first parked entry is due at once, as a held one is, so the
  // delivery writes nothing; a broker crash meanwhile forgets only that it was delivered once.
  auto lease = [&](StoredMessageData message, uint32_t deliveries, bool parked = false) {
    Lease& l = group.leases[message.offset];
    l = Lease{};  // A released lease: it has no owner.
    l.deliveries = deliveries;
    l.ackDeadlineMs = fetching ? kNoDeadline : notBeforeMs(consumer.ackTimeoutMs);
    group.noteAckDeadline(l.ackDeadlineMs);
    l.setOwner(&consumer);
    l.generation = ctx_.nextLeaseGeneration++;
    if (!parked) {
      batch.ops.push_back(PutPendingOp{topic.id, group.name, message.offset, deliveries, 0,
                                       RedeliveryCause::kNone});
    }
    bytes += message.data.payload.size();
    out.push_back(Delivery{std::move(message), deliveries, l.generation});
  };
  // A message due again (or for the first time, delayed or behind its key) that no lease holds.
  auto takeDue = [&](const DueEntry& entry, Lease* released, bool parked) {
    uint32_t maxDeliveries = topic.settings.maxDeliveries;
    if (maxDeliveries > 0 && entry.deliveries >= maxDeliveries) {
      // E.g. left so by a restart: dead-letter it in its own commit.
      RedeliveryCause cause = entry.visibleAtMs == 0 ? RedeliveryCause::kRestart : entry.cause;
      deadLetterNow(group, entry.offset, entry.deliveries, maxDeliveriesReason(group, cause),
                    snapshot);
      return;
    }
    auto message = snapshot.readMessage(topic.id, entry.offset);
    if (!message) {  // Removed by retention meanwhile.
      if (released != nullptr) released->gone = true;
      removePending(batch, group, entry.offset, nullptr);
      return;
    }
    if (expiredAt(message->expiresAtMs(), nowMs)) {
      if (released != nullptr) released->gone = true;
      expire(group, entry.offset, entry.deliveries, true, snapshot, batch);
      ++passedOver;
      return;
    }
    if (entry.deliveries > 0) {  // Not a delayed message's first delivery.
      ++group.redelivered;
      ctx_.metrics.redeliveredTotal.fetch_add(1, std::memory_order_relaxed);
    }
    lease(std::move(*message), entry.deliveries + 1, parked);
  };
  while (!full() && nextDue < due.size()) {
    const DueEntry& entry = due[nextDue++];
    auto released = group.leases.find(entry.offset);
    bool fromLease = released != group.leases.end();
    if (fromLease && (released->second.owner() != nullptr || released->second.gone)) continue;
    if (!fromLease && entry.visibleAtMs == 0 && group.heldAtStop > 0) --group.heldAtStop;
    takeDue(entry, fromLease ? &released->second : nullptr, false);
  }
  while (!full() && !group.woken.empty()) {
    Offset offset = group.woken.front();
    group.woken.pop_front();
    auto tracked = group.keyOf.find(offset);
    if (tracked == group.keyOf.end() || tracked->second->second.active != offset ||
        group.leases.count(offset) != 0) {
      continue;  // Settled meanwhile (removed by retention, the group reset).
    }
    takeDue(DueEntry{offset, 0, nowMs, RedeliveryCause::kNone}, nullptr, true);
  }
  // Past a message the group is sent (its filter matches it): one fewer matching ahead.
  auto pass = [&](Offset offset) {
    group.position = offset + 1;
    if (group.matchedAhead && *group.matchedAhead > 0) --*group.matchedAhead;
  };
  auto decide = [&](const MessageHead& message) {
    if (message.offset >= topic.committedNext || full()) return Scan::kStop;  // Not answered yet.
    if (group.filtered() &&
        !anySubjectMatches(group.filter, message.subject.empty() ? std::string_view(topic.name)
                                                                 : message.subject)) {
      // Not the group's: passed over on its head, with no delivery, write or count.
      group.position = message.offset + 1;
      ++skipped;
      return Scan::kPass;
    }
    if (expiredAt(message.expiresAtMs, nowMs)) {
      pass(message.offset);
      expire(group, message.offset, 0, false, snapshot, batch);
      ++passedOver;
      return Scan::kPass;
    }
    const bool delayed = message.deliverAtMs > nowMs;
    if (delayed && group.scheduling) {
      blocked = true;  // The commit of the last pass's ones reopens it.
      return Scan::kStop;
    }
    Take take = takeKeyed(group, message, batch);
    if (take == Take::kFull) {
      blocked = true;  // Settling tracked messages reopens it.
      return Scan::kStop;
    }
    pass(message.offset);
    if (take == Take::kParked) {
      ++passedOver;
      return Scan::kPass;
    }
    if (delayed) {
      // Delayed: it waits in the due index, as a nacked message does, never delivered yet.
      batch.ops.push_back(PutPendingOp{topic.id, group.name, message.offset, 0, message.deliverAtMs,
                                       RedeliveryCause::kNone});
      ++passedOver;
      if (!scheduledDueMs || message.deliverAtMs < *scheduledDueMs)
        scheduledDueMs = message.deliverAtMs;
      return Scan::kPass;
    }
    return Scan::kTake;
  };
  while (!full() && group.position < topic.committedNext) {
    Offset from = group.position;
    auto messages =
        snapshot.scanMessages(topic.id, from, window - out.size(), byteBudget - bytes, decide);
    for (StoredMessageData& message : messages)
      lease(std::move(message), 1);
    if (group.position == from) {
      // Nothing below committedNext was shown: the rest was removed by retention or purge.
      if (!full()) {
        group.position = topic.committedNext;
        if (group.filtered()) group.matchedAhead = 0;
      }
      break;
    }
  }
  if (out.empty()) return;
  group.delivered += out.size();
  ctx_.metrics.deliveredTotal.fetch_add(out.size(), std::memory_order_relaxed);
  ctx_.deliveryRate.add(nowMs, out.size());
  if (!fetching) {
    consumer.sink->deliver(std::move(out));
    return;
  }
  Consumer::Fetch& fetch = *consumer.fetch;
  fetch.bytes += bytes;
  for (Delivery& delivery : out)
    fetch.got.push_back(std::move(delivery));
  if (room(consumer) == 0 || fetch.got.size() >= fetch.enough) endFetch(consumer, std::nullopt);
}

}  // namespace sluice::core
