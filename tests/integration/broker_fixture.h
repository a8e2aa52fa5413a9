#pragma once

// Shared pieces of the integration tests: a broker on a fresh data dir with a connected
// client, and short helpers for the calls every test makes.

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <sluice/sluice.h>
#include <catch2/catch.hpp>

#include "support/sluiced_process.h"
#include "support/temp_dir.h"

namespace sluice::test {

using namespace std::chrono_literals;

// A running sluiced on its own data dir, with one connected client. Destroying it closes the
// client, kills the broker and removes the data dir, in that order.
class Broker {
 public:
  explicit Broker(std::vector<std::string> extraArgs = {});

  SluicedProcess& process() { return *process_; }
  Client& client() { return *client_; }
  Admin& admin() { return admin_; }
  Producer& producer() { return producer_; }
  const std::string& dataDir() const { return data_.path(); }

  // A further connection to the same broker.
  Client connect(Options options = {}) const { return connectTo(*process_, options); }

  // Closes the client, stops the broker with `signal` (SIGTERM: REQUIREs exit code 0), starts
  // it again on the same data dir with the same arguments and reconnects.
  void restart(int signal);

 private:
  void connectClient();

  TempDir data_;
  std::vector<std::string> extraArgs_;
  std::unique_ptr<SluicedProcess> process_;
  std::optional<Client> client_;
  Admin admin_;
  Producer producer_;
};

// "ok" or "<codeName>: <message>", for CHECK_THAT(outcome(r), IsError(...)).
template <typename T>
std::string outcome(const Result<T>& result) {
  return result.ok() ? std::string("ok") : result.error().toString();
}
std::string outcome(const Result<Message>& result);

// Matches an outcome() string holding an error with `code`.
Catch::Matchers::StdString::StartsWithMatcher IsError(ErrorCode code);

// REQUIREs success; returns the effective settings.
TopicInfo createTopic(Admin admin, std::string_view name, const TopicSettings& settings = {});
// REQUIREs success.
TopicInfo describeTopic(Admin admin, std::string_view name);
GroupInfo describeGroup(Admin admin, std::string_view topic, std::string_view group);

// Publishes `count` messages with payloads "<prefix><i>" (i from 0) in batches of up to 1,000;
// REQUIREs success and returns their offsets in order.
std::vector<uint64_t> publishPayloads(Producer& producer, std::string_view topic, size_t count,
                                      const std::string& prefix = "m");

// REQUIREs a successful subscribe.
Consumer subscribe(Client& client, std::string_view topic, std::string_view group,
                   SubscribeOptions options = {});

// Receives until `count` messages arrived or `timeout` passed in total; returns them.
std::vector<Message> receiveMessages(Consumer& consumer, size_t count,
                                     std::chrono::milliseconds timeout = 10s);
// The offsets of `messages`, in order.
std::vector<uint64_t> offsetsOf(const std::vector<Message>& messages);
// CHECKs that nothing arrives within `wait` (receive answers kTimeout).
void checkNothingArrives(Consumer& consumer, std::chrono::milliseconds wait = 300ms);
// Acknowledges every message and waits for the commits; REQUIREs success.
void ackAll(const std::vector<Message>& messages);

// Every retained message of `topic` from `fromOffset` on, via peek.
std::vector<Message> peekAll(Admin admin, std::string_view topic, uint64_t fromOffset = 1);

// A message with only a payload.
OutgoingMessage textMessage(std::string payload);

// [first, last] as a vector.
std::vector<uint64_t> offsetRange(uint64_t first, uint64_t last);

// Unix milliseconds now.
int64_t nowMs();

}  // namespace sluice::test

namespace Catch {
template <>
struct StringMaker<sluice::ErrorCode> {
  static std::string convert(sluice::ErrorCode code) { return sluice::errorCodeName(code); }
};
}  // namespace Catch
