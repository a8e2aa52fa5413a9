#include "fake_broker.h"

#include <algorithm>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>

#include "sluice/schemas/rpc.capnp.h"

using sluice::wire::Broker;
using sluice::wire::DeliveryHandler;
using sluice::wire::ErrorCode;

namespace {

struct StoredMessage {
  std::string payload;
  bool hasKey = false;
  std::string key;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string id;
};

struct Subscription {
  Subscription(std::string topic, DeliveryHandler::Client handler)
      : topic(std::move(topic)), handler(kj::mv(handler)) {}
  std::string topic;
  DeliveryHandler::Client handler;
  std::map<uint64_t, uint32_t> pending;  // Offset -> deliveries so far.
};

bool missing(kj::StringPtr topic) {
  return topic.startsWith("missing");
}

void setError(sluice::wire::Error::Builder error, ErrorCode code, kj::StringPtr message) {
  error.setCode(code);
  error.setMessage(message);
}

kj::ArrayPtr<const capnp::byte> bytes(const std::string& text) {
  return kj::arrayPtr(reinterpret_cast<const capnp::byte*>(text.data()), text.size());
}

}  // namespace

struct FakeBroker::State final : public kj::TaskSet::ErrorHandler {
  // Set before the constructor returns; constant afterwards.
  std::thread thread;
  unsigned port = 0;

  // Work for the broker's thread, from the test's (see sync()). Not kj::Executor: its
  // futex-based lock is invisible to ThreadSanitizer, which then reports false races.
  std::mutex inboxMutex;
  std::vector<std::function<void()>> inbox;
  const kj::CrossThreadPromiseFulfiller<void>* doorbell = nullptr;  // Guarded by inboxMutex.
  kj::Own<kj::CrossThreadPromiseFulfiller<void>> doorbellOwner;

  // Everything below belongs to the broker's thread.
  struct Connection {
    kj::Own<kj::AsyncIoStream> stream;
    kj::Own<capnp::TwoPartyVatNetwork> network;
    kj::Own<capnp::RpcSystem<capnp::rpc::twoparty::VatId>> rpc;
  };
  kj::Own<kj::PromiseFulfiller<void>> stop;
  kj::Own<kj::TaskSet> tasks;
  kj::Own<kj::ConnectionReceiver> listener;
  std::vector<kj::Own<Connection>> connections;
  std::map<std::string, std::vector<StoredMessage>> topics;
  std::map<uint64_t, Subscription> subscriptions;
  uint64_t nextSubscription = 1;
  bool holdPublishes = false;
  bool holdSubscribes = false;
  std::vector<kj::Own<kj::PromiseFulfiller<void>>> held;
  size_t publishesInFlight = 0;
  size_t maxPublishesInFlight = 0;
  std::vector<size_t> batchSizes;
  std::vector<std::vector<uint64_t>> acks;
  std::vector<std::pair<std::vector<uint64_t>, uint32_t>> nacks;
  size_t released = 0;
  size_t created = 0;

  // Deliveries to a client that has gone fail; that is expected.
  void taskFailed(kj::Exception&&) override {}

  void run(std::promise<void> ready);
  kj::Promise<void> acceptLoop();
  kj::Promise<void> gate(bool hold) {
    if (!hold) return kj::READY_NOW;
    auto paf = kj::newPromiseAndFulfiller<void>();
    held.push_back(kj::mv(paf.fulfiller));
    return kj::mv(paf.promise);
  }
  void releaseHeld() {
    for (auto& fulfiller : held)
      fulfiller->fulfill();
    held.clear();
  }
  void deliver(Subscription& subscription, const std::vector<uint64_t>& offsets);

  // Runs `func` on the broker's thread and returns its result.
  template <typename Func>
  auto sync(Func func) {
    using T = decltype(func());
    std::promise<T> promise;
    auto future = promise.get_future();
    {
      std::lock_guard<std::mutex> lock(inboxMutex);
      inbox.push_back([&] {
        if constexpr (std::is_void_v<T>) {
          func();
          promise.set_value();
        } else {
          promise.set_value(func());
        }
      });
      if (doorbell != nullptr) {
        doorbell->fulfill();
        doorbell = nullptr;
      }
    }
    return future.get();
  }

  // Thread: broker. Runs the inbox whenever the doorbell rings.
  kj::Promise<void> serveInbox() {
    auto paf = kj::newPromiseAndCrossThreadFulfiller<void>();
    {
      std::lock_guard<std::mutex> lock(inboxMutex);
      doorbell = paf.fulfiller.get();
      if (!inbox.empty()) {
        doorbell->fulfill();
        doorbell = nullptr;
      }
    }
    doorbellOwner = kj::mv(paf.fulfiller);
    return paf.promise.then([this] {
      std::vector<std::function<void()>> work;
      {
        std::lock_guard<std::mutex> lock(inboxMutex);
        work.swap(inbox);
      }
      for (auto& item : work)
        item();
      return serveInbox();
    });
  }
};

namespace {

class SubscriptionService final : public sluice::wire::Subscription::Server {
 public:
  SubscriptionService(FakeBroker::State& state, uint64_t id) : state_(state), id_(id) {}
  ~SubscriptionService() noexcept(false) {
    state_.subscriptions.erase(id_);
    ++state_.released;
  }

 protected:
  kj::Promise<void> ack(AckContext context) override {
    auto offsets = context.getParams().getOffsets();
    std::vector<uint64_t> call;
    for (uint64_t offset : offsets)
      call.push_back(offset);
    state_.acks.push_back(call);
    auto failed = settle(call, false);
    auto list = context.getResults().initFailures(static_cast<unsigned>(failed.size()));
    setFailures(failed, list);
    return kj::READY_NOW;
  }

  kj::Promise<void> nack(NackContext context) override {
    auto offsets = context.getParams().getOffsets();
    std::vector<uint64_t> call;
    for (uint64_t offset : offsets)
      call.push_back(offset);
    state_.nacks.emplace_back(call, context.getParams().getDelayMs());
    auto failed = settle(call, true);
    auto list = context.getResults().initFailures(static_cast<unsigned>(failed.size()));
    setFailures(failed, list);
    return kj::READY_NOW;
  }

 private:
  // Returns the offsets that are not pending; acks drop pending ones, nacks redeliver them.
  std::vector<uint64_t> settle(const std::vector<uint64_t>& offsets, bool nack) {
    auto it = state_.subscriptions.find(id_);
    std::vector<uint64_t> failed;
    std::vector<uint64_t> redeliver;
    for (uint64_t offset : offsets) {
      if (it == state_.subscriptions.end() || it->second.pending.count(offset) == 0) {
        failed.push_back(offset);
      } else if (nack) {
        redeliver.push_back(offset);
      } else {
        it->second.pending.erase(offset);
      }
    }
    if (!redeliver.empty()) state_.deliver(it->second, redeliver);
    return failed;
  }

  static void setFailures(const std::vector<uint64_t>& failed,
                          capnp::List<sluice::wire::OffsetError>::Builder list) {
    for (unsigned i = 0; i < list.size(); ++i) {
      list[i].setOffset(failed[i]);
      setError(list[i].initError(), ErrorCode::NOT_PENDING,
               kj::str("offset ", failed[i], " is not pending"));
    }
  }

  FakeBroker::State& state_;
  uint64_t id_;
};

class AdminService final : public sluice::wire::Admin::Server {
 public:
  explicit AdminService(FakeBroker::State& state) : state_(state) {}

 protected:
  kj::Promise<void> createTopic(CreateTopicContext context) override {
    auto params = context.getParams();
    auto result = context.getResults().initResult();
    if (params.getName() == "exists") {
      setError(result.initError(), ErrorCode::TOPIC_EXISTS, "topic \"exists\" already exists");
      return kj::READY_NOW;
    }
    state_.topics[params.getName().cStr()];
    auto topic = result.initTopic();
    topic.setName(params.getName());
    topic.setSettings(params.getSettings());
    return kj::READY_NOW;
  }

  kj::Promise<void> peek(PeekContext context) override {
    auto params = context.getParams();
    auto& log = state_.topics[params.getTopic().cStr()];
    uint64_t from = std::max<uint64_t>(params.getFromOffset(), 1);
    uint64_t end = std::min<uint64_t>(log.size() + 1, from + params.getCount());
    auto list = context.getResults().initResult().initMessages(
        static_cast<unsigned>(end > from ? end - from : 0));
    for (uint64_t offset = from; offset < end; ++offset) {
      const auto& stored = log[offset - 1];
      auto out = list[static_cast<unsigned>(offset - from)];
      out.setOffset(offset);
      out.setPayload(bytes(stored.payload));
      out.setHasKey(stored.hasKey);
      out.setKey(bytes(stored.key));
      out.setId(stored.id);
    }
    return kj::READY_NOW;
  }

  kj::Promise<void> stats(StatsContext context) override {
    auto stats = context.getResults().initStats();
    stats.setVersion("fake");
    stats.setTopics(state_.topics.size());
    return kj::READY_NOW;
  }

 private:
  FakeBroker::State& state_;
};

class BrokerService final : public Broker::Server {
 public:
  explicit BrokerService(FakeBroker::State& state) : state_(state) {}

 protected:
  kj::Promise<void> publish(PublishContext context) override {
    state_.batchSizes.push_back(context.getParams().getMessages().size());
    state_.maxPublishesInFlight = std::max(state_.maxPublishesInFlight, ++state_.publishesInFlight);
    auto& state = state_;
    return state_.gate(state_.holdPublishes)
        .then([this, context]() mutable { answerPublish(context); })
        .attach(kj::defer([&state] { --state.publishesInFlight; }));
  }

  kj::Promise<void> subscribe(SubscribeContext context) override {
    return state_.gate(state_.holdSubscribes).then([this, context]() mutable {
      auto params = context.getParams();
      auto result = context.getResults().initResult();
      if (missing(params.getTopic())) {
        setError(result.initError(), ErrorCode::TOPIC_NOT_FOUND, "no topic named that");
        return;
      }
      uint64_t id = state_.nextSubscription++;
      ++state_.created;
      auto& subscription =
          state_.subscriptions
              .emplace(id, Subscription(params.getTopic().cStr(), params.getHandler()))
              .first->second;
      result.setSubscription(kj::heap<SubscriptionService>(state_, id));
      result.setConsumerId(1000 + id);
      if (params.getStart().isLatest()) return;
      std::vector<uint64_t> backlog;
      for (uint64_t offset = 1; offset <= state_.topics[subscription.topic].size(); ++offset) {
        backlog.push_back(offset);
      }
      if (!backlog.empty()) state_.deliver(subscription, backlog);
    });
  }

  kj::Promise<void> admin(AdminContext context) override {
    context.getResults().setAdmin(kj::heap<AdminService>(state_));
    return kj::READY_NOW;
  }

 private:
  void answerPublish(PublishContext& context) {
    auto params = context.getParams();
    auto result = context.getResults().initResult();
    if (missing(params.getTopic())) {
      setError(result.initError(), ErrorCode::TOPIC_NOT_FOUND, "no topic named that");
      return;
    }
    std::string topic = params.getTopic().cStr();
    auto& log = state_.topics[topic];
    auto messages = params.getMessages();
    auto acks = result.initAcks(messages.size());
    std::vector<uint64_t> appended;
    for (unsigned i = 0; i < messages.size(); ++i) {
      auto in = messages[i];
      StoredMessage stored;
      stored.payload.assign(reinterpret_cast<const char*>(in.getPayload().begin()),
                            in.getPayload().size());
      stored.hasKey = in.getHasKey();
      stored.key.assign(reinterpret_cast<const char*>(in.getKey().begin()), in.getKey().size());
      for (auto header : in.getHeaders()) {
        stored.headers.emplace_back(header.getKey().cStr(), header.getValue().cStr());
      }
      stored.id = in.getId().cStr();
      log.push_back(std::move(stored));
      acks[i].setOffset(log.size());
      appended.push_back(log.size());
    }
    for (auto& [id, subscription] : state_.subscriptions) {
      if (subscription.topic == topic) state_.deliver(subscription, appended);
    }
  }

  FakeBroker::State& state_;
};

}  // namespace

void FakeBroker::State::deliver(Subscription& subscription, const std::vector<uint64_t>& offsets) {
  auto request = subscription.handler.deliverRequest();
  auto list = request.initMessages(static_cast<unsigned>(offsets.size()));
  auto& log = topics[subscription.topic];
  for (unsigned i = 0; i < offsets.size(); ++i) {
    const auto& stored = log[offsets[i] - 1];
    auto out = list[i];
    out.setOffset(offsets[i]);
    out.setTimestampMs(1700000000000 + static_cast<int64_t>(offsets[i]));
    out.setPayload(bytes(stored.payload));
    out.setHasKey(stored.hasKey);
    out.setKey(bytes(stored.key));
    auto headers = out.initHeaders(static_cast<unsigned>(stored.headers.size()));
    for (unsigned h = 0; h < stored.headers.size(); ++h) {
      headers[h].setKey(stored.headers[h].first);
      headers[h].setValue(stored.headers[h].second);
    }
    out.setId(stored.id);
    out.setDeliveries(++subscription.pending[offsets[i]]);
  }
  tasks->add(request.send());
}

kj::Promise<void> FakeBroker::State::acceptLoop() {
  return listener->accept().then([this](kj::Own<kj::AsyncIoStream> stream) {
    auto connection = kj::heap<Connection>();
    connection->stream = kj::mv(stream);
    connection->network = kj::heap<capnp::TwoPartyVatNetwork>(*connection->stream,
                                                              capnp::rpc::twoparty::Side::SERVER);
    connection->rpc = kj::heap<capnp::RpcSystem<capnp::rpc::twoparty::VatId>>(
        capnp::makeRpcServer(*connection->network, kj::heap<BrokerService>(*this)));
    connections.push_back(kj::mv(connection));
    return acceptLoop();
  });
}

void FakeBroker::State::run(std::promise<void> ready) {
  auto io = kj::setupAsyncIo();
  tasks = kj::heap<kj::TaskSet>(*this);
  listener = io.provider->getNetwork().parseAddress("127.0.0.1", 0).wait(io.waitScope)->listen();
  port = listener->getPort();
  auto stopped = kj::newPromiseAndFulfiller<void>();
  stop = kj::mv(stopped.fulfiller);
  tasks->add(acceptLoop());
  tasks->add(serveInbox());
  ready.set_value();
  stopped.promise.wait(io.waitScope);
  connections.clear();
  held.clear();
  tasks = nullptr;
  subscriptions.clear();
  listener = nullptr;
  stop = nullptr;
  {
    std::lock_guard<std::mutex> lock(inboxMutex);
    doorbell = nullptr;
  }
  doorbellOwner = nullptr;
}

FakeBroker::FakeBroker() : state_(std::make_unique<State>()) {
  std::promise<void> ready;
  auto started = ready.get_future();
  state_->thread = std::thread(
      [state = state_.get(), ready = std::move(ready)]() mutable { state->run(std::move(ready)); });
  started.get();
}

FakeBroker::~FakeBroker() {
  state_->sync([state = state_.get()] { state->stop->fulfill(); });
  state_->thread.join();
}

std::string FakeBroker::address() const {
  return "127.0.0.1:" + std::to_string(state_->port);
}

void FakeBroker::holdPublishes(bool hold) {
  state_->sync([state = state_.get(), hold] {
    state->holdPublishes = hold;
    if (!hold) state->releaseHeld();
  });
}

void FakeBroker::holdSubscribes(bool hold) {
  state_->sync([state = state_.get(), hold] {
    state->holdSubscribes = hold;
    if (!hold) state->releaseHeld();
  });
}

void FakeBroker::disconnectAll() {
  state_->sync([state = state_.get()] { state->connections.clear(); });
}

void FakeBroker::closeSubscriptions(const std::string& message) {
  state_->sync([state = state_.get(), message] {
    for (auto& [id, subscription] : state->subscriptions) {
      auto request = subscription.handler.closedRequest();
      setError(request.initError(), ErrorCode::TOPIC_NOT_FOUND, message);
      state->tasks->add(request.send().ignoreResult());
    }
  });
}

std::vector<size_t> FakeBroker::publishBatchSizes() const {
  return state_->sync([state = state_.get()] { return state->batchSizes; });
}

size_t FakeBroker::maxPublishesInFlight() const {
  return state_->sync([state = state_.get()] { return state->maxPublishesInFlight; });
}

std::vector<std::vector<uint64_t>> FakeBroker::ackCalls() const {
  return state_->sync([state = state_.get()] { return state->acks; });
}

std::vector<std::pair<std::vector<uint64_t>, uint32_t>> FakeBroker::nackCalls() const {
  return state_->sync([state = state_.get()] { return state->nacks; });
}

size_t FakeBroker::subscriptionsReleased() const {
  return state_->sync([state = state_.get()] { return state->released; });
}

size_t FakeBroker::subscriptionsCreated() const {
  return state_->sync([state = state_.get()] { return state->created; });
}
