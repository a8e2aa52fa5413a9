#pragma once

// detail::Connection: one connection to a broker and the I/O thread that runs it.
//
// The I/O thread owns a KJ event loop, the socket, the Cap'n Proto RPC system and every
// capability; nothing KJ is touched from any other thread. Other threads hand it work as
// Commands through a mutex-protected queue and ring a doorbell (a cross-thread fulfiller the
// loop waits on), so queueing never blocks on network work. Results come back through
// Completion<T> (completion.h).
//
// Lifetime: user-facing handles (Client, Admin, Producer::State, SubscriptionState) share one
// std::shared_ptr<Connection> whose deleter closes the connection and joins the I/O thread.
// The I/O thread itself never holds that pointer, except transiently through user callbacks;
// if the last handle is dropped on the I/O thread, the thread finishes tearing down and then
// deletes the Connection itself (it cannot join itself).
//
// Thread: any, unless a method says otherwise.

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <kj/async.h>

#include "completion.h"
#include "sluice/client.h"

namespace sluice::detail {

struct IoState;

// A unit of work for the I/O thread. If the connection closes before it runs, it is destroyed
// unrun, which completes every Completion it holds with kDisconnected.
using Command = std::function<void(IoState&)>;

// Checks `hostPort` ("host:port", "[v6]:port"); returns the problem, or nothing when usable.
std::optional<std::string> checkAddress(std::string_view hostPort);

class Connection {
 public:
  // Connects to `hostPorts` (one "host:port", or several separated by commas: the first that
  // accepts), authenticates with options.token when it is set, and waits for the broker's
  // first answer, each within options.connectTimeout. With several, a connection lost later is
  // made again (Options::reconnectFor). Errors: kInvalidArgument (malformed address, unusable
  // TLS files), kConnectFailed, and the broker's refusal of the token (kUnauthenticated).
  static Result<std::shared_ptr<Connection>> open(std::string_view hostPorts,
                                                  const Options& options);

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Queues `command` for the I/O thread and returns at once. Returns false once the connection
  // is closed; `command` is then destroyed unrun, on this thread.
  bool post(Command command);

  // Runs `start(IoState&) -> kj::Promise<Result<T>>` on the I/O thread and waits for its
  // result at most Options::callTimeout (kTimeout). `what` names the call in errors.
  // Not from the I/O thread (it would wait on itself): that returns kInvalidArgument.
  template <typename T, typename Start>
  Result<T> call(const char* what, Start start);
  // As call(), without waiting: `completion` receives the result. From any thread.
  template <typename T, typename Start>
  void callAsync(Start start, Completion<T> completion);

  // Waits for `future` at most Options::callTimeout; kTimeout if it is not ready by then.
  template <typename T>
  Result<T> await(std::future<Result<T>>& future, const char* what) const {
    return awaitResult(future, options_.callTimeout, what);
  }

  // Error for a blocking call made on the I/O thread, or nothing when the caller may block.
  std::optional<Error> checkMayBlock(const char* what) const;

  // Closes the connection: queued and outstanding work completes with kDisconnected, later
  // work is refused. Idempotent. Waits for the I/O thread unless called on it.
  void close();
  // True between a successful open() and the connection's end, except while it reconnects.
  bool connected() const { return alive_.load(std::memory_order_acquire); }
  const Options& options() const { return options_; }
  // A fresh id for a producer or subscription; unique within this connection.
  uint64_t newId() { return nextId_.fetch_add(1, std::memory_order_relaxed); }
  bool onIoThread() const { return std::this_thread::get_id() == ioThreadId_; }

 private:
  explicit Connection(Options options);
  ~Connection();
  // The deleter of the shared handle; see the file comment.
  static void release(Connection* connection);

  // Thread: kj (the I/O thread's entry point). Connects, announces the outcome through
  // `ready`, serves commands until stopped or disconnected, then tears down.
  void run(std::vector<std::string> addresses, std::promise<Result<void>> ready);
  // Thread: kj. Runs every queued command each time the doorbell rings, until stopped.
  kj::Promise<void> serve(IoState& state, kj::Promise<void> doorbell);
  // Thread: kj; mu_ held. A fresh doorbell for post() to ring.
  kj::Promise<void> armDoorbellLocked();
  // Thread: kj. Refuses further work and completes the queued commands with kDisconnected.
  // Idempotent.
  void refuseWork();
  // Asks the I/O thread to stop after the commands already queued.
  void requestStop();

  const Options options_;
  // Options::tls read and parsed by open(), on the caller's thread, so that a bad file is an
  // error of open() rather than of the connection. Used by the I/O thread only afterwards.
  struct Tls;
  std::unique_ptr<Tls> tls_;
  std::thread::id ioThreadId_;  // Set before open() returns; constant afterwards.
  std::atomic<bool> alive_{false};
  std::atomic<uint64_t> nextId_{1};

  std::mutex mu_;  // Guards the fields below it.
  std::vector<Command> queue_;
  const kj::CrossThreadPromiseFulfiller<void>* doorbell_ = nullptr;
  bool rung_ = false;
  bool stopRequested_ = false;  // No more commands are accepted.
  bool deleteOnExit_ = false;   // The last handle was dropped on the I/O thread.
  // Fulfilled by requestStop(): ends a connection attempt or a pause between them.
  const kj::CrossThreadPromiseFulfiller<void>* stopper_ = nullptr;

  // Thread: kj. Owns the fulfiller doorbell_ points to.
  kj::Own<kj::CrossThreadPromiseFulfiller<void>> doorbellOwner_;
  kj::Own<kj::CrossThreadPromiseFulfiller<void>> stopperOwner_;

  std::mutex joinMu_;  // Serializes join/detach of thread_.
  std::thread thread_;
};

}  // namespace sluice::detail

#include "io_state.h"

namespace sluice::detail {

template <typename T, typename Start>
Result<T> Connection::call(const char* what, Start start) {
  if (auto problem = checkMayBlock(what)) return *problem;
  Completion<T> completion;
  auto future = completion.future();
  callAsync(std::move(start), std::move(completion));
  return await(future, what);
}

template <typename T, typename Start>
void Connection::callAsync(Start start, Completion<T> completion) {
  // Shared: a command is copyable. Dropped unrun (the connection closed), it completes with
  // kDisconnected.
  auto shared = std::make_shared<Completion<T>>(std::move(completion));
  post([start = std::move(start), completion = std::move(shared)](IoState& state) mutable {
    state.track<T>(kj::evalNow([&] { return start(state); }), std::move(*completion));
  });
}

}  // namespace sluice::detail
