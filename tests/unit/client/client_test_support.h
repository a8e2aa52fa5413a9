#pragma once

// Helpers shared by the tests that run the client against FakeBroker.

#include <chrono>
#include <future>
#include <memory>

#include "fake_broker.h"
#include "sluice/client.h"

// Generous timeouts: a loaded CI machine must not make these tests flaky.
inline sluice::Options testOptions() {
  return sluice::Options{std::chrono::milliseconds(10000), std::chrono::milliseconds(10000)};
}

inline sluice::Client connectTo(const FakeBroker& broker, sluice::Options options = testOptions()) {
  return sluice::Client::connect(broker.address(), options).value();
}

// Blocks the client's I/O thread inside a publishAsync callback until release(), so that
// work queued meanwhile is handled in one wakeup. (User callbacks must not block; this one
// does on purpose.)
class IoThreadStall {
 public:
  explicit IoThreadStall(sluice::Producer& producer) {
    auto entered = std::make_shared<std::promise<void>>();
    auto inside = entered->get_future();
    producer.publishAsync("stall", sluice::OutgoingMessage{},
                          [entered, gate = gate_](sluice::Result<sluice::PublishAck>) {
                            entered->set_value();
                            gate->wait();
                          });
    inside.wait();
  }
  ~IoThreadStall() { release(); }
  void release() {
    if (!released_) open_.set_value();
    released_ = true;
  }

 private:
  std::promise<void> open_;
  std::shared_ptr<std::shared_future<void>> gate_ =
      std::make_shared<std::shared_future<void>>(open_.get_future().share());
  bool released_ = false;
};
