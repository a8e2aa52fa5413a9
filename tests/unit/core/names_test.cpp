#include "core/names.h"

#include <catch2/catch.hpp>

#include "core/broker.h"

using namespace sluice;
using namespace sluice::core;
using Catch::Matchers::Contains;

TEST_CASE("topic names follow the rule and a violation states it", "[core]") {
  for (const char* good : {"orders", "orders.eu.created", "a", "A-b_c.9"}) {
    CHECK_FALSE(validateTopicName(good));
  }
  CHECK_FALSE(validateTopicName(std::string(200, 'x')));

  auto empty = validateTopicName("");
  REQUIRE(empty);
  CHECK_THAT(*empty, Contains("1-200 characters") && Contains("empty"));
  auto tooLong = validateTopicName(std::string(201, 'x'));
  REQUIRE(tooLong);
  CHECK_THAT(*tooLong, Contains("got 201 characters"));
  auto space = validateTopicName("my topic");
  REQUIRE(space);
  CHECK_THAT(*space, Contains("position 3"));
  for (const char* bad : {".orders", "orders.", "orders..eu", "ord/ers", "ordérs"}) {
    CHECK(validateTopicName(bad));
  }
}

TEST_CASE("group names, message ids and headers are validated", "[core]") {
  CHECK_FALSE(validateGroupName("billing-v2"));
  CHECK(validateGroupName(""));
  CHECK(validateGroupName("a b"));
  CHECK_FALSE(validateMessageId(""));
  CHECK_FALSE(validateMessageId("order-17"));
  CHECK_THAT(*validateMessageId(std::string(257, 'x')), Contains("at most 256"));
  CHECK(validateMessageId("has space"));
  CHECK_FALSE(validateHeaders({{"content-type", "json"}}));
  CHECK_THAT(*validateHeaders({{"", "x"}}), Contains("1-256"));
  CHECK(validateHeaders({{"a:b", "x"}}));
  HeaderList many(65, {"k", "v"});
  CHECK_THAT(*validateHeaders(many), Contains("at most 64 headers"));
}

TEST_CASE("topic settings get defaults and out-of-range values are refused", "[core]") {
  Limits limits;
  RequestedSettings requested;
  auto check = checkSettings("orders", requested, limits);
  CHECK_FALSE(check.problem);
  CHECK(check.effective.maxMessageSize == kDefaultMaxMessageSize);
  CHECK(check.effective.dedupWindowMs == kDefaultDedupWindowMs);

  requested.maxMessageSize = limits.maxMessageSizeCap + 1;
  CHECK_THAT(*checkSettings("orders", requested, limits).problem, Contains("max message size"));

  RequestedSettings self;
  self.deadLetterTopic = "orders";
  self.maxDeliveries = 3;
  CHECK_THAT(*checkSettings("orders", self, limits).problem, Contains("its own dead-letter"));

  RequestedSettings noMax;
  noMax.deadLetterTopic = "orders.dlq";
  CHECK_THAT(*checkSettings("orders", noMax, limits).problem, Contains("max deliveries"));

  RequestedSettings badDlq;
  badDlq.deadLetterTopic = "bad name";
  badDlq.maxDeliveries = 2;
  CHECK_THAT(*checkSettings("orders", badDlq, limits).problem, Contains("dead-letter topic name"));
}
