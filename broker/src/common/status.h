#pragma once

#include <string>
#include <utility>
#include <variant>

namespace sluice {

// Broker-internal outcome codes. One-to-one with `ErrorCode` in schemas/rpc.capnp (the wire
// mapping lives in rpc/wire.cpp) plus kOk.
enum class Code {
  kOk,
  kInvalidArgument,
  kTopicNotFound,
  kGroupNotFound,
  kMessageTooLarge,
  kStorageFull,
  kStorageFailed,
  kTopicExists,
  kNotPending,
  kGroupBusy,
  kLimitExceeded,
  kShuttingDown,
};

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
