#pragma once

// A real `sluiced` child process for integration and CLI tests, and small helpers around it.
//
// Thread: a SluicedProcess is used from one test thread. The child gets PR_SET_PDEATHSIG
// (SIGKILL), which fires when the *thread* that started it exits, so start it from the thread
// that runs the test.

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <sluice/client.h>

#include "support/temp_dir.h"

namespace sluice::test {

// The sluiced binary built with the tests (SLUICED_PATH).
std::string sluicedPath();
// The `sluice` CLI binary built with the tests (SLUICE_CLI_PATH). Throws std::runtime_error
// when the build has no CLI target.
std::string sluiceCliPath();

class SluicedProcess {
 public:
  // Starts `sluiced --data DIR --listen 127.0.0.1:0 --log-level warn <extraArgs>` (plus an
  // admin endpoint on port 0 when this sluiced has one, so no fixed port is ever used). An
  // option given in `extraArgs` replaces the default one of the same name. Waits up to 20 s
  // for the line "ready rpc=<port>[ admin=<port>]" (or a follower's "ready follower=<id>") on
  // the child's stdout. Its stderr goes to
  // a file in a temp dir owned by this object. Throws std::runtime_error carrying the stderr
  // tail if the child exits or the wait times out first.
  static std::unique_ptr<SluicedProcess> start(const std::string& dataDir,
                                               std::vector<std::string> extraArgs = {});
  // SIGKILL and reap if still running. While a test is failing (an exception is unwinding),
  // also prints the tail of the broker's stderr to std::cerr.
  ~SluicedProcess();
  SluicedProcess(const SluicedProcess&) = delete;
  SluicedProcess& operator=(const SluicedProcess&) = delete;

  int rpcPort() const { return rpcPort_; }
  // The admin HTTP port from the ready line; 0 when the broker printed none.
  int adminPort() const { return adminPort_; }
  // The TLS listener's port from the ready line; 0 when the broker has none.
  int tlsPort() const { return tlsPort_; }
  // The replication port (a leader's replication_listen) from the ready line; 0: none. A
  // follower's ready line ("ready follower=<id>") has no port at all.
  int replicationPort() const { return replicationPort_; }
  // "127.0.0.1:<rpcPort>".
  std::string address() const;
  pid_t pid() const { return pid_; }
  const std::string& dataDir() const { return dataDir_; }

  // Sends `signal`, waits up to 20 s for the child to exit (then SIGKILLs it) and returns
  // the raw wait status. Once the child has been reaped, returns that status again.
  int kill(int signal);
  // SIGTERM and wait; returns the exit code (WEXITSTATUS), or 128 + signal number.
  int stop();
  // True while the child has not exited (reaps it if it has).
  bool running();

  // Everything the child wrote to stderr (its log) so far.
  std::string stderrText() const;
  // Everything the child wrote to stdout so far (the ready line and anything after it).
  std::string stdoutText() const;

 private:
  SluicedProcess() = default;
  void drainStdout();

  TempDir logDir_;
  std::string dataDir_;
  std::string stderrPath_;
  pid_t pid_ = -1;
  bool reaped_ = false;
  bool logOnUnwind_ = true;  // False when start() already put the log in its exception.
  int waitStatus_ = 0;
  int rpcPort_ = 0;
  int adminPort_ = 0;
  int tlsPort_ = 0;
  int replicationPort_ = 0;
  int stdoutFd_ = -1;
  std::thread stdoutDrainer_;
  mutable std::mutex stdoutMu_;
  std::string stdout_;
};

// Connects a client to `broker`, REQUIREing success.
sluice::Client connectTo(const SluicedProcess& broker, sluice::Options options = {});

// Polls `condition` every few milliseconds until it returns true or `timeout` passes; returns
// its last value. Use it to await a condition instead of sleeping.
bool eventually(const std::function<bool()>& condition,
                std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace sluice::test
