// libFuzzer target: the broker's RPC handlers, driven in-process with arbitrary bytes.
//
// One broker lives for many inputs: a real core::Broker over an LMDB store (in /dev/shm when it
// exists, commits without fsync) behind the real rpc::RpcServer listening on 127.0.0.1. Each
// input is what one client sends on one connection: the target connects, writes the bytes,
// closes its sending side, and reads until the broker closes the connection. The seeds are
// recorded client sessions (bootstrap, publish, subscribe, ack, admin calls; see
// writeSeeds()), which libFuzzer mutates into truncated, oversized and nonsensical frames.
//
// Oracles: no crash, sanitizer report or hang (-timeout); the broker stays able to serve;
// and every 500 inputs the store passes Env::check(), the invariants `sluiced --check` verifies.
//
// SLUICE_FUZZ_WRITE_SEEDS=DIR: write the seed corpus to DIR and exit (scripts/fuzz.sh --seeds).
// SLUICE_FUZZ_LOG=1 (or =debug): keep the broker's log (a warning per bad frame) on stderr.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <capnp/message.h>
#include <capnp/rpc-twoparty.h>
#include <capnp/serialize-async.h>
#include <capnp/serialize.h>
#include <kj/async-io.h>

#include "core/broker.h"
#include "fuzz_support.h"
#include "fuzz_world.h"
#include "rpc/server.h"

namespace {

using namespace sluice;

constexpr uint64_t kResetEvery = 20000;  // Inputs per broker; then a fresh store.
constexpr uint64_t kCheckEvery = 500;

// A broker with its store, writer and RPC server, as sluiced wires them.
class World {
 public:
  explicit World(kj::AsyncIoContext& io) : base_(io, fuzz::autoCreatingOptions()) {
    rpc::ServerOptions serverOptions;
    serverOptions.timer = &io.provider->getTimer();
    server_ = std::make_unique<rpc::RpcServer>(base_.broker(), base_.metrics(),
                                               io.provider->getNetwork(), serverOptions);
    port_ = server_->listen("127.0.0.1:0").wait(io.waitScope);
  }

  ~World() {
    settle();
    server_->stopAccepting();
    base_.broker().shutdown();
    server_->disconnectAll();
    base_.turn(5 * kj::MILLISECONDS);
    server_.reset();
  }  // base_ stops the writer and checks the store.

  uint port() const { return port_; }
  rpc::RpcServer& server() { return *server_; }

  // Until the server has dropped every connection and no call waits on a commit.
  void settle() {
    base_.settle([this]() { return server_->connectionCount() == 0; });
  }
  void checkStore() { base_.checkStore(); }

 private:
  fuzz::BrokerWorld base_;
  std::unique_ptr<rpc::RpcServer> server_;
  uint port_ = 0;
};

using Inputs = fuzz::Inputs<World, kResetEvery>;

// Sends `bytes` on a fresh connection, closes the sending side, reads until the broker closes.
void runOne(kj::AsyncIoContext& io, World& world, const uint8_t* data, size_t size) {
  fuzz::Exchange exchange(io, world.port(), kj::arrayPtr(data, size));
  if (!exchange.wait(5 * kj::SECONDS)) {
    // The broker kept a connection open after its client's end of stream: report it.
    std::fprintf(stderr, "the broker did not close the connection within 5 s\n");
    std::abort();
  }
}

// Seeds: recorded client sessions --------------------------------------------------------------

// Records every message the client writes, as flat frames, while passing it on.
class RecordingMessageStream final : public capnp::MessageStream {
 public:
  RecordingMessageStream(kj::AsyncIoStream& stream, std::string& record)
      : inner_(stream), record_(record) {}

  kj::Promise<kj::Maybe<capnp::MessageReaderAndFds>> tryReadMessage(
      kj::ArrayPtr<kj::AutoCloseFd> fdSpace, capnp::ReaderOptions options,
      kj::ArrayPtr<capnp::word> scratchSpace) override {
    return inner_.tryReadMessage(fdSpace, options, scratchSpace);
  }
  kj::Promise<void> writeMessage(
      kj::ArrayPtr<const int> fds,
      kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments) override {
    auto flat = capnp::messageToFlatArray(segments);
    record_.append(reinterpret_cast<const char*>(flat.begin()), flat.asBytes().size());
    return inner_.writeMessage(fds, segments);
  }
  kj::Promise<void> writeMessages(
      kj::ArrayPtr<kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>>> messages) override {
    for (auto& segments : messages) {
      auto flat = capnp::messageToFlatArray(segments);
      record_.append(reinterpret_cast<const char*>(flat.begin()), flat.asBytes().size());
    }
    return inner_.writeMessages(messages);
  }
  kj::Maybe<int> getSendBufferSize() override { return inner_.getSendBufferSize(); }
  kj::Promise<void> end() override { return inner_.end(); }

 private:
  capnp::AsyncIoMessageStream inner_;
  std::string& record_;
};

class AckingHandler final : public wire::DeliveryHandler::Server {
 public:
  explicit AckingHandler(std::vector<uint64_t>& offsets) : offsets_(offsets) {}

 protected:
  kj::Promise<void> deliver(DeliverContext context) override {
    for (auto message : context.getParams().getMessages())
      offsets_.push_back(message.getOffset());
    return kj::READY_NOW;
  }
  kj::Promise<void> closed(ClosedContext) override { return kj::READY_NOW; }

 private:
  std::vector<uint64_t>& offsets_;
};

class NullSink final : public wire::BackupSink::Server {
 protected:
  kj::Promise<void> write(WriteContext) override { return kj::READY_NOW; }
};

kj::ArrayPtr<const capnp::byte> bytes(const std::string& text) {
  return kj::arrayPtr(reinterpret_cast<const capnp::byte*>(text.data()), text.size());
}

// Runs `session` as a recorded client and writes what it sent to DIR/NAME.
template <typename Session>
void record(kj::AsyncIoContext& io, World& world, const std::string& dir, const std::string& name,
            Session&& session) {
  std::string sent;
  {
    auto address =
        io.provider->getNetwork().parseAddress("127.0.0.1", world.port()).wait(io.waitScope);
    auto stream = address->connect().wait(io.waitScope);
    RecordingMessageStream messages(*stream, sent);
    capnp::TwoPartyVatNetwork network(messages, capnp::rpc::twoparty::Side::CLIENT);
    auto rpc = capnp::makeRpcClient(network);
    capnp::MallocMessageBuilder vatId(8);
    vatId.initRoot<capnp::rpc::twoparty::VatId>().setSide(capnp::rpc::twoparty::Side::SERVER);
    auto broker =
        rpc.bootstrap(vatId.getRoot<capnp::rpc::twoparty::VatId>()).castAs<wire::Broker>();
    session(broker, io.waitScope);
    io.provider->getTimer().afterDelay(20 * kj::MILLISECONDS).wait(io.waitScope);
  }
  world.settle();
  fuzz::writeFile(dir, name, sent);
}

void publish(wire::Broker::Client& broker, kj::WaitScope& ws, const std::string& topic, int count,
             bool withExtras) {
  auto request = broker.publishRequest();
  request.setTopic(topic);
  auto list = request.initMessages(static_cast<unsigned>(count));
  for (int i = 0; i < count; ++i) {
    list[i].setPayload(bytes("payload " + std::to_string(i)));
    if (withExtras) {
      list[i].setKey(bytes("k" + std::to_string(i % 3)));
      list[i].setHasKey(true);
      auto headers = list[i].initHeaders(2);
      headers[0].setKey("trace");
      headers[0].setValue("abc");
      headers[1].setKey("n");
      headers[1].setValue(std::to_string(i));
      list[i].setId("id-" + std::to_string(i));
    }
  }
  request.send().wait(ws);
}

void writeSeeds(kj::AsyncIoContext& io, const std::string& dir) {
  std::filesystem::create_directories(dir);
  World world(io);
  using Broker = wire::Broker::Client;
  record(io, world, dir, "bootstrap", [](Broker&, kj::WaitScope&) {});
  record(io, world, dir, "publish", [](Broker& broker, kj::WaitScope& ws) {
    publish(broker, ws, "orders", 3, true);
    publish(broker, ws, "orders", 3, true);  // Duplicates by id.
    publish(broker, ws, "orders.eu", 1, false);
  });
  record(io, world, dir, "admin_topics", [](Broker& broker, kj::WaitScope& ws) {
    auto admin = broker.adminRequest().send().getAdmin();
    auto create = admin.createTopicRequest();
    create.setName("jobs");
    auto settings = create.initSettings();
    settings.setMaxAgeMs(60000);
    settings.setMaxMessages(100);
    settings.setWorkQueue(true);
    settings.setMaxDeliveries(3);
    settings.setDeadLetterTopic("jobs.dead");
    settings.setDedupWindowMs(1000);
    create.send().wait(ws);
    admin.listTopicsRequest().send().wait(ws);
    auto describe = admin.describeTopicRequest();
    describe.setName("jobs");
    describe.send().wait(ws);
    admin.statsRequest().send().wait(ws);
    auto peek = admin.peekRequest();
    peek.setTopic("orders");
    peek.setFromOffset(1);
    peek.setCount(10);
    peek.send().wait(ws);
  });
  record(io, world, dir, "subscribe_ack_nack", [](Broker& broker, kj::WaitScope& ws) {
    publish(broker, ws, "orders", 5, false);
    std::vector<uint64_t> offsets;
    auto subscribe = broker.subscribeRequest();
    subscribe.setTopic("orders");
    subscribe.setGroup("workers");
    subscribe.initStart().setEarliest();
    subscribe.setPrefetch(4);
    subscribe.setAckTimeoutMs(1000);
    subscribe.setHandler(kj::heap<AckingHandler>(offsets));
    auto subscribed = subscribe.send().wait(ws);  // No pipelining through a union.
    auto subscription = subscribed.getResult().getSubscription();
    auto ack = subscription.ackRequest();
    auto list = ack.initOffsets(2);
    list.set(0, 1);
    list.set(1, 2);
    ack.send().wait(ws);
    auto nack = subscription.nackRequest();
    nack.initOffsets(1).set(0, 3);
    nack.setDelayMs(10);
    nack.send().wait(ws);
  });
  record(io, world, dir, "fetch_in_progress", [](Broker& broker, kj::WaitScope& ws) {
    publish(broker, ws, "orders", 3, false);
    std::vector<uint64_t> offsets;
    auto subscribe = broker.subscribeRequest();
    subscribe.setTopic("orders");
    subscribe.setGroup("pullers");
    subscribe.initStart().setEarliest();
    subscribe.setPrefetch(0);
    subscribe.setAckTimeoutMs(1000);
    subscribe.setHandler(kj::heap<AckingHandler>(offsets));
    auto subscribed = subscribe.send().wait(ws);
    auto subscription = subscribed.getResult().getSubscription();
    auto fetch = subscription.fetchRequest();
    fetch.setMax(2);
    fetch.setTimeoutMs(10);
    auto fetched = fetch.send().wait(ws);
    auto renew = subscription.inProgressRequest();
    renew.initOffsets(1).set(0, 1);
    if (fetched.getResult().isMessages() && fetched.getResult().getMessages().size() > 0) {
      renew.initDeliveryIds(1).set(0, fetched.getResult().getMessages()[0].getDeliveryId());
    }
    renew.setExtendMs(500);
    renew.send().wait(ws);
    // A fetch left waiting: the client drops it (a Finish); the broker's call waits on until
    // the connection ends.
    auto waiting = subscription.fetchRequest();
    waiting.setMax(5);
    waiting.setTimeoutMs(60000);
    auto dropped = waiting.send();
  });
  record(io, world, dir, "groups", [](Broker& broker, kj::WaitScope& ws) {
    auto admin = broker.adminRequest().send().getAdmin();
    auto create = admin.createGroupRequest();
    create.setTopic("orders");
    create.setGroup("audit");
    create.initStart().setOffset(2);
    create.send().wait(ws);
    auto list = admin.listGroupsRequest();
    list.setTopic("orders");
    list.send().wait(ws);
    auto describe = admin.describeGroupRequest();
    describe.setTopic("orders");
    describe.setGroup("audit");
    describe.send().wait(ws);
    auto reset = admin.resetGroupRequest();
    reset.setTopic("orders");
    reset.setGroup("audit");
    reset.initTo().setTimestampMs(1);
    reset.send().wait(ws);
    auto remove = admin.deleteGroupRequest();
    remove.setTopic("orders");
    remove.setGroup("audit");
    remove.send().wait(ws);
  });
  record(io, world, dir, "purge_delete", [](Broker& broker, kj::WaitScope& ws) {
    publish(broker, ws, "scratch", 4, false);
    auto admin = broker.adminRequest().send().getAdmin();
    auto purge = admin.purgeTopicRequest();
    purge.setName("scratch");
    purge.send().wait(ws);
    auto remove = admin.deleteTopicRequest();
    remove.setName("scratch");
    remove.send().wait(ws);
  });
  record(io, world, dir, "errors", [](Broker& broker, kj::WaitScope& ws) {
    publish(broker, ws, "bad..name", 1, false);
    auto request = broker.publishRequest();
    request.setTopic("orders");
    request.initMessages(0);
    request.send().wait(ws);
    auto subscribe = broker.subscribeRequest();
    subscribe.setTopic("missing");
    subscribe.setGroup("g");
    subscribe.setPrefetch(0);
    std::vector<uint64_t> offsets;
    subscribe.setHandler(kj::heap<AckingHandler>(offsets));
    subscribe.send().wait(ws);
  });
  record(io, world, dir, "backup", [](Broker& broker, kj::WaitScope& ws) {
    auto admin = broker.adminRequest().send().getAdmin();
    auto backup = admin.backupRequest();
    backup.setSink(kj::heap<NullSink>());
    backup.send().wait(ws);
  });
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  return Inputs::initialize(writeSeeds);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  World& world = Inputs::next();
  runOne(Inputs::io(), world, data, size);
  world.settle();
  if (Inputs::every(kCheckEvery)) world.checkStore();
  return 0;
}
