#pragma once

// FakeBroker: an in-process stand-in for sluiced, so that libsluice's own logic (batching,
// ack coalescing, close and disconnect handling) can be tested without the real broker.
// It serves schemas/rpc.capnp on 127.0.0.1 (a port the kernel picks) from its own thread and
// event loop, keeps messages in memory and records what the client sent.
//
// Semantics, deliberately simple: every topic exists except names starting with "missing";
// offsets count from 1 per topic; every subscription gets every message of its topic (no
// competing consumers, no prefetch window, no redelivery timer); a nack redelivers at once.
// Admin implements createTopic (echoing the settings), peek and stats; the rest answers
// UNIMPLEMENTED.
//
// Thread: the test's. Every method hands its work to the broker's thread and waits.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

class FakeBroker {
 public:
  FakeBroker();
  ~FakeBroker();
  FakeBroker(const FakeBroker&) = delete;
  FakeBroker& operator=(const FakeBroker&) = delete;

  // "127.0.0.1:<port>".
  std::string address() const;

  // While held, publish calls (or subscribe calls) get no answer until released.
  void holdPublishes(bool hold);
  void holdSubscribes(bool hold);
  // Drops every client connection, as a crashing broker would.
  void disconnectAll();
  // Ends every subscription with DeliveryHandler.closed(topicNotFound, `message`).
  void closeSubscriptions(const std::string& message);

  // Messages per publish call, in arrival order.
  std::vector<size_t> publishBatchSizes() const;
  // Most publish calls ever outstanding at once (only grows while publishes are held).
  size_t maxPublishesInFlight() const;
  // Offsets of each ack call, in arrival order.
  std::vector<std::vector<uint64_t>> ackCalls() const;
  // Offsets and delay of each nack call.
  std::vector<std::pair<std::vector<uint64_t>, uint32_t>> nackCalls() const;
  // Subscriptions whose capability the client has released.
  size_t subscriptionsReleased() const;
  // Subscriptions ever created.
  size_t subscriptionsCreated() const;

  struct State;

 private:
  std::unique_ptr<State> state_;
};
