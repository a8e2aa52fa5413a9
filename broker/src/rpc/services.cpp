#include "rpc/services.h"

#include "common/log.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <type_traits>

#include <kj/debug.h>
#include <spdlog/spdlog.h>

#include "common/clock.h"
#include "core/names.h"
#include "rpc/wire.h"

namespace sluice::rpc {

namespace {

std::shared_ptr<spdlog::logger> rpcLog() {
  return namedLog("rpc");
}

template <typename Builder>
void setStatus(Builder result, const Status& status) {
  setError(result.initError(), status);
}

// Pushes deliveries to the consumer's DeliveryHandler as `-> stream` calls: flow control
// follows the consumer's socket, and the prefetch window bounds what can be outstanding.
class DeliverySink final : public core::ConsumerSink, private kj::TaskSet::ErrorHandler {
 public:
  DeliverySink(wire::DeliveryHandler::Client handler, std::string topic)
      : handler_(kj::mv(handler)), topic_(std::move(topic)), tasks_(*this) {}
  const std::string& topic() const { return topic_; }
  ~DeliverySink() noexcept override {}  // KJ members may throw from destructors; we do not.

  void deliver(std::vector<core::Delivery> batch) override {
    auto request = handler_.deliverRequest();
    toWire(batch, topic_, request.initMessages(static_cast<unsigned>(batch.size())));
    tasks_.add(request.send());
  }

  void closed(const Status& why) override {
    auto request = handler_.closedRequest();
    setError(request.initError(), why);
    tasks_.add(request.send().ignoreResult());
  }

 private:
  void taskFailed(kj::Exception&& exception) override {
    // The consumer's connection is gone; its subscription ends with it.
    rpcLog()->debug("delivery failed: {}", exception.getDescription().cStr());
  }

  wire::DeliveryHandler::Client handler_;
  std::string topic_;  // Its deliveries' subject when they have none of their own.
  kj::TaskSet tasks_;
};

class SubscriptionService final : public wire::Subscription::Server {
 public:
  SubscriptionService(core::Broker& broker, uint64_t consumerId, kj::Own<DeliverySink> sink,
                      std::shared_ptr<ConnectionInfo> connection, core::Identity identity)
      : broker_(broker),
        consumerId_(consumerId),
        sink_(kj::mv(sink)),
        connection_(std::move(connection)),
        identity_(std::move(identity)) {
    // Losing the right to consume (a rule changed, the credential revoked or expired) ends it.
    watch_ = broker_.auth().watch(identity_, kActConsume, sink_->topic(),
                                  [&broker = broker_, consumerId](const Status& why) {
                                    broker.closeConsumer(consumerId, why);
                                  });
  }

  ~SubscriptionService() noexcept(false) {
    broker_.auth().unwatch(watch_);
    broker_.unsubscribe(consumerId_);
    --connection_->subscriptions;
  }

 protected:
  kj::Promise<void> ack(AckContext context) override {
    return guarded("ack", [this, context]() mutable {
      auto params = context.getParams();
      return broker_
          .ack(consumerId_, offsetsOf(params.getOffsets()), offsetsOf(params.getDeliveryIds()))
          .then([context](std::vector<core::OffsetFailure> failures) mutable {
            writeFailures(context.getResults().initFailures(static_cast<unsigned>(failures.size())),
                          failures);
          });
    });
  }

  kj::Promise<void> nack(NackContext context) override {
    return guarded("nack", [this, context]() mutable {
      auto params = context.getParams();
      return broker_
          .nack(consumerId_, offsetsOf(params.getOffsets()), params.getDelayMs(),
                offsetsOf(params.getDeliveryIds()))
          .then([context](std::vector<core::OffsetFailure> failures) mutable {
            writeFailures(context.getResults().initFailures(static_cast<unsigned>(failures.size())),
                          failures);
          });
    });
  }

  kj::Promise<void> fetch(FetchContext context) override {
    return guarded("fetch", [this, context]() mutable {
      auto params = context.getParams();
      return broker_.fetch(consumerId_, params.getMax(), params.getTimeoutMs())
          .then([this, context](Result<std::vector<core::Delivery>> fetched) mutable {
            auto result = context.getResults().initResult();
            if (!fetched.ok()) {
              setError(result.initError(), fetched.status());
              return;
            }
            const auto& messages = fetched.value();
            toWire(messages, sink_->topic(),
                   result.initMessages(static_cast<unsigned>(messages.size())));
          });
    });
  }

  kj::Promise<void> inProgress(InProgressContext context) override {
    return guarded("inProgress", [this, context]() mutable {
      auto params = context.getParams();
      auto failures = broker_.inProgress(consumerId_, offsetsOf(params.getOffsets()),
                                         params.getExtendMs(), offsetsOf(params.getDeliveryIds()));
      writeFailures(context.getResults().initFailures(static_cast<unsigned>(failures.size())),
                    failures);
    });
  }

  kj::Promise<void> transact(TransactContext context) override {
    return guarded("transact", [this, context]() mutable -> kj::Promise<void> {
      auto params = context.getParams();
      std::vector<Staged> staged;
      staged.push_back(requestOf(params.getId(), params.getOffsets(), params.getDeliveryIds(),
                                 params.getPublishes()));
      return answer(std::move(staged)).then([context](std::vector<Answered> answers) mutable {
        writeResult(context.getResults().initResult(), answers[0]);
      });
    });
  }

  kj::Promise<void> transactMany(TransactManyContext context) override {
    return guarded("transactMany", [this, context]() mutable -> kj::Promise<void> {
      auto transactions = context.getParams().getTransactions();
      if (transactions.size() > core::kMaxTransactionsPerCall) {
        Status why(Code::kLimitExceeded,
                   "transactMany takes at most " + std::to_string(core::kMaxTransactionsPerCall) +
                       " transactions, got " + std::to_string(transactions.size()));
        setError(context.getResults().initRefused(), why);
        return kj::READY_NOW;
      }
      std::vector<Staged> staged;
      staged.reserve(transactions.size());
      for (auto t : transactions) {
        staged.push_back(
            requestOf(t.getId(), t.getOffsets(), t.getDeliveryIds(), t.getPublishes()));
      }
      return answer(std::move(staged)).then([context](std::vector<Answered> answers) mutable {
        auto results = context.getResults().initResults(static_cast<unsigned>(answers.size()));
        for (unsigned i = 0; i < answers.size(); ++i)
          writeResult(results[i], answers[i]);
      });
    });
  }

 private:
  // A transaction as read from the wire: refused by its shape before anything was copied, or
  // the request for the core, with the topics it publishes to (for the answer).
  struct Staged {
    std::optional<Status> refused;
    core::TransactionRequest request;
    std::vector<std::string> topics;
  };
  struct Answered {
    Result<core::TransactionOutcome> outcome;
    std::vector<std::string> topics;
  };

  Staged requestOf(capnp::Text::Reader id, capnp::List<uint64_t>::Reader offsets,
                   capnp::List<uint64_t>::Reader deliveryIds,
                   capnp::List<wire::TopicMessages>::Reader publishes) {
    Staged staged;
    // Counted before anything is copied, as for publish.
    if ((staged.refused = countProblem(publishes))) return staged;
    int64_t now = wallClockMs();
    for (auto entry : publishes) {
      Status allowed =
          broker_.auth().check(identity_, kActPublish, toString(entry.getTopic()), now);
      if (!allowed.ok()) {
        staged.refused = allowed;
        return staged;
      }
    }
    core::TransactionRequest& request = staged.request;
    request.id = toString(id);
    request.offsets = offsetsOf(offsets);
    request.deliveryIds = offsetsOf(deliveryIds);
    for (auto entry : publishes) {
      core::TopicBatch batch{toString(entry.getTopic()), {}};
      batch.messages.reserve(entry.getMessages().size());
      for (auto message : entry.getMessages())
        batch.messages.push_back(fromWire(message));
      staged.topics.push_back(batch.topic);
      request.publishes.push_back(std::move(batch));
    }
    return staged;
  }

  // The core's answers, one per transaction, in order.
  kj::Promise<std::vector<Answered>> answer(std::vector<Staged> staged) {
    std::vector<core::TransactionRequest> requests;
    for (Staged& s : staged) {
      if (!s.refused) requests.push_back(std::move(s.request));
    }
    return broker_.transactMany(consumerId_, std::move(requests))
        .then([staged = std::move(staged)](
                  std::vector<Result<core::TransactionOutcome>> outcomes) mutable {
          std::vector<Answered> answers;
          size_t next = 0;
          for (Staged& s : staged) {
            if (s.refused) {
              answers.push_back({Result<core::TransactionOutcome>(*s.refused), {}});
            } else {
              answers.push_back({std::move(outcomes[next++]), std::move(s.topics)});
            }
          }
          return answers;
        });
  }

  static void writeResult(wire::TransactResult::Builder result, const Answered& answered) {
    const auto& outcome = answered.outcome;
    if (!outcome.ok()) return setError(result.initError(), outcome.status());
    const auto& outputs = outcome.value().outputs;
    result.setReplayed(outcome.value().replayed);
    auto out = result.initOutputs(static_cast<unsigned>(outputs.size()));
    for (unsigned i = 0; i < outputs.size(); ++i) {
      out[i].setTopic(answered.topics[i]);
      auto acks = out[i].initAcks(static_cast<unsigned>(outputs[i].size()));
      for (unsigned k = 0; k < outputs[i].size(); ++k) {
        acks[k].setOffset(outputs[i][k].offset);
        acks[k].setDuplicate(outputs[i][k].duplicate);
      }
    }
  }

  // A transaction's message and header counts, checked before copying (see publish).
  std::optional<Status> countProblem(capnp::List<wire::TopicMessages>::Reader publishes) {
    const core::Limits& limits = broker_.limits();
    if (publishes.size() > core::kMaxTransactionTopics) {
      return Status(Code::kLimitExceeded, "transaction: it may publish to at most " +
                                              std::to_string(core::kMaxTransactionTopics) +
                                              " topics, got " + std::to_string(publishes.size()));
    }
    uint64_t messages = 0;
    for (auto entry : publishes) {
      messages += entry.getMessages().size();
      if (messages > limits.maxBatchMessages) {
        return Status(Code::kLimitExceeded, "transaction: it may publish at most " +
                                                std::to_string(limits.maxBatchMessages) +
                                                " messages");
      }
      for (auto message : entry.getMessages()) {
        if (auto problem = core::validateHeaderCount(message.getHeaders().size()))
          return Status(Code::kInvalidArgument, "transaction: " + *problem);
      }
    }
    return std::nullopt;
  }

  // Offsets or delivery ids.
  static std::vector<uint64_t> offsetsOf(capnp::List<uint64_t>::Reader list) {
    std::vector<Offset> offsets;
    offsets.reserve(list.size());
    for (uint64_t offset : list)
      offsets.push_back(offset);
    return offsets;
  }
  static void writeFailures(capnp::List<wire::OffsetError>::Builder out,
                            const std::vector<core::OffsetFailure>& failures) {
    for (unsigned i = 0; i < failures.size(); ++i) {
      out[i].setOffset(failures[i].offset);
      out[i].setDeliveryId(failures[i].deliveryId);
      setError(out[i].initError(), failures[i].status);
    }
  }

  core::Broker& broker_;
  uint64_t consumerId_;
  kj::Own<DeliverySink> sink_;
  std::shared_ptr<ConnectionInfo> connection_;
  core::Identity identity_;
  uint64_t watch_ = 0;
};

}  // namespace

// Broker ---------------------------------------------------------------------------------------

BrokerService::BrokerService(core::Broker& broker, std::shared_ptr<ConnectionInfo> connection,
                             ServiceLimits limits, kj::LowLevelAsyncIoProvider* lowLevelIo,
                             core::Identity identity)
    : broker_(broker),
      connection_(std::move(connection)),
      limits_(limits),
      lowLevelIo_(lowLevelIo),
      identity_(std::move(identity)) {}

Status BrokerService::allowed(uint8_t action, std::string_view topic) {
  return broker_.auth().check(identity_, action, topic, wallClockMs());
}

Result<std::vector<MessageData>> BrokerService::copyMessages(
    capnp::List<wire::PublishMessage>::Reader list) const {
  // Counted before anything is copied: a list of empty structs costs its sender next to
  // nothing per element (the traversal limit allows ~80M of them in one call) but would cost
  // the broker a MessageData, or a header, each.
  Status count = broker_.checkBatchCount(list.size());
  for (unsigned i = 0; count.ok() && i < list.size(); ++i) {
    if (auto problem = core::validateHeaderCount(list[i].getHeaders().size())) {
      count = Status(Code::kInvalidArgument,
                     (list.size() == 1 ? std::string("the message")
                                       : "message " + std::to_string(i + 1) + " of " +
                                             std::to_string(list.size())) +
                         ": " + *problem);
    }
  }
  if (!count.ok()) return count;
  // Copied out: the request may be freed (call cancelled) before the commit answers.
  std::vector<MessageData> messages;
  messages.reserve(list.size());
  for (auto message : list)
    messages.push_back(fromWire(message));
  return messages;
}

kj::Promise<void> BrokerService::publish(PublishContext context) {
  return guarded("publish", [this, context]() mutable -> kj::Promise<void> {
    auto params = context.getParams();
    Status permitted = allowed(kActPublish, toString(params.getTopic()));
    if (!permitted.ok()) {
      setStatus(context.getResults().initResult(), permitted);
      return kj::READY_NOW;
    }
    auto messages = copyMessages(params.getMessages());
    if (!messages.ok()) {
      setStatus(context.getResults().initResult(), messages.status());
      return kj::READY_NOW;
    }
    return broker_.publish(toString(params.getTopic()), std::move(messages.value()))
        .then([context](Result<std::vector<PublishAckData>> acks) mutable {
          auto result = context.getResults().initResult();
          if (!acks.ok()) return setStatus(result, acks.status());
          auto out = result.initAcks(static_cast<unsigned>(acks.value().size()));
          for (unsigned i = 0; i < acks.value().size(); ++i) {
            out[i].setOffset(acks.value()[i].offset);
            out[i].setDuplicate(acks.value()[i].duplicate);
          }
        });
  });
}

kj::Promise<void> BrokerService::publishSubject(PublishSubjectContext context) {
  return guarded("publishSubject", [this, context]() mutable -> kj::Promise<void> {
    auto params = context.getParams();
    Status permitted = allowed(kActPublish, toString(params.getSubject()));
    if (!permitted.ok()) {
      setStatus(context.getResults().initResult(), permitted);
      return kj::READY_NOW;
    }
    auto messages = copyMessages(params.getMessages());
    if (!messages.ok()) {
      setStatus(context.getResults().initResult(), messages.status());
      return kj::READY_NOW;
    }
    return broker_.publishSubject(toString(params.getSubject()), std::move(messages.value()))
        .then([context](Result<std::vector<core::RoutedAcks>> routed) mutable {
          auto result = context.getResults().initResult();
          if (!routed.ok()) return setStatus(result, routed.status());
          auto outputs = result.initOutputs(static_cast<unsigned>(routed.value().size()));
          for (unsigned t = 0; t < routed.value().size(); ++t) {
            const core::RoutedAcks& topic = routed.value()[t];
            outputs[t].setTopic(topic.topic);
            auto acks = outputs[t].initAcks(static_cast<unsigned>(topic.acks.size()));
            for (unsigned i = 0; i < topic.acks.size(); ++i) {
              acks[i].setOffset(topic.acks[i].offset);
              acks[i].setDuplicate(topic.acks[i].duplicate);
            }
          }
        });
  });
}

kj::Promise<void> BrokerService::subscribe(SubscribeContext context) {
  return guarded("subscribe", [this, context]() mutable -> kj::Promise<void> {
    auto params = context.getParams();
    auto result = context.getResults().initResult();
    Status permitted = allowed(kActConsume, toString(params.getTopic()));
    if (!permitted.ok()) {
      setStatus(result, permitted);
      return kj::READY_NOW;
    }
    if (connection_->subscriptions >= limits_.maxSubscriptionsPerConnection) {
      setStatus(result, Status(Code::kLimitExceeded,
                               "a connection may hold at most " +
                                   std::to_string(limits_.maxSubscriptionsPerConnection) +
                                   " subscriptions"));
      return kj::READY_NOW;
    }
    auto filter = patternsOf(params.getFilter(), core::kMaxPatternsPerGroup, "group filter");
    if (!filter.ok()) {
      setStatus(result, filter.status());
      return kj::READY_NOW;
    }
    auto sink = kj::heap<DeliverySink>(params.getHandler(), toString(params.getTopic()));
    auto consumer = broker_.subscribe(toString(params.getTopic()), toString(params.getGroup()),
                                      fromWire(params.getStart()), params.getPrefetch(),
                                      params.getAckTimeoutMs(), *sink, connection_->peer,
                                      params.getKeyOrdered(), filter.value());
    if (!consumer.ok()) {
      setStatus(result, consumer.status());
      return kj::READY_NOW;
    }
    ++connection_->subscriptions;
    result.setConsumerId(consumer.value());
    result.setSubscription(kj::heap<SubscriptionService>(broker_, consumer.value(), kj::mv(sink),
                                                         connection_, identity_));
    return kj::READY_NOW;
  });
}

kj::Promise<void> BrokerService::admin(AdminContext context) {
  context.getResults().setAdmin(kj::heap<AdminService>(broker_, lowLevelIo_, identity_));
  return kj::READY_NOW;
}

kj::Promise<void> BrokerService::auth(AuthContext context) {
  context.getResults().setAuth(kj::heap<AuthService>(broker_, identity_));
  return kj::READY_NOW;
}

// This broker serves: it is standalone or leads. Answered without a credential (it names
// addresses any member of the cluster would name).
kj::Promise<void> BrokerService::hello(HelloContext context) {
  return guarded("hello", [this, context]() mutable {
    core::ClusterView view = broker_.cluster();
    toWire(view, view.leader, /*serves=*/true, "", context.getResults().initHello());
    return kj::READY_NOW;
  });
}

namespace {
// The address part of "host:port" ("[v6]:port"): failures are counted per address.
std::string addressOf(const std::string& peer) {
  size_t colon = peer.rfind(':');
  return colon == std::string::npos ? peer : peer.substr(0, colon);
}
}  // namespace

kj::Promise<void> BrokerService::authenticate(AuthenticateContext context) {
  return guarded("authenticate", [this, context]() mutable -> kj::Promise<void> {
    std::string peer = addressOf(connection_->peer);
    core::Authority& authority = broker_.auth();
    // A peer that keeps failing waits for every answer, right or wrong; others never do.
    uint64_t penalty = authority.penaltyMs(peer, wallClockMs());
    kj::Promise<void> held = kj::READY_NOW;
    if (penalty > 0 && connection_->timer != nullptr)
      held = connection_->timer->afterDelay(penalty * kj::MILLISECONDS);
    return held.then([this, context, peer]() mutable {
      core::Authority& authority = broker_.auth();
      int64_t now = wallClockMs();
      // Measured on the wire first: an oversized secret is refused without a copy.
      auto secret = context.getParams().getSecret();
      auto identity = secret.size() > core::kMaxSecretLength
                          ? Result<core::Identity>(Status(Code::kUnauthenticated,
                                                          "a token or grant of the wrong length"))
                          : authority.authenticate(toString(secret), now);
      authority.recordOutcome(peer, identity.ok(), now);
      auto result = context.getResults().initResult();
      if (!identity.ok()) return setStatus(result, identity.status());
      result.setPrincipal(identity.value().principal);
      result.setBroker(kj::heap<BrokerService>(broker_, connection_, limits_, lowLevelIo_,
                                               std::move(identity).value()));
    });
  });
}

// Admin ----------------------------------------------------------------------------------------

Status AdminService::allowed(uint8_t actions, std::string_view topic) {
  return broker_.auth().checkAny(identity_, actions, topic, wallClockMs());
}

namespace {
constexpr uint8_t kDescribe = kActPublish | kActConsume | kActManage;
}  // namespace

kj::Promise<void> AdminService::createTopic(CreateTopicContext context) {
  return guarded("createTopic", [this, context]() mutable {
    auto params = context.getParams();
    Status permitted = allowed(kActManage, toString(params.getName()));
    if (!permitted.ok()) {
      setStatus(context.getResults().initResult(), permitted);
      return kj::Promise<void>(kj::READY_NOW);
    }
    auto subjects =
        patternsOf(params.getSettings().getSubjects(), core::kMaxPatternsPerTopic, "topic");
    if (!subjects.ok()) {
      setStatus(context.getResults().initResult(), subjects.status());
      return kj::Promise<void>(kj::READY_NOW);
    }
    return broker_.createTopic(toString(params.getName()), fromWire(params.getSettings()))
        .then([context](Result<core::TopicView> topic) mutable {
          auto result = context.getResults().initResult();
          if (!topic.ok()) return setStatus(result, topic.status());
          toWire(topic.value(), result.initTopic());
        });
  });
}

kj::Promise<void> AdminService::listTopics(ListTopicsContext context) {
  return guarded("listTopics", [this, context]() mutable {
    auto result = context.getResults().initResult();
    int64_t now = wallClockMs();
    core::Authority& authority = broker_.auth();
    Status valid = authority.checkValid(identity_, now);
    if (!valid.ok()) return setStatus(result, valid);
    auto topics = broker_.listTopics();
    if (!topics.ok()) return setStatus(result, topics.status());
    // Only the topics this identity may describe.
    auto& list = topics.value();
    list.erase(
        std::remove_if(list.begin(), list.end(),
                       [&](const core::TopicView& topic) {
                         return !authority.checkAny(identity_, kDescribe, topic.name, now).ok();
                       }),
        list.end());
    auto out = result.initTopics(static_cast<unsigned>(topics.value().size()));
    for (unsigned i = 0; i < topics.value().size(); ++i)
      toWire(topics.value()[i], out[i]);
  });
}

kj::Promise<void> AdminService::describeTopic(DescribeTopicContext context) {
  return guarded("describeTopic", [this, context]() mutable {
    std::string name = toString(context.getParams().getName());
    auto result = context.getResults().initResult();
    Status permitted = allowed(kDescribe, name);
    if (!permitted.ok()) return setStatus(result, permitted);
    auto topic = broker_.describeTopic(name);
    if (!topic.ok()) return setStatus(result, topic.status());
    toWire(topic.value(), result.initTopic());
  });
}

namespace {
template <typename Context>
kj::Promise<void> answerCount(kj::Promise<Result<uint64_t>> count, Context context) {
  return count.then([context](Result<uint64_t> n) mutable {
    auto result = context.getResults().initResult();
    if (!n.ok()) return setStatus(result, n.status());
    result.setCount(n.value());
  });
}
template <typename Context>
kj::Promise<void> answerGroup(kj::Promise<Result<core::GroupView>> group, Context context) {
  return group.then([context](Result<core::GroupView> view) mutable {
    auto result = context.getResults().initResult();
    if (!view.ok()) return setStatus(result, view.status());
    toWire(view.value(), result.initGroup());
  });
}
}  // namespace

kj::Promise<void> AdminService::deleteTopic(DeleteTopicContext context) {
  return guarded("deleteTopic", [this, context]() mutable {
    std::string name = toString(context.getParams().getName());
    Status permitted = allowed(kActManage, name);
    if (!permitted.ok()) return answerCount(kj::Promise<Result<uint64_t>>(permitted), context);
    return answerCount(broker_.deleteTopic(std::move(name)), context);
  });
}

kj::Promise<void> AdminService::purgeTopic(PurgeTopicContext context) {
  return guarded("purgeTopic", [this, context]() mutable {
    std::string name = toString(context.getParams().getName());
    Status permitted = allowed(kActManage, name);
    if (!permitted.ok()) return answerCount(kj::Promise<Result<uint64_t>>(permitted), context);
    return answerCount(broker_.purgeTopic(std::move(name)), context);
  });
}

kj::Promise<void> AdminService::createGroup(CreateGroupContext context) {
  return guarded("createGroup", [this, context]() mutable {
    auto params = context.getParams();
    Status permitted = allowed(kActManage, toString(params.getTopic()));
    if (!permitted.ok())
      return answerGroup(kj::Promise<Result<core::GroupView>>(permitted), context);
    auto filter = patternsOf(params.getFilter(), core::kMaxPatternsPerGroup, "group filter");
    if (!filter.ok()) {
      return answerGroup(kj::Promise<Result<core::GroupView>>(filter.status()), context);
    }
    return answerGroup(broker_.createGroup(toString(params.getTopic()), toString(params.getGroup()),
                                           fromWire(params.getStart()), params.getKeyOrdered(),
                                           std::move(filter.value())),
                       context);
  });
}

kj::Promise<void> AdminService::listGroups(ListGroupsContext context) {
  return guarded("listGroups", [this, context]() mutable {
    std::string topic = toString(context.getParams().getTopic());
    auto result = context.getResults().initResult();
    Status permitted = allowed(kDescribe, topic);
    if (!permitted.ok()) return setStatus(result, permitted);
    auto groups = broker_.listGroups(topic);
    if (!groups.ok()) return setStatus(result, groups.status());
    auto out = result.initGroups(static_cast<unsigned>(groups.value().size()));
    for (unsigned i = 0; i < groups.value().size(); ++i)
      toWire(groups.value()[i], out[i]);
  });
}

kj::Promise<void> AdminService::describeGroup(DescribeGroupContext context) {
  return guarded("describeGroup", [this, context]() mutable {
    auto params = context.getParams();
    Status permitted = allowed(kDescribe, toString(params.getTopic()));
    if (!permitted.ok())
      return answerGroup(kj::Promise<Result<core::GroupView>>(permitted), context);
    return answerGroup(kj::Promise<Result<core::GroupView>>(broker_.describeGroup(
                           toString(params.getTopic()), toString(params.getGroup()))),
                       context);
  });
}

kj::Promise<void> AdminService::resetGroup(ResetGroupContext context) {
  return guarded("resetGroup", [this, context]() mutable {
    auto params = context.getParams();
    Status permitted = allowed(kActManage, toString(params.getTopic()));
    if (!permitted.ok())
      return answerGroup(kj::Promise<Result<core::GroupView>>(permitted), context);
    return answerGroup(broker_.resetGroup(toString(params.getTopic()), toString(params.getGroup()),
                                          fromWire(params.getTo())),
                       context);
  });
}

kj::Promise<void> AdminService::deleteGroup(DeleteGroupContext context) {
  return guarded("deleteGroup", [this, context]() mutable {
    auto params = context.getParams();
    Status permitted = allowed(kActManage, toString(params.getTopic()));
    if (!permitted.ok()) return answerCount(kj::Promise<Result<uint64_t>>(permitted), context);
    return answerCount(
        broker_.deleteGroup(toString(params.getTopic()), toString(params.getGroup())), context);
  });
}

kj::Promise<void> AdminService::peek(PeekContext context) {
  return guarded("peek", [this, context]() mutable {
    auto params = context.getParams();
    std::string topic = toString(params.getTopic());
    auto result = context.getResults().initResult();
    Status permitted = allowed(kActConsume, topic);
    if (!permitted.ok()) return setStatus(result, permitted);
    auto messages = broker_.peek(topic, params.getFromOffset(), params.getCount());
    if (!messages.ok()) return setStatus(result, messages.status());
    auto out = result.initMessages(static_cast<unsigned>(messages.value().size()));
    for (unsigned i = 0; i < messages.value().size(); ++i)
      toWire(messages.value()[i], 0, topic, out[i]);
  });
}

kj::Promise<void> AdminService::changeSubjects(ChangeSubjectsContext context) {
  return guarded("changeSubjects", [this, context]() mutable -> kj::Promise<void> {
    auto params = context.getParams();
    Status permitted = allowed(kActManage, toString(params.getName()));
    if (!permitted.ok()) {
      setStatus(context.getResults().initResult(), permitted);
      return kj::READY_NOW;
    }
    auto add = patternsOf(params.getAdd(), core::kMaxPatternsPerTopic, "patterns to add");
    auto remove = patternsOf(params.getRemove(), core::kMaxPatternsPerTopic, "patterns to remove");
    for (const auto* list : {&add, &remove}) {
      if (!list->ok()) {
        setStatus(context.getResults().initResult(), list->status());
        return kj::READY_NOW;
      }
    }
    return broker_
        .changeSubjects(toString(params.getName()), std::move(add.value()),
                        std::move(remove.value()))
        .then([context](Result<core::TopicView> topic) mutable {
          auto result = context.getResults().initResult();
          if (!topic.ok()) return setStatus(result, topic.status());
          toWire(topic.value(), result.initTopic());
        });
  });
}

kj::Promise<void> AdminService::route(RouteContext context) {
  return guarded("route", [this, context]() mutable {
    auto result = context.getResults().initResult();
    Status valid = broker_.auth().checkValid(identity_, wallClockMs());
    if (!valid.ok()) return setStatus(result, valid);
    auto topics = broker_.route(toString(context.getParams().getSubject()));
    if (!topics.ok()) return setStatus(result, topics.status());
    toWire(topics.value(), result.initTopics(static_cast<unsigned>(topics.value().size())));
  });
}

kj::Promise<void> AdminService::clusterStatus(ClusterStatusContext context) {
  return guarded("clusterStatus", [this, context]() mutable {
    auto result = context.getResults().initResult();
    Status valid = broker_.auth().checkValid(identity_, wallClockMs());
    if (!valid.ok()) return setStatus(result, valid);
    toWire(broker_.cluster(), result.initStatus());
  });
}

kj::Promise<void> AdminService::stats(StatsContext context) {
  // Stats has no error in its answer: an identity without a valid credential gets an
  // exception naming the code (not logged: it is the client's mistake).
  Status valid = broker_.auth().checkValid(identity_, wallClockMs());
  if (!valid.ok()) {
    return kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__,
                         kj::str(valid.toString().c_str()));
  }
  return guarded("stats", [this, context]() mutable {
    auto out = context.getResults().initStats();
    toWire(broker_.stats(), out);
    out.setVersion(SLUICE_VERSION);
  });
}

// Backup ---------------------------------------------------------------------------------------

namespace {

constexpr size_t kBackupChunkBytes = 1 << 20;
// Each backup holds a thread and an LMDB read transaction (which keeps freed pages from reuse).
constexpr int kMaxConcurrentBackups = 2;
int activeBackups = 0;  // Thread: kj.

// One Admin.backup in progress: drains the copy's pipe in chunks and sends each to the sink
// as a `-> stream` call, so a slow client slows the copy down instead of growing memory.
// Member order matters: `input_` (the pipe's read end) is destroyed before `copy_`, whose
// destructor joins the copy thread, which ends once the copy is done or the read end closed.
class BackupStream {
 public:
  BackupStream(std::unique_ptr<core::BackupCopy> copy, kj::Own<kj::AsyncInputStream> input,
               wire::BackupSink::Client sink)
      : copy_(std::move(copy)),
        input_(kj::mv(input)),
        sink_(kj::mv(sink)),
        buffer_(kj::heapArray<kj::byte>(kBackupChunkBytes)),
        started_(std::chrono::steady_clock::now()) {
    ++activeBackups;
  }
  ~BackupStream() { --activeBackups; }

  // Resolves to the bytes sent once the whole copy went out, or to the copy's failure. A
  // failed send (the client disconnected, or its sink failed) is logged here once, as a
  // warning, and rejects with a short exception.
  kj::Promise<Result<uint64_t>> run() {
    return pump()
        .then([this]() { return copy_->finished(); })
        .then(
            [this](Status copied) {
              double seconds =
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - started_)
                      .count();
              if (!copied.ok()) {
                rpcLog()->error("backup failed bytes_sent={} err={}", sent_, copied.message());
                return Result<uint64_t>(copied);
              }
              rpcLog()->info("backup finished bytes={} seconds={:.3f}", sent_, seconds);
              return Result<uint64_t>(sent_);
            },
            [this](kj::Exception&& e) -> Result<uint64_t> {
              rpcLog()->warn("backup aborted bytes_sent={} reason=\"{}\"", sent_,
                             e.getDescription().cStr());
              kj::throwFatalException(kj::Exception(e.getType(), __FILE__, __LINE__,
                                                    kj::str("backup aborted; see broker log")));
            });
  }

 private:
  kj::Promise<void> pump() {
    // tryRead returns less than the minimum only at EOF: the copy thread closed the pipe.
    return input_->tryRead(buffer_.begin(), buffer_.size(), buffer_.size())
        .then([this](size_t n) -> kj::Promise<void> {
          if (n == 0) return kj::READY_NOW;
          auto request = sink_.writeRequest(capnp::MessageSize{n / sizeof(capnp::word) + 8, 0});
          request.setChunk(buffer_.slice(0, n));
          sent_ += n;
          bool atEnd = n < buffer_.size();
          return request.send().then([this, atEnd]() -> kj::Promise<void> {
            if (atEnd) return kj::READY_NOW;
            return pump();
          });
        });
  }

  std::unique_ptr<core::BackupCopy> copy_;
  kj::Own<kj::AsyncInputStream> input_;
  wire::BackupSink::Client sink_;
  kj::Array<kj::byte> buffer_;
  uint64_t sent_ = 0;
  std::chrono::steady_clock::time_point started_;
};

}  // namespace

kj::Promise<void> AdminService::backup(BackupContext context) {
  // The set-up runs now (evalNow), guarded; the stream, which outlives it, logs its own end.
  kj::Own<BackupStream> stream;
  auto setUp = guarded("backup", [this, context, &stream]() mutable -> kj::Promise<void> {
    // The copy holds every topic and every credential's hash: admin only.
    Status permitted = broker_.auth().checkAdmin(identity_, wallClockMs());
    if (!permitted.ok()) {
      setStatus(context.getResults().initResult(), permitted);
      return kj::READY_NOW;
    }
    if (lowLevelIo_ == nullptr) {
      setStatus(context.getResults().initResult(),
                Status(Code::kStorageFailed, "this broker was started without backup support"));
      return kj::READY_NOW;
    }
    if (activeBackups >= kMaxConcurrentBackups) {
      setStatus(context.getResults().initResult(),
                Status(Code::kLimitExceeded,
                       "at most " + std::to_string(kMaxConcurrentBackups) +
                           " backups may run at once; retry when one has finished"));
      return kj::READY_NOW;
    }
    auto copy = broker_.startBackup();
    if (!copy.ok()) {
      rpcLog()->error("backup failed err={}", copy.status().message());
      setStatus(context.getResults().initResult(), copy.status());
      return kj::READY_NOW;
    }
    int readFd = copy.value()->takeReadFd();
    auto input =
        lowLevelIo_->wrapInputFd(readFd, kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP |
                                             kj::LowLevelAsyncIoProvider::ALREADY_CLOEXEC |
                                             kj::LowLevelAsyncIoProvider::ALREADY_NONBLOCK);
    stream = kj::heap<BackupStream>(std::move(copy).value(), kj::mv(input),
                                    context.getParams().getSink());
    return kj::READY_NOW;
  });
  if (stream.get() == nullptr) return setUp;
  auto& running = *stream;
  return running.run()
      .then([context](Result<uint64_t> sent) mutable {
        auto result = context.getResults().initResult();
        if (!sent.ok()) return setStatus(result, sent.status());
        result.setCount(sent.value());
      })
      .attach(kj::mv(stream));
}

}  // namespace sluice::rpc
