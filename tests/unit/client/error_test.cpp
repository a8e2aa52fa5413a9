#include <catch2/catch.hpp>

#include <set>
#include <string>

#include "sluice/error.h"

using sluice::BadResultAccess;
using sluice::Error;
using sluice::ErrorCode;
using sluice::Result;

TEST_CASE("every error code has its lowerCamel schema name", "[client]") {
  struct Row {
    ErrorCode code;
    const char* name;
  };
  const Row rows[] = {
      {ErrorCode::kInvalidArgument, "invalidArgument"},
      {ErrorCode::kTopicNotFound, "topicNotFound"},
      {ErrorCode::kGroupNotFound, "groupNotFound"},
      {ErrorCode::kMessageTooLarge, "messageTooLarge"},
      {ErrorCode::kStorageFull, "storageFull"},
      {ErrorCode::kStorageFailed, "storageFailed"},
      {ErrorCode::kTopicExists, "topicExists"},
      {ErrorCode::kNotPending, "notPending"},
      {ErrorCode::kGroupBusy, "groupBusy"},
      {ErrorCode::kLimitExceeded, "limitExceeded"},
      {ErrorCode::kShuttingDown, "shuttingDown"},
      {ErrorCode::kStaleDelivery, "staleDelivery"},
      {ErrorCode::kTransactionConflict, "transactionConflict"},
      {ErrorCode::kDisconnected, "disconnected"},
      {ErrorCode::kConnectFailed, "connectFailed"},
      {ErrorCode::kTimeout, "timeout"},
      {ErrorCode::kInternal, "internal"},
  };
  std::set<std::string> seen;
  for (const auto& row : rows) {
    INFO(row.name);
    CHECK(std::string(sluice::errorCodeName(row.code)) == row.name);
    seen.insert(sluice::errorCodeName(row.code));
  }
  CHECK(seen.size() == std::size(rows));
}

TEST_CASE("a code outside the enum is named unknown instead of crashing", "[client]") {
  CHECK(std::string(sluice::errorCodeName(static_cast<ErrorCode>(999))) == "unknown");
}

TEST_CASE("Error::toString is the code name, a colon and the message", "[client]") {
  Error error{ErrorCode::kTopicNotFound, "no topic named \"ordrs\""};
  CHECK(error.toString() == "topicNotFound: no topic named \"ordrs\"");
  CHECK(Error{ErrorCode::kTimeout, ""}.toString() == "timeout: ");
}

TEST_CASE("a Result holding a value gives it back", "[client]") {
  Result<int> result = 42;
  CHECK(result.ok());
  CHECK(static_cast<bool>(result));
  CHECK(result.value() == 42);
  result.value() = 7;
  CHECK(result.value() == 7);
  Result<std::string> moved = std::string("payload");
  std::string taken = std::move(moved).value();
  CHECK(taken == "payload");
}

TEST_CASE("value() on an error throws BadResultAccess carrying the error", "[client]") {
  Result<int> result = Error{ErrorCode::kStorageFull, "storage is at its 10 GiB limit"};
  CHECK_FALSE(result.ok());
  CHECK_FALSE(static_cast<bool>(result));
  CHECK(result.error().code == ErrorCode::kStorageFull);
  try {
    (void)result.value();
    FAIL("value() did not throw");
  } catch (const BadResultAccess& e) {
    CHECK(e.error().code == ErrorCode::kStorageFull);
    CHECK(e.error().message == "storage is at its 10 GiB limit");
    CHECK(std::string(e.what()) == "storageFull: storage is at its 10 GiB limit");
  }
}

TEST_CASE("Result<void> is ok by default and throws on error", "[client]") {
  Result<void> ok;
  CHECK(ok.ok());
  CHECK_NOTHROW(ok.value());
  Result<void> failed = Error{ErrorCode::kNotPending, "offset 3 is not pending"};
  CHECK_FALSE(failed.ok());
  CHECK(failed.error().code == ErrorCode::kNotPending);
  CHECK_THROWS_AS(failed.value(), BadResultAccess);
}
