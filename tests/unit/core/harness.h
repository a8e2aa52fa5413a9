#pragma once

// A broker over a real LMDB store in a fresh temp dir, driven on this thread's KJ loop.

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <kj/async-io.h>
#include <catch2/catch.hpp>

#include "core/broker.h"
#include "store/store.h"

namespace sluice::core::testing {

class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "sluice-core-XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Records what the broker pushes to one consumer.
struct RecordingSink : ConsumerSink {
  std::vector<Delivery> received;
  std::optional<Status> closedWith;
  void deliver(std::vector<Delivery> batch) override {
    for (auto& d : batch)
      received.push_back(std::move(d));
  }
  void closed(const Status& why) override { closedWith = why; }
  std::vector<Offset> offsets() const {
    std::vector<Offset> out;
    for (const auto& d : received)
      out.push_back(d.message.offset);
    return out;
  }
};

class Harness {
 public:
  explicit Harness(BrokerOptions options = {}, const std::string* reuseDir = nullptr)
      : io_(kj::setupAsyncIo()) {
    options_ = options;
    open(reuseDir != nullptr ? *reuseDir : dir_.path());
  }
  ~Harness() { close(); }

  // Stops the broker and reopens it on the same store, as a restart would.
  void restart() {
    std::string path = path_;
    close();
    open(path);
  }

  Broker& broker() { return *broker_; }
  kj::Timer& timer() { return io_.provider->getTimer(); }
  kj::WaitScope& waitScope() { return io_.waitScope; }
  store::Writer& writer() { return *writer_; }

  template <typename T>
  T wait(kj::Promise<T>&& promise) {
    return promise.wait(io_.waitScope);
  }
  // Runs queued events (deliveries are pushed from evalLater turns).
  void settle() {
    for (int i = 0; i < 8; ++i)
      io_.waitScope.poll();
  }
  // Polls `condition`, letting the loop and its timers run, for up to `timeoutMs`.
  bool eventually(const std::function<bool()>& condition, int timeoutMs = 5000) {
    auto& timer = io_.provider->getTimer();
    auto deadline = timer.now() + timeoutMs * kj::MILLISECONDS;
    while (!condition()) {
      if (timer.now() >= deadline) return false;
      timer.afterDelay(2 * kj::MILLISECONDS).wait(io_.waitScope);
    }
    return true;
  }

  void createTopic(const std::string& name, RequestedSettings settings = {}) {
    auto created = wait(broker_->createTopic(name, settings));
    REQUIRE(created.ok());
  }
  std::vector<PublishAckData> publish(const std::string& topic, int count,
                                      const std::string& prefix = "m") {
    std::vector<MessageData> messages(count);
    for (int i = 0; i < count; ++i)
      messages[i].payload = prefix + std::to_string(i);
    auto acks = wait(broker_->publish(topic, std::move(messages)));
    REQUIRE(acks.ok());
    return acks.value();
  }
  uint64_t subscribe(const std::string& topic, const std::string& group, RecordingSink& sink,
                     uint32_t prefetch = 100, uint64_t ackTimeoutMs = 30000,
                     bool keyOrdered = false, const std::vector<std::string>& filter = {}) {
    auto id = broker_->subscribe(topic, group, StartAt{}, prefetch, ackTimeoutMs, sink, "test",
                                 keyOrdered, filter);
    REQUIRE(id.ok());
    consumers_.push_back(id.value());
    settle();
    return id.value();
  }

 private:
  void open(const std::string& path) {
    path_ = path;
    store::EnvOptions envOptions;
    envOptions.dir = path;
    envOptions.maxStorageBytes = 64ull << 20;
    auto env = store::Env::open(envOptions);
    REQUIRE(env.ok());
    env_ = std::move(env).value();
    writer_ = std::make_unique<store::Writer>(*env_);
    store_ = std::make_unique<store::LmdbStore>(*env_, *writer_);
    broker_ = std::make_unique<Broker>(*store_, io_.provider->getTimer(), metrics_, options_);
    broker_->start();
  }
  void close() {
    if (!broker_) return;
    // Tests' sinks are locals that die before the harness: leave before shutdown() would tell
    // them the subscription ended, as the RPC layer does when a connection closes.
    for (uint64_t id : consumers_)
      broker_->unsubscribe(id);
    consumers_.clear();
    broker_->shutdown();
    writer_->stop();
    settle();
    broker_.reset();
    store_.reset();
    writer_.reset();
    env_.reset();
  }

  ScratchDir dir_;
  kj::AsyncIoContext io_;
  BrokerOptions options_;
  std::string path_;
  Metrics metrics_;
  std::unique_ptr<store::Env> env_;
  std::unique_ptr<store::Writer> writer_;
  std::unique_ptr<store::LmdbStore> store_;
  std::unique_ptr<Broker> broker_;
  std::vector<uint64_t> consumers_;
};

}  // namespace sluice::core::testing
