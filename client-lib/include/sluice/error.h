#pragma once

#include <stdexcept>
#include <string>
#include <utility>
#include <variant>

namespace sluice {

// Every failure a client can see. The broker's codes (kInvalidArgument .. kNotEnoughReplicas)
// have the values and names of ErrorCode in the broker's schema (schemas/rpc.capnp), the one
// registry; the four from kDisconnected on arise in the client library itself.
enum class ErrorCode {
  kInvalidArgument = 1,  // Malformed request (bad name, bad field); resending it fails again.
  kTopicNotFound,        // No topic has that name.
  kGroupNotFound,        // The topic has no consumer group with that name.
  kMessageTooLarge,      // A payload exceeds the topic's max message size; nothing was stored.
  kStorageFull,          // The broker's storage is at its limit; retry later.
  kStorageFailed,        // A commit failed on the broker; it refuses writes until restarted.
  kTopicExists,          // A topic with that name already exists.
  kNotPending,           // Ack/nack of a message that is not pending for this consumer.
  kGroupBusy,            // The group has connected consumers.
  kLimitExceeded,        // A broker limit was reached (batch size, subscriptions, topics, groups).
  kShuttingDown,         // The broker is stopping.
  kStaleDelivery,        // Ack/nack of an earlier delivery of a message delivered again since.
  kTransactionConflict,  // A transaction id already applied with other content; nothing changed.
  kNoRoute,              // No topic captures the subject published to; nothing was stored.
  kUnauthenticated,      // Authentication is on and the connection holds no valid credential
                         // (none given, wrong, expired or revoked). Reconnect with a good one.
  kPermissionDenied,     // The principal's rules (or its grant's scope) do not allow the action
                         // on the topic; the message names both. Nothing changed.
  kNotEnoughReplicas,    // A replicated broker has fewer members in sync than it needs for a
                         // write; nothing changed. Retry once a replica has caught up.
  kDisconnected = 100,   // The connection to the broker is gone (or was closed).
  kConnectFailed,        // Could not connect to the broker (bad address, refused, timed out).
  kTimeout,              // The call did not complete within its timeout (e.g. receive()).
  kInternal,             // A bug or unexpected failure; the message has the broker's short text.
};

// The stable lowerCamel name of a code, as the schema and the CLI spell it ("topicNotFound").
const char* errorCodeName(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;  // States the problem, the rule and what was received.

  // "<codeName>: <message>", e.g. `topicNotFound: no topic named "ordrs"`.
  std::string toString() const;
};

// Thrown by Result<T>::value() when the result holds an error.
class BadResultAccess : public std::runtime_error {
 public:
  explicit BadResultAccess(const Error& error)
      : std::runtime_error(error.toString()), error_(error) {}
  const Error& error() const { return error_; }

 private:
  Error error_;
};

// Either a value or an Error. Check ok() before value(); value() on an error throws
// BadResultAccess (carrying the error), which keeps tests and scripts short.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : state_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }

  const T& value() const& {
    check();
    return std::get<0>(state_);
  }
  T& value() & {
    check();
    return std::get<0>(state_);
  }
  T&& value() && {
    check();
    return std::get<0>(std::move(state_));
  }
  // Precondition: !ok().
  const Error& error() const { return std::get<1>(state_); }

 private:
  void check() const {
    if (!ok()) throw BadResultAccess(std::get<1>(state_));
  }
  std::variant<T, Error> state_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  // Throws BadResultAccess when !ok(); does nothing otherwise.
  void value() const {
    if (!ok_) throw BadResultAccess(error_);
  }
  const Error& error() const { return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

}  // namespace sluice
