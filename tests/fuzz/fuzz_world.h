#pragma once

// What the targets that drive a real broker share (rpc, auth, http): the broker over an LMDB
// store as sluiced wires them, the log level, and a client connection that sends an input and
// reads until the server closes. Needs sluice_core, sluice_store and spdlog.

#include <stdlib.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <utility>

#include <kj/async-io.h>
#include <spdlog/spdlog.h>

#include "core/broker.h"
#include "fuzz_support.h"
#include "store/store.h"

namespace sluice::fuzz {

// The broker's log: off, unless SLUICE_FUZZ_LOG is set (=debug for everything).
inline void setLogLevelFromEnv() {
  const char* log = std::getenv("SLUICE_FUZZ_LOG");
  spdlog::set_level(log == nullptr                ? spdlog::level::off
                    : std::string(log) == "debug" ? spdlog::level::debug
                                                  : spdlog::level::info);
}

// A fresh directory in /dev/shm when it exists, else /tmp.
inline std::string makeTempDir(const std::string& prefix) {
  std::string base = std::filesystem::exists("/dev/shm") ? "/dev/shm" : "/tmp";
  std::string pattern = base + "/" + prefix + "-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) {
    std::perror("mkdtemp");
    std::abort();
  }
  return pattern;
}

// A broker that makes topics on their first publish, so that mutated publishes reach topic
// creation.
inline core::BrokerOptions autoCreatingOptions() {
  core::BrokerOptions options;
  options.autoCreateTopics = true;
  options.version = "fuzz";
  return options;
}

// A core::Broker over an LMDB store in a fresh directory, commits without fsync (speed;
// durability is the crash test's subject). Going away, it shuts the broker down, stops the
// writer, checks the store and removes the directory.
class BrokerWorld {
 public:
  BrokerWorld(kj::AsyncIoContext& io, const core::BrokerOptions& options,
              const std::string& prefix = "sluice-fuzz")
      : io_(io), dir_(makeTempDir(prefix)) {
    store::EnvOptions envOptions;
    envOptions.dir = dir_;
    envOptions.maxStorageBytes = 64ull << 20;
    envOptions.syncCommits = false;
    auto env = store::Env::open(envOptions);
    if (!env.ok()) {
      std::fprintf(stderr, "cannot open store: %s\n", env.status().toString().c_str());
      std::abort();
    }
    env_ = std::move(env).value();
    writer_ = std::make_unique<store::Writer>(*env_);
    store_ = std::make_unique<store::LmdbStore>(*env_, *writer_);
    broker_ = std::make_unique<core::Broker>(*store_, io.provider->getTimer(), metrics_, options);
    broker_->start();
  }

  ~BrokerWorld() {
    broker_->shutdown();  // Idempotent: the owner may have done it already.
    writer_->stop();
    broker_.reset();
    store_.reset();
    writer_.reset();
    checkEnv();
    env_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  kj::AsyncIoContext& io() { return io_; }
  core::Broker& broker() { return *broker_; }
  core::Metrics& metrics() { return metrics_; }
  store::Writer& writer() { return *writer_; }

  template <typename T>
  T wait(kj::Promise<T>&& promise) {
    return promise.wait(io_.waitScope);
  }
  // Turns the event loop for `delay`.
  void turn(kj::Duration delay) { wait(io_.provider->getTimer().afterDelay(delay)); }

  // Turns the loop until `idle()` holds and no call waits on a commit, so that inputs do not
  // bleed into each other (bounded: a stuck call is a finding only through -timeout).
  void settle(const std::function<bool()>& idle) {
    for (int i = 0; i < 2000; ++i) {
      if (idle() && broker_->callsAwaitingCommit() == 0) return;
      turn(1 * kj::MILLISECONDS);
    }
  }

  // Commits what is queued, then checks the invariants `sluiced --check` verifies.
  void checkStore() {
    auto committed = wait(store_->commit({}));
    if (!committed.ok()) {
      std::fprintf(stderr, "commit failed: %s\n", committed.status().message().c_str());
      std::abort();
    }
    checkEnv();
  }

 private:
  void checkEnv() {
    Status status = env_->check();
    if (!status.ok()) {
      std::fprintf(stderr, "store invariant broken: %s\n", status.message().c_str());
      std::abort();
    }
  }

  kj::AsyncIoContext& io_;
  std::string dir_;
  core::Metrics metrics_;
  std::unique_ptr<store::Env> env_;
  std::unique_ptr<store::Writer> writer_;
  std::unique_ptr<store::LmdbStore> store_;
  std::unique_ptr<core::Broker> broker_;
};

// One client connection to 127.0.0.1:`port`: sends `bytes`, closes its sending side, and keeps
// what comes back until the server closes (or resets) the connection. The I/O runs while the
// event loop turns: in wait(), or any other wait on the loop.
class Exchange {
 public:
  Exchange(kj::AsyncIoContext& io, uint port, kj::ArrayPtr<const kj::byte> bytes)
      : io_(io), buffer_(kj::heapArray<kj::byte>(65536)) {
    auto address = io.provider->getNetwork().parseAddress("127.0.0.1", port).wait(io.waitScope);
    stream_ = address->connect().wait(io.waitScope);
    auto sending = stream_->write(bytes.begin(), bytes.size())
                       .then([this]() { stream_->shutdownWrite(); })
                       .catch_([](kj::Exception&&) {})  // The server may close first.
                       .eagerlyEvaluate(nullptr);       // Shut down now, not when both are done.
    auto receiving = drain().catch_([](kj::Exception&&) {});
    done_ = kj::joinPromises(kj::arr(kj::mv(sending), kj::mv(receiving))).fork();
  }

  // Turns the loop until the server has closed the connection or `within` has passed; whether
  // it closed.
  bool wait(kj::Duration within) {
    return done_.addBranch()
        .then([]() { return true; })
        .exclusiveJoin(io_.provider->getTimer().afterDelay(within).then([]() { return false; }))
        .wait(io_.waitScope);
  }

  const std::string& received() const { return received_; }

 private:
  kj::Promise<void> drain() {
    return stream_->tryRead(buffer_.begin(), 1, buffer_.size())
        .then([this](size_t n) -> kj::Promise<void> {
          if (n == 0) return kj::READY_NOW;
          received_.append(reinterpret_cast<const char*>(buffer_.begin()), n);
          return drain();
        });
  }

  kj::AsyncIoContext& io_;
  kj::Array<kj::byte> buffer_;
  std::string received_;
  kj::Own<kj::AsyncIoStream> stream_;
  kj::ForkedPromise<void> done_ = kj::Promise<void>(kj::READY_NOW).fork();
};

// What a target over a World (constructed from the event loop) keeps across inputs: the loop,
// and the World, made again every `resetEvery` inputs (a fresh store). One per process, never
// destroyed: libFuzzer exits from anywhere.
template <typename World, uint64_t resetEvery>
class Inputs {
 public:
  // LLVMFuzzerInitialize's work and answer: the log level; with SLUICE_FUZZ_WRITE_SEEDS=DIR,
  // `write(io, DIR)` writes the seeds and the program exits.
  template <typename WriteSeeds>
  static int initialize(WriteSeeds&& write) {
    setLogLevelFromEnv();
    writeSeedsIfAsked([&](const std::string& dir) { write(io(), dir); });
    return 0;
  }

  static kj::AsyncIoContext& io() { return get().io_; }
  // Counts an input and returns the World it runs against.
  static World& next() {
    Inputs& self = get();
    if (!self.world_ || self.count_ % resetEvery == 0) {
      self.world_.reset();
      self.world_ = std::make_unique<World>(self.io_);
    }
    ++self.count_;
    return *self.world_;
  }
  // Whether the input just counted ends a run of `every`.
  static bool every(uint64_t every) { return get().count_ % every == 0; }

 private:
  Inputs() = default;
  static Inputs& get() {
    static Inputs* instance = new Inputs();
    return *instance;
  }

  kj::AsyncIoContext io_ = kj::setupAsyncIo();
  std::unique_ptr<World> world_;
  uint64_t count_ = 0;
};

}  // namespace sluice::fuzz
