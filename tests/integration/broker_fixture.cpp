#include "integration/broker_fixture.h"

#include <signal.h>

#include <algorithm>
#include <future>

namespace sluice::test {

Broker::Broker(std::vector<std::string> extraArgs) : extraArgs_(std::move(extraArgs)) {
  process_ = SluicedProcess::start(data_.path(), extraArgs_);
  connectClient();
}

void Broker::connectClient() {
  client_.emplace(connectTo(*process_));
  admin_ = client_->admin();
  producer_ = client_->producer();
}

void Broker::restart(int signal) {
  producer_ = Producer();
  admin_ = Admin();
  if (client_) client_->close();
  client_.reset();
  int status = process_->kill(signal);
  if (signal == SIGTERM) {
    INFO("sluiced stderr:\n" << process_->stderrText());
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);
  }
  process_.reset();
  process_ = SluicedProcess::start(data_.path(), extraArgs_);
  connectClient();
}

std::string outcome(const Result<Message>& result) {
  return result.ok() ? "ok: offset " + std::to_string(result.value().offset())
                     : result.error().toString();
}

Catch::Matchers::StdString::StartsWithMatcher IsError(ErrorCode code) {
  return Catch::Matchers::StartsWith(std::string(errorCodeName(code)) + ":");
}

TopicInfo createTopic(Admin admin, std::string_view name, const TopicSettings& settings) {
  auto created = admin.createTopic(name, settings);
  INFO("createTopic " << name << ": " << outcome(created));
  REQUIRE(created.ok());
  return created.value();
}

TopicInfo describeTopic(Admin admin, std::string_view name) {
  auto info = admin.describeTopic(name);
  INFO("describeTopic " << name << ": " << outcome(info));
  REQUIRE(info.ok());
  return info.value();
}

GroupInfo describeGroup(Admin admin, std::string_view topic, std::string_view group) {
  auto info = admin.describeGroup(topic, group);
  INFO("describeGroup " << topic << " " << group << ": " << outcome(info));
  REQUIRE(info.ok());
  return info.value();
}

std::vector<uint64_t> publishPayloads(Producer& producer, std::string_view topic, size_t count,
                                      const std::string& prefix) {
  std::vector<uint64_t> offsets;
  offsets.reserve(count);
  for (size_t start = 0; start < count; start += 1000) {
    std::vector<OutgoingMessage> batch;
    for (size_t i = start; i < std::min(count, start + 1000); ++i) {
      OutgoingMessage message;
      message.payload = prefix + std::to_string(i);
      batch.push_back(std::move(message));
    }
    auto acks = producer.publishBatch(topic, std::move(batch));
    INFO("publishBatch to " << topic << ": " << outcome(acks));
    REQUIRE(acks.ok());
    for (const auto& ack : acks.value())
      offsets.push_back(ack.offset);
  }
  return offsets;
}

Consumer subscribe(Client& client, std::string_view topic, std::string_view group,
                   SubscribeOptions options) {
  auto consumer = client.subscribe(topic, group, options);
  INFO("subscribe " << topic << " " << group << ": " << outcome(consumer));
  REQUIRE(consumer.ok());
  return std::move(consumer).value();
}

std::vector<Message> receiveMessages(Consumer& consumer, size_t count,
                                     std::chrono::milliseconds timeout) {
  std::vector<Message> received;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (received.size() < count) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    auto message = consumer.receive(left);
    if (!message.ok()) {
      if (message.error().code == ErrorCode::kTimeout) break;
      FAIL_CHECK("receive failed after " << received.size() << " of " << count
                                         << " messages: " << message.error().toString());
      break;
    }
    received.push_back(std::move(message).value());
  }
  return received;
}

std::vector<uint64_t> offsetsOf(const std::vector<Message>& messages) {
  std::vector<uint64_t> offsets;
  for (const auto& message : messages)
    offsets.push_back(message.offset());
  return offsets;
}

void checkNothingArrives(Consumer& consumer, std::chrono::milliseconds wait) {
  auto message = consumer.receive(wait);
  CHECK_THAT(outcome(message), IsError(ErrorCode::kTimeout));
}

void ackAll(const std::vector<Message>& messages) {
  // Sent together; each future completes once its acknowledgement is committed.
  std::vector<std::future<Result<void>>> acks;
  for (const auto& message : messages)
    acks.push_back(message.ackAsync());
  for (size_t i = 0; i < acks.size(); ++i) {
    auto acked = acks[i].get();
    INFO("ack of offset " << messages[i].offset() << ": " << outcome(acked));
    REQUIRE(acked.ok());
  }
}

std::vector<Message> peekAll(Admin admin, std::string_view topic, uint64_t fromOffset) {
  std::vector<Message> all;
  while (true) {
    auto page = admin.peek(topic, fromOffset, 1000);
    INFO("peek " << topic << " from " << fromOffset << ": " << outcome(page));
    REQUIRE(page.ok());
    if (page.value().empty()) return all;
    fromOffset = page.value().back().offset() + 1;
    for (auto& message : page.value())
      all.push_back(std::move(message));
  }
}

std::vector<uint64_t> offsetRange(uint64_t first, uint64_t last) {
  std::vector<uint64_t> offsets;
  for (uint64_t offset = first; offset <= last; ++offset)
    offsets.push_back(offset);
  return offsets;
}

OutgoingMessage textMessage(std::string payload) {
  OutgoingMessage message;
  message.payload = std::move(payload);
  return message;
}

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace sluice::test
