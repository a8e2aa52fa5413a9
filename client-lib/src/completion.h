#pragma once

// Completion<T>: the one way a result travels from the I/O thread back to a caller, either
// through a std::future (blocking and future-returning calls) or a callback.
//
// The guarantee that matters: every Completion completes exactly once. If it is destroyed
// before complete() — because the connection closed and the command or the RPC chain holding
// it was dropped, or because a command could not be queued at all — it completes with
// kDisconnected. So no caller ever waits on a future that nobody will set.
//
// Thread: owned by one thread at a time (it moves with the work); complete() runs on the
// owner. Callbacks therefore run on the I/O thread, except when the connection is already
// closed: then they run on the thread that tried to queue the work.

#include <algorithm>
#include <chrono>
#include <functional>
#include <future>
#include <string>
#include <utility>

#include "sluice/error.h"

namespace sluice::detail {

// The error every call returns once the connection is gone.
inline Error disconnectedError() {
  return Error{ErrorCode::kDisconnected, "the connection to the broker is closed"};
}

template <typename T>
class Completion {
 public:
  // Future mode: the result is read through future().
  Completion() = default;
  // Callback mode: `callback` receives the result. Exceptions it throws are swallowed, since
  // it runs on the I/O thread where nobody could handle them.
  explicit Completion(std::function<void(Result<T>)> callback) : callback_(std::move(callback)) {}

  Completion(const Completion&) = delete;
  Completion& operator=(const Completion&) = delete;
  Completion(Completion&& other) noexcept
      : promise_(std::move(other.promise_)),
        callback_(std::move(other.callback_)),
        done_(std::exchange(other.done_, true)) {}
  Completion& operator=(Completion&&) = delete;

  ~Completion() {
    if (!done_) complete(disconnectedError());
  }

  // Precondition: future mode, called at most once.
  std::future<Result<T>> future() { return promise_.get_future(); }

  // Completes with `result`; later calls do nothing.
  void complete(Result<T> result) {
    if (done_) return;
    done_ = true;
    if (callback_) {
      auto callback = std::move(callback_);
      try {
        callback(std::move(result));
      } catch (...) {
        // See the constructor: there is no caller to give this to.
      }
    } else {
      promise_.set_value(std::move(result));
    }
  }

 private:
  std::promise<Result<T>> promise_;
  std::function<void(Result<T>)> callback_;
  bool done_ = false;
};

// Returns `timeout` clamped so that now() + timeout cannot overflow a steady_clock time point
// (std::chrono::milliseconds::max() means "wait forever" in practice).
inline std::chrono::milliseconds saturatedTimeout(std::chrono::milliseconds timeout) {
  constexpr std::chrono::milliseconds kLongest = std::chrono::hours(24 * 365 * 50);
  return std::clamp(timeout, std::chrono::milliseconds(0), kLongest);
}

// Waits for `future` at most `timeout`; kTimeout if it did not complete. `what` names the call
// in the timeout message.
template <typename T>
Result<T> awaitResult(std::future<Result<T>>& future, std::chrono::milliseconds timeout,
                      const char* what) {
  if (future.wait_for(saturatedTimeout(timeout)) != std::future_status::ready) {
    return Error{ErrorCode::kTimeout, std::string(what) + " got no answer from the broker within " +
                                          std::to_string(timeout.count()) + " ms"};
  }
  return future.get();
}

}  // namespace sluice::detail
