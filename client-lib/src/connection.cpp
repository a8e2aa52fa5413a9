#include "connection.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <optional>
#include <sstream>
#include <utility>

#include <capnp/message.h>
#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>
#include <kj/compat/tls.h>
#include <kj/debug.h>

#include "net/host_port.h"
#include "net/message_stream.h"
#include "subscription_state.h"

namespace sluice::detail {

std::optional<std::string> checkAddress(std::string_view hostPort);

namespace {

// The client trusts its broker, so incoming messages (a peek of 1,000 large messages, a big
// delivery batch) are not held to capnp's 64 MiB default.
capnp::ReaderOptions receiveOptions() {
  capnp::ReaderOptions options;
  options.traversalLimitInWords = uint64_t{1} << 32;  // 32 GiB
  return options;
}

std::string quoted(std::string_view text) {
  return "\"" + std::string(text) + "\"";
}

// Everything an RPC connection needs, destroyed in reverse order on the I/O thread.
struct Session {
  kj::Own<kj::TlsContext> tls;  // First: the stream it wraps must go before it.
  kj::Own<kj::AsyncIoStream> stream;
  kj::Own<net::BufferedMessageStream> messages;
  kj::Own<capnp::TwoPartyVatNetwork> network;
  kj::Own<capnp::RpcSystem<capnp::rpc::twoparty::VatId>> rpc;
};

Result<std::string> readTlsFile(const char* what, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Error{ErrorCode::kInvalidArgument, std::string("cannot read the TLS ") + what + " " +
                                                  quoted(path) + ": " + std::strerror(errno)};
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Each PEM certificate of a bundle on its own, so that every one of them is trusted.
std::vector<std::string> splitPem(const std::string& bundle) {
  static const std::string kBegin = "-----BEGIN CERTIFICATE-----";
  static const std::string kEnd = "-----END CERTIFICATE-----";
  std::vector<std::string> out;
  for (size_t at = bundle.find(kBegin); at != std::string::npos; at = bundle.find(kBegin, at)) {
    size_t end = bundle.find(kEnd, at);
    if (end == std::string::npos) break;
    out.push_back(bundle.substr(at, end + kEnd.size() - at) + "\n");
    at = end + kEnd.size();
  }
  return out;
}

// Where the handshake got to, for the message of one that fails or times out.
enum class Stage { kConnecting, kBroker, kAuthenticating };

// What a broker's Broker.hello said (a broker that predates hello: serves, no cluster).
struct Hello {
  std::string clusterId, brokerId, leader, why;
  bool serves = true;
  std::string leaderAddress;           // Where the leader serves this client (plaintext or TLS).
  std::vector<std::string> addresses;  // The cluster's live brokers, the same way.
};

Hello helloOf(wire::Hello::Reader hello, bool tls) {
  Hello out;
  out.clusterId = toStd(hello.getClusterId());
  out.brokerId = toStd(hello.getBrokerId());
  out.leader = toStd(hello.getLeader());
  out.why = toStd(hello.getWhy());
  out.serves = hello.getServes();
  out.leaderAddress = toStd(tls ? hello.getLeaderTls() : hello.getLeaderRpc());
  for (auto broker : hello.getBrokers()) {
    std::string address = toStd(tls ? broker.getTls() : broker.getRpc());
    if (!address.empty() && !checkAddress(address)) out.addresses.push_back(std::move(address));
  }
  if (!out.leaderAddress.empty() && checkAddress(out.leaderAddress)) out.leaderAddress.clear();
  return out;
}

// Thread: kj. The Broker capability everything on this connection goes through: the bootstrap
// one, or, with a token, the restricted one that `authenticate` answers. Every connection is
// set up through here, so none skips authentication. A refusal sets `refused` (the broker's
// error: unauthenticated, its message never repeating the secret) and answers nothing.
kj::Promise<kj::Maybe<wire::Broker::Client>> authenticate(wire::Broker::Client bootstrap,
                                                          const std::string& token, Stage& stage,
                                                          std::optional<Error>& refused) {
  if (token.empty()) return kj::Maybe<wire::Broker::Client>(kj::mv(bootstrap));
  stage = Stage::kAuthenticating;
  auto request = bootstrap.authenticateRequest();
  request.setSecret(asText(token));
  return request.send().then(
      [&stage, &refused](capnp::Response<wire::Broker::AuthenticateResults>&& answer)
          -> kj::Maybe<wire::Broker::Client> {
        stage = Stage::kBroker;
        auto result = answer.getResult();
        if (result.isError()) {
          refused = fromWire(result.getError());
          return nullptr;
        }
        return result.getBroker();
      },
      [&refused](kj::Exception&& e) -> kj::Maybe<wire::Broker::Client> {
        if (e.getType() != kj::Exception::Type::UNIMPLEMENTED) kj::throwFatalException(kj::mv(e));
        refused = Error{ErrorCode::kConnectFailed,
                        "a token was given, but the broker does not support authentication (it "
                        "predates it): connect without one"};
        return nullptr;
      });
}

}  // namespace

struct Connection::Tls {
  kj::Array<kj::TlsCertificate> trusted;  // Empty: the system's trusted CAs.
  kj::Maybe<kj::TlsKeypair> keypair;
  std::string serverName;  // Empty: each address's host.
};

Connection::Connection(Options options) : options_(options) {}
Connection::~Connection() = default;

std::optional<std::string> checkAddress(std::string_view hostPort) {
  std::string problem;
  auto address = net::parseHostPort(hostPort, &problem);
  if (!address) return problem;
  if (address->port == 0) {
    return "an address to connect to must be host:port with a port from 1 to 65535, got " +
           quoted(hostPort);
  }
  return std::nullopt;
}

Result<std::shared_ptr<Connection>> Connection::open(std::string_view hostPorts,
                                                     const Options& options) {
  std::vector<std::string> addresses;
  for (std::string_view one : net::splitList(hostPorts)) {
    if (auto problem = checkAddress(one)) return Error{ErrorCode::kInvalidArgument, *problem};
    addresses.emplace_back(one);
  }
  std::shared_ptr<Connection> handle(new Connection(options), &Connection::release);
  const TlsOptions& tls = options.tls;
  if (!tls.enabled) {
    if (!tls.caFile.empty() || !tls.certFile.empty() || !tls.keyFile.empty() ||
        !tls.serverName.empty()) {
      return Error{ErrorCode::kInvalidArgument,
                   "TLS options are set but tls.enabled is false: set it to connect with TLS"};
    }
  } else {
    if (tls.certFile.empty() != tls.keyFile.empty()) {
      return Error{ErrorCode::kInvalidArgument,
                   "a TLS client certificate needs its key and a key its certificate: give "
                   "both certFile and keyFile, or neither"};
    }
    auto material = std::make_unique<Tls>();
    try {
      if (!tls.caFile.empty()) {
        auto bundle = readTlsFile("CA file", tls.caFile);
        if (!bundle.ok()) return bundle.error();
        std::vector<std::string> pems = splitPem(bundle.value());
        if (pems.empty()) {
          return Error{ErrorCode::kInvalidArgument,
                       "the TLS CA file " + quoted(tls.caFile) + " holds no PEM certificate"};
        }
        auto trusted = kj::heapArrayBuilder<kj::TlsCertificate>(pems.size());
        for (const std::string& pem : pems)
          trusted.add(kj::TlsCertificate(kj::StringPtr(pem.c_str())));
        material->trusted = trusted.finish();
      }
      if (!tls.certFile.empty()) {
        auto cert = readTlsFile("certificate", tls.certFile);
        if (!cert.ok()) return cert.error();
        auto key = readTlsFile("key", tls.keyFile);
        if (!key.ok()) return key.error();
        material->keypair = kj::TlsKeypair{kj::TlsPrivateKey(kj::StringPtr(key.value().c_str())),
                                           kj::TlsCertificate(kj::StringPtr(cert.value().c_str()))};
      }
    } catch (const kj::Exception& e) {
      return Error{ErrorCode::kInvalidArgument,
                   std::string("cannot use the TLS files: ") + e.getDescription().cStr()};
    }
    material->serverName = tls.serverName;
    handle->tls_ = std::move(material);
  }
  std::promise<Result<void>> ready;
  auto outcome = ready.get_future();
  {
    std::lock_guard<std::mutex> lock(handle->joinMu_);
    handle->thread_ =
        std::thread(&Connection::run, handle.get(), std::move(addresses), std::move(ready));
  }
  // The I/O thread enforces connectTimeout with its own timer, so this wait is bounded.
  Result<void> connected = outcome.get();
  if (!connected.ok()) return connected.error();  // `handle` joins the finished thread.
  return handle;
}

void Connection::release(Connection* connection) {
  if (connection->onIoThread()) {
    {
      std::lock_guard<std::mutex> lock(connection->mu_);
      connection->deleteOnExit_ = true;
    }
    connection->requestStop();
    return;
  }
  connection->close();
  delete connection;
}

bool Connection::post(Command command) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopRequested_) {
      queue_.push_back(std::move(command));
      if (!rung_ && doorbell_ != nullptr) {
        rung_ = true;
        doorbell_->fulfill();
      }
      return true;
    }
  }
  // Refused: `command` is destroyed here, outside the lock, since destroying it may run
  // callbacks that post again.
  return false;
}

std::optional<Error> Connection::checkMayBlock(const char* what) const {
  if (!onIoThread()) return std::nullopt;
  return Error{ErrorCode::kInvalidArgument,
               std::string(what) +
                   " blocks, and was called on the client's I/O thread (from a publishAsync "
                   "callback), where it would wait forever; use the asynchronous form there"};
}

void Connection::requestStop() {
  std::lock_guard<std::mutex> lock(mu_);
  stopRequested_ = true;
  if (!rung_ && doorbell_ != nullptr) {
    rung_ = true;
    doorbell_->fulfill();
  }
  if (stopper_ != nullptr) {
    stopper_->fulfill();
    stopper_ = nullptr;
  }
}

void Connection::close() {
  requestStop();
  if (onIoThread()) return;  // The loop ends once this command returns.
  std::lock_guard<std::mutex> lock(joinMu_);
  if (thread_.joinable()) thread_.join();
}

kj::Promise<void> Connection::armDoorbellLocked() {
  auto paf = kj::newPromiseAndCrossThreadFulfiller<void>();
  doorbell_ = paf.fulfiller.get();
  rung_ = false;
  if (!queue_.empty()) {  // Queued while no session served them (reconnecting).
    rung_ = true;
    paf.fulfiller->fulfill();
  }
  // The previous fulfiller has fired (we are running because it did) and nobody else points
  // to it any more, so it can go.
  doorbellOwner_ = kj::mv(paf.fulfiller);
  return kj::mv(paf.promise);
}

kj::Promise<void> Connection::serve(IoState& state, kj::Promise<void> doorbell) {
  return doorbell.then([this, &state]() -> kj::Promise<void> {
    std::vector<Command> batch;
    kj::Promise<void> next = nullptr;
    bool stop;
    {
      std::lock_guard<std::mutex> lock(mu_);
      batch.swap(queue_);
      stop = stopRequested_;
      if (!stop) next = armDoorbellLocked();
    }
    for (auto& command : batch) {
      try {
        command(state);
      } catch (const kj::Exception& e) {
        std::fprintf(stderr, "libsluice: command failed: %s\n", e.getDescription().cStr());
      } catch (const std::exception& e) {
        std::fprintf(stderr, "libsluice: command failed: %s\n", e.what());
      }
    }
    batch.clear();
    if (stop) return kj::READY_NOW;
    return serve(state, kj::mv(next));
  });
}

void Connection::refuseWork() {
  alive_.store(false, std::memory_order_release);
  std::vector<Command> orphans;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopRequested_ = true;
    doorbell_ = nullptr;
    stopper_ = nullptr;
    orphans.swap(queue_);
  }
  stopperOwner_ = nullptr;
  doorbellOwner_ = nullptr;
  orphans.clear();  // Their Completions answer kDisconnected.
}

void Connection::run(std::vector<std::string> addresses, std::promise<Result<void>> ready) {
  ioThreadId_ = std::this_thread::get_id();
  bool announced = false;
  try {
    kj::AsyncIoContext io = kj::setupAsyncIo();
    // Whatever happens below, KJ objects must go before the event loop they belong to.
    KJ_DEFER(refuseWork());
    kj::ForkedPromise<void> stopped = nullptr;
    {
      auto paf = kj::newPromiseAndCrossThreadFulfiller<void>();
      std::lock_guard<std::mutex> lock(mu_);
      stopper_ = paf.fulfiller.get();
      stopperOwner_ = kj::mv(paf.fulfiller);
      stopped = paf.promise.fork();
    }
    Session session;
    auto endSession = [&session] {
      session.rpc = nullptr;
      session.network = nullptr;
      session.messages = nullptr;
      session.stream = nullptr;
      session.tls = nullptr;
    };
    std::optional<Error> refused;  // The broker refused options_.token.
    const auto timeout = saturatedTimeout(options_.connectTimeout);

    // Connects to one broker, asks who it is (`hello`), authenticates when there is a token,
    // then asks for the Admin capability: its answer proves a Sluice broker is there. Null with
    // `failure` (or `refused`) set when it did not work out; a cluster member that does not
    // serve clients says so in `hello` (serves false), with where its leader is.
    auto attempt = [&](const std::string& address, std::string& failure,
                       Hello& hello) -> kj::Own<IoState> {
      endSession();
      hello = Hello();
      Stage stage = Stage::kConnecting;
      auto handshake =
          io.provider->getNetwork()
              .parseAddress(address)
              .then([](kj::Own<kj::NetworkAddress> resolved) {
                auto connecting = resolved->connect();
                return connecting.attach(kj::mv(resolved));
              })
              .then([&](kj::Own<kj::AsyncIoStream> stream)
                        -> kj::Promise<kj::Own<kj::AsyncIoStream>> {
                if (!tls_) return kj::mv(stream);
                kj::TlsContext::Options tlsOptions;
                tlsOptions.minVersion = kj::TlsVersion::TLS_1_2;
                if (tls_->trusted.size() > 0) {
                  tlsOptions.useSystemTrustStore = false;
                  tlsOptions.trustedCertificates = tls_->trusted;
                }
                KJ_IF_MAYBE (keypair, tls_->keypair) {
                  tlsOptions.defaultKeypair = *keypair;
                }
                std::string serverName = tls_->serverName;
                if (serverName.empty()) {
                  std::string unused;  // open() checked the address.
                  serverName = net::parseHostPort(address, &unused)->host;
                }
                session.tls = kj::heap<kj::TlsContext>(kj::mv(tlsOptions));
                return session.tls->wrapClient(kj::mv(stream), serverName)
                    .catch_([](kj::Exception&& e) -> kj::Promise<kj::Own<kj::AsyncIoStream>> {
                      return kj::Exception(e.getType(), __FILE__, __LINE__,
                                           kj::str("TLS handshake failed: ", e.getDescription()));
                    });
              })
              .then([&](kj::Own<kj::AsyncIoStream> stream) {
                stage = Stage::kBroker;
                session.stream = kj::mv(stream);
                session.messages = kj::heap<net::BufferedMessageStream>(*session.stream);
                session.network = kj::heap<capnp::TwoPartyVatNetwork>(
                    *session.messages, capnp::rpc::twoparty::Side::CLIENT, receiveOptions());
                session.rpc = kj::heap<capnp::RpcSystem<capnp::rpc::twoparty::VatId>>(
                    capnp::makeRpcClient(*session.network));
                capnp::MallocMessageBuilder vatIdMessage(8);
                auto vatId = vatIdMessage.initRoot<capnp::rpc::twoparty::VatId>();
                vatId.setSide(capnp::rpc::twoparty::Side::SERVER);
                auto bootstrap = session.rpc->bootstrap(vatId).castAs<wire::Broker>();
                auto asked = bootstrap.helloRequest().send().then(
                    [&](capnp::Response<wire::Broker::HelloResults>&& answer) {
                      hello = helloOf(answer.getHello(), tls_ != nullptr);
                    },
                    [](kj::Exception&& e) {
                      // A broker that predates hello serves every call itself.
                      if (e.getType() != kj::Exception::Type::UNIMPLEMENTED)
                        kj::throwFatalException(kj::mv(e));
                    });
                return asked
                    .then([&, bootstrap = kj::mv(bootstrap)]() mutable
                          -> kj::Promise<kj::Maybe<wire::Broker::Client>> {
                      if (!hello.serves) return kj::Maybe<wire::Broker::Client>(nullptr);
                      return authenticate(kj::mv(bootstrap), options_.token, stage, refused);
                    })
                    .then([&io](kj::Maybe<wire::Broker::Client> chosen)
                              -> kj::Promise<kj::Maybe<kj::Own<IoState>>> {
                      KJ_IF_MAYBE (found, chosen) {
                        wire::Broker::Client broker = kj::mv(*found);
                        return broker.adminRequest().send().then(
                            [&io,
                             broker](capnp::Response<wire::Broker::AdminResults>&& answer) mutable
                            -> kj::Maybe<kj::Own<IoState>> {
                              return kj::heap<IoState>(io.provider->getTimer(), kj::mv(broker),
                                                       answer.getAdmin());
                            });
                      }
                      return kj::Maybe<kj::Own<IoState>>(nullptr);  // Refused.
                    });
              })
              .exclusiveJoin(io.provider->getTimer()
                                 .afterDelay(timeout.count() * kj::MILLISECONDS)
                                 .then([]() -> kj::Maybe<kj::Own<IoState>> { return nullptr; }))
              .exclusiveJoin(stopped.addBranch().then(
                  []() -> kj::Maybe<kj::Own<IoState>> { return nullptr; }));
      try {
        KJ_IF_MAYBE (established, handshake.wait(io.waitScope)) {
          return kj::mv(*established);
        }
        if (!hello.serves) {
          failure = "broker " + hello.brokerId + " at " + address + " does not serve clients (" +
                    hello.why + ")";
          if (!hello.leader.empty()) {
            failure += hello.leaderAddress.empty()
                           ? "; its leader " + hello.leader + " has no " + (tls_ ? "TLS " : "") +
                                 "client address"
                           : "; its leader is " + hello.leader + " at " + hello.leaderAddress;
          }
        } else if (!refused) {
          const char* why = "";
          if (stage == Stage::kBroker) {
            why = " (the TCP connection opened, but the broker did not answer)";
          } else if (stage == Stage::kAuthenticating) {
            why =
                " (the broker did not answer the authentication; it slows down its answers "
                "after failed attempts from this address)";
          }
          failure = "could not connect to " + address + " within " +
                    std::to_string(timeout.count()) + " ms" + why;
        }
      } catch (const kj::Exception& e) {
        failure = (stage != Stage::kConnecting
                       ? "connected to " + address + ", but the broker did not answer: "
                       : "could not connect to " + address + ": ") +
                  e.getDescription().cStr();
      }
      endSession();
      return kj::Own<IoState>();
    };
    auto stopRequested = [this] {
      std::lock_guard<std::mutex> lock(mu_);
      return stopRequested_;
    };

    // The brokers to try: those given, then those the cluster named in its last hello.
    const std::vector<std::string> seeds = addresses;
    bool clustered = false;  // A broker said it is a cluster member: reconnect after a loss.
    auto learn = [&](const Hello& hello) {
      if (hello.clusterId.empty()) return;
      clustered = true;
      if (hello.addresses.empty()) return;
      addresses = seeds;
      for (const std::string& address : hello.addresses) {
        if (std::find(addresses.begin(), addresses.end(), address) == addresses.end())
          addresses.push_back(address);
      }
    };
    // One broker of the list, and the leader it names when it does not serve clients (a
    // follower), up to a few hops (the leader may have changed meanwhile).
    std::string connectedTo;
    auto attemptVia = [&](std::string address, std::string& failure) -> kj::Own<IoState> {
      std::vector<std::string> visited;
      for (;;) {
        Hello hello;
        kj::Own<IoState> state = attempt(address, failure, hello);
        learn(hello);
        if (state) {
          connectedTo = address;
          return state;
        }
        visited.push_back(address);
        const std::string& next = hello.leaderAddress;
        if (refused || hello.serves || next.empty() || visited.size() > 3 ||
            std::find(visited.begin(), visited.end(), next) != visited.end()) {
          return state;
        }
        address = next;
      }
    };

    // The first broker of the list that accepts.
    kj::Own<IoState> state;
    std::string failures;
    for (size_t i = 0; i < addresses.size(); ++i) {
      std::string failure;
      state = attemptVia(addresses[i], failure);
      if (state || refused) break;
      failures += (failures.empty() ? "" : "; ") + failure;
    }
    if (!state) {
      announced = true;
      if (refused) {
        ready.set_value(*refused);
      } else if (seeds.size() > 1) {
        std::string list;
        for (const std::string& address : seeds)
          list += (list.empty() ? "" : ",") + address;
        ready.set_value(Error{ErrorCode::kConnectFailed,
                              "no broker of " + list + " accepted the connection: " + failures});
      } else {
        ready.set_value(Error{ErrorCode::kConnectFailed, failures});
      }
    }

    // Serves until closed or disconnected; with several brokers (or a cluster's), a lost
    // connection is made again to whichever serves (a cluster's new leader, found through any
    // member) for up to options_.reconnectFor.
    std::map<uint64_t, Reattach> kept;  // Subscriptions to make again on the new connection.
    while (state) {
      for (auto& [id, again] : kept) {
        auto subscriber = again.state.lock();
        if (!subscriber || subscriber->closed()) continue;
        IoState& io = *state;
        // Registered at once: if this connection is lost too before the answer, it is kept
        // for the next one (or ended).
        io.reattach[id] = again;
        state->tasks->add(
            again.attach(io).then([&io, id = id, weak = again.state](Result<uint64_t> subscribed) {
              if (subscribed.ok()) return;
              io.reattach.erase(id);
              if (auto subscriber = weak.lock()) {
                subscriber->end(subscribed.error(), /*dropQueued=*/true);
              }
            }));
      }
      kept.clear();
      kj::Promise<void> doorbell = nullptr;
      {
        std::lock_guard<std::mutex> lock(mu_);
        doorbell = armDoorbellLocked();
      }
      alive_.store(true, std::memory_order_release);
      if (!announced) {
        announced = true;
        ready.set_value(Result<void>());
      }
      auto serving = serve(*state, kj::mv(doorbell)).exclusiveJoin(session.network->onDisconnect());
      try {
        serving.wait(io.waitScope);
      } catch (const kj::Exception&) {
        // The disconnect promise may carry a reason; either way the connection is over.
      }
      bool closedByUs = stopRequested();
      bool reconnect =
          !closedByUs && (addresses.size() > 1 || clustered) && options_.reconnectFor.count() > 0;
      if (!reconnect) refuseWork();
      // Calls in flight answer kDisconnected: whether the broker acted on them is unknown.
      Error lost = closedByUs ? disconnectedError()
                              : Error{ErrorCode::kDisconnected, "the connection to the broker at " +
                                                                    connectedTo + " was lost"};
      state->shutdown(lost, reconnect);
      if (reconnect) kept = std::move(state->reattach);
      state = nullptr;
      endSession();
      if (!reconnect) break;
      alive_.store(false, std::memory_order_release);
      // Calls made meanwhile stay queued and go to the new connection.
      auto& timer = io.provider->getTimer();
      auto deadline =
          timer.now() + saturatedTimeout(options_.reconnectFor).count() * kj::MILLISECONDS;
      auto pause = 50 * kj::MILLISECONDS;
      size_t next = 0;
      while (!state && !stopRequested() && timer.now() < deadline) {
        std::string failure;
        std::string address = addresses[next % addresses.size()];
        state = attemptVia(address, failure);
        next = (next + 1) % addresses.size();  // The list may have grown (a hello).
        if (refused) {
          break;
        } else if (!state &&
                   next == 0) {  // Each broker tried once: wait a little before the next round.
          timer.afterDelay(pause).exclusiveJoin(stopped.addBranch()).wait(io.waitScope);
          pause = std::min(pause * 2, 250 * kj::MILLISECONDS);
        }
      }
      if (!state) {  // Given up: the consumers kept for the new connection end too.
        refuseWork();
        for (auto& [id, again] : kept) {
          if (auto subscriber = again.state.lock()) subscriber->end(lost, /*dropQueued=*/true);
        }
      }
    }
  } catch (const std::exception& e) {
    // KJ throws kj::ExceptionImpl, which is also a std::exception. Only setup failures should
    // land here (no file descriptors, no memory); the loop handles its own errors.
    if (!announced) {
      announced = true;
      ready.set_value(
          Error{ErrorCode::kConnectFailed, std::string("could not connect: ") + e.what()});
    }
  } catch (...) {
  }
  if (!announced) {
    ready.set_value(Error{ErrorCode::kConnectFailed, "could not connect"});
  }

  bool deleteSelf;
  {
    std::lock_guard<std::mutex> lock(mu_);
    deleteSelf = deleteOnExit_;
  }
  if (deleteSelf) {
    {
      std::lock_guard<std::mutex> lock(joinMu_);
      thread_.detach();
    }
    delete this;
  }
}

}  // namespace sluice::detail
