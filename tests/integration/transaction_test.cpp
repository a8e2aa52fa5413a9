// Atomic ack-and-publish through the client library and a real sluiced, across kill -9.

#include <signal.h>

#include <condition_variable>
#include <future>
#include <mutex>

#include "integration/broker_fixture.h"

namespace sluice::test {
namespace {

TEST_CASE("a transaction's acks and outputs commit together and survive kill -9",
          "[integration][transaction]") {
  Broker broker;
  createTopic(broker.admin(), "in");
  createTopic(broker.admin(), "out");
  publishPayloads(broker.producer(), "in", 3);
  {
    auto consumer = subscribe(broker.client(), "in", "work");
    auto received = receiveMessages(consumer, 3);
    REQUIRE(offsetsOf(received) == offsetRange(1, 3));

    Transaction first;
    first.id = "tx-1";
    first.ack(received[0])
        .publish("out", textMessage("from 1"))
        .publish("out", textMessage("from 1 again"));
    auto applied = consumer.transact(first);
    REQUIRE(outcome(applied) == "ok");
    CHECK_FALSE(applied.value().replayed);
    REQUIRE(applied.value().outputs.size() == 1);
    CHECK(applied.value().outputs[0].first == "out");
    REQUIRE(applied.value().outputs[0].second.size() == 2);
    CHECK(applied.value().outputs[0].second[1].offset == 2);

    // A retry (its answer lost, say) is answered from the broker's record.
    auto retried = consumer.transact(first);
    REQUIRE(outcome(retried) == "ok");
    CHECK(retried.value().replayed);
    CHECK(retried.value().outputs[0].second[1].offset == 2);

    // All or nothing: a publish that fails keeps message 2 held and publishes nothing.
    Transaction failing;
    failing.ack(received[1]).publish("out", textMessage("x")).publish("nowhere", textMessage("y"));
    CHECK_THAT(outcome(consumer.transact(failing)), IsError(ErrorCode::kTopicNotFound));
    CHECK(describeTopic(broker.admin(), "out").messages == 2);
    CHECK(describeGroup(broker.admin(), "in", "work").pending == 2);

    // A second transaction commits message 2; message 3 stays held when the broker dies.
    Transaction second;
    second.id = "tx-2";
    second.ack(received[1]).publish("out", textMessage("from 2"));
    REQUIRE(outcome(consumer.transact(second)) == "ok");
  }
  broker.restart(SIGKILL);

  auto out = peekAll(broker.admin(), "out");
  REQUIRE(out.size() == 3);
  CHECK(out[0].payload() == "from 1");
  CHECK(out[2].payload() == "from 2");
  // Only message 3 comes back: the acks of 1 and 2 were in the transactions' commits.
  auto consumer = subscribe(broker.client(), "in", "work");
  auto again = receiveMessages(consumer, 1);
  REQUIRE(offsetsOf(again) == std::vector<uint64_t>{3});
  checkNothingArrives(consumer);
  // The record of tx-2 survived too: the id with other content is refused.
  Transaction reused;
  reused.id = "tx-2";
  reused.ack(again[0]).publish("out", textMessage("from 3"));
  auto conflict = consumer.transact(reused);
  CHECK_THAT(outcome(conflict), IsError(ErrorCode::kTransactionConflict));
  CHECK(describeTopic(broker.admin(), "out").messages == 3);
  reused.id = "tx-3";
  auto third = consumer.transact(reused);
  REQUIRE(outcome(third) == "ok");
  CHECK(third.value().outputs[0].second[0].offset == 4);
  CHECK(describeGroup(broker.admin(), "in", "work").pending == 0);
}

TEST_CASE("a transaction acknowledges only messages of its own consumer",
          "[integration][transaction]") {
  Broker broker;
  createTopic(broker.admin(), "in");
  createTopic(broker.admin(), "out");
  publishPayloads(broker.producer(), "in", 1);
  auto consumer = subscribe(broker.client(), "in", "work");
  auto other = subscribe(broker.client(), "in", "audit");
  auto mine = receiveMessages(consumer, 1);
  auto theirs = receiveMessages(other, 1);
  REQUIRE(mine.size() == 1);
  REQUIRE(theirs.size() == 1);

  Transaction wrong;
  wrong.ack(theirs[0]).publish("out", textMessage("x"));
  auto refused = consumer.transact(wrong);
  CHECK_THAT(outcome(refused), IsError(ErrorCode::kInvalidArgument));
  CHECK_THAT(outcome(refused), Catch::Matchers::Contains("delivered to another consumer"));
  Transaction peeked;
  peeked.ack(peekAll(broker.admin(), "in")[0]);
  CHECK_THAT(outcome(consumer.transact(peeked)), IsError(ErrorCode::kInvalidArgument));
  CHECK_THAT(outcome(consumer.transact(Transaction{})), IsError(ErrorCode::kInvalidArgument));
  CHECK(describeTopic(broker.admin(), "out").messages == 0);
  ackAll({mine[0], theirs[0]});
}

TEST_CASE("transactAsync answers every transaction, many at once, each on its own",
          "[integration][transaction]") {
  Broker broker;
  createTopic(broker.admin(), "in");
  createTopic(broker.admin(), "out");
  publishPayloads(broker.producer(), "in", 50);
  SubscribeOptions options;
  options.prefetch = 0;
  auto consumer = broker.client().subscribe("in", "work", options);
  REQUIRE(consumer.ok());
  auto fetched = consumer.value().fetch(50, std::chrono::seconds(10));
  REQUIRE(fetched.ok());
  REQUIRE(fetched.value().size() == 50);
  std::vector<Message>& inputs = fetched.value();

  // 40 with futures, outstanding together; one of them refused (a topic that does not exist).
  std::vector<std::future<Result<TransactionResult>>> futures;
  for (size_t i = 0; i < 40; ++i) {
    Transaction transaction;
    transaction.id = "async-" + std::to_string(i);
    transaction.ack(inputs[i]).publish(i == 7 ? "nowhere" : "out", textMessage(std::to_string(i)));
    futures.push_back(consumer.value().transactAsync(transaction));
  }
  for (size_t i = 0; i < futures.size(); ++i) {
    auto answer = futures[i].get();
    if (i == 7) {
      CHECK_THAT(outcome(answer), IsError(ErrorCode::kTopicNotFound));
      continue;
    }
    REQUIRE(outcome(answer) == "ok");
    REQUIRE(answer.value().outputs.size() == 1);
    CHECK(answer.value().outputs[0].second.size() == 1);
  }
  // 10 with callbacks, on the client's I/O thread.
  std::mutex mu;
  std::condition_variable answered;
  std::vector<std::string> outcomes;
  for (size_t i = 40; i < 50; ++i) {
    Transaction transaction;
    transaction.id = "async-" + std::to_string(i);
    transaction.ack(inputs[i]).publish("out", textMessage(std::to_string(i)));
    consumer.value().transactAsync(transaction, [&](Result<TransactionResult> answer) {
      std::lock_guard<std::mutex> lock(mu);
      outcomes.push_back(outcome(answer));
      answered.notify_all();
    });
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    REQUIRE(
        answered.wait_for(lock, std::chrono::seconds(10), [&] { return outcomes.size() == 10; }));
    CHECK(outcomes == std::vector<std::string>(10, "ok"));
  }
  // A message not of this consumer is refused before anything is sent.
  auto peeked = peekAll(broker.admin(), "in");
  Transaction wrong;
  wrong.ack(peeked[7]).publish("out", textMessage("x"));
  CHECK_THAT(outcome(consumer.value().transactAsync(wrong).get()),
             IsError(ErrorCode::kInvalidArgument));

  CHECK(describeTopic(broker.admin(), "out").messages == 49);
  CHECK(describeGroup(broker.admin(), "in", "work").pending == 1);  // Offset 8, held still.
}

}  // namespace
}  // namespace sluice::test
