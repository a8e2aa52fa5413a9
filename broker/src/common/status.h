#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <variant>

namespace sluice {

// Broker-internal outcome codes. The values are the ordinals of ErrorCode in schemas/rpc.capnp, the
// one registry of error codes and their names (kOk is the schema's `unspecified`);
// tests/unit/core/error_codes_test.cpp holds every value to its enumerant. Add a code in the schema
// first.
enum class Code : uint16_t {
  kOk = 0,
  kInvalidArgument = 1,
  kTopicNotFound = 2,
  kGroupNotFound = 3,
  kMessageTooLarge = 4,
  kStorageFull = 5,
  kStorageFailed = 6,
  kTopicExists = 7,
  kNotPending = 8,
  kGroupBusy = 9,
  kLimitExceeded = 10,
  kShuttingDown = 11,
  kStaleDelivery = 12,
  kTransactionConflict = 13,
  kNoRoute = 14,
  kUnauthenticated = 15,
  kPermissionDenied = 16,
  kNotEnoughReplicas = 17,
};

// The schema's lowerCamel name ("topicNotFound"); "ok" for kOk.
const char* codeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // "<codeName>: <message>" for logs.
  std::string toString() const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

// A value or a non-ok Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}         // NOLINT
  Result(Status status) : state_(std::move(status)) {}  // NOLINT; precondition: !status.ok()
  Result(Code code, std::string message) : state_(Status(code, std::move(message))) {}

  bool ok() const { return state_.index() == 0; }
  const T& value() const& { return std::get<0>(state_); }
  T& value() & { return std::get<0>(state_); }
  T&& value() && { return std::get<0>(std::move(state_)); }
  Status status() const { return ok() ? Status() : std::get<1>(state_); }

 private:
  std::variant<T, Status> state_;
};

// For jobs that return nothing but a status.
struct Done {};

}  // namespace sluice
