#include "exec.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string_view>
#include <thread>
#include <vector>

extern char** environ;

namespace sluice::cli {
namespace {

// The environment of the job: this process's, with the message's fields added.
std::vector<std::string> jobEnvironment(const Message& message) {
  static constexpr std::string_view kOurs[] = {
      "SLUICE_TOPIC=",        "SLUICE_SUBJECT=", "SLUICE_OFFSET=", "SLUICE_DELIVERIES=",
      "SLUICE_TIMESTAMP_MS=", "SLUICE_KEY=",     "SLUICE_ID="};
  std::vector<std::string> env;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    std::string_view variable(*entry);
    bool ours = false;
    for (std::string_view name : kOurs)
      ours = ours || variable.rfind(name, 0) == 0;
    if (!ours) env.emplace_back(variable);
  }
  env.push_back("SLUICE_TOPIC=" + message.topic());
  env.push_back("SLUICE_SUBJECT=" + message.subject());
  env.push_back("SLUICE_OFFSET=" + std::to_string(message.offset()));
  env.push_back("SLUICE_DELIVERIES=" + std::to_string(message.deliveries()));
  env.push_back("SLUICE_TIMESTAMP_MS=" + std::to_string(message.timestampMs()));
  auto printable = [](const std::string& text) { return text.find('\0') == std::string::npos; };
  if (message.key() && printable(*message.key())) env.push_back("SLUICE_KEY=" + *message.key());
  if (!message.id().empty() && printable(message.id())) env.push_back("SLUICE_ID=" + message.id());
  return env;
}

// Writes `payload` to `fd` and closes it; a command that exits without reading is no error.
void feed(int fd, const std::string& payload) {
  size_t done = 0;
  while (done < payload.size()) {
    ssize_t n = ::write(fd, payload.data() + done, payload.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EPIPE: the command closed its stdin.
    done += static_cast<size_t>(n);
  }
  ::close(fd);
}

}  // namespace

JobOutcome runJob(const std::string& command, const Message& message,
                  std::chrono::milliseconds renewEvery) {
  JobOutcome outcome;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    outcome.startProblem = std::string("pipe: ") + ::strerror(errno);
    return outcome;
  }
  // A command that does not read its stdin must not kill this process with SIGPIPE; the
  // command itself gets the default disposition back.
  ::signal(SIGPIPE, SIG_IGN);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[0], STDIN_FILENO);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setsigdefault(&attributes, &defaults);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGDEF);

  std::vector<std::string> env = jobEnvironment(message);
  std::vector<char*> envp;
  for (std::string& entry : env)
    envp.push_back(entry.data());
  envp.push_back(nullptr);
  std::string shell = "/bin/sh", dashC = "-c", script = command;
  char* argv[] = {shell.data(), dashC.data(), script.data(), nullptr};
  pid_t pid = 0;
  int spawned = ::posix_spawn(&pid, shell.c_str(), &actions, &attributes, argv, envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  ::close(fds[0]);
  if (spawned != 0) {
    ::close(fds[1]);
    outcome.startProblem = "cannot run /bin/sh: " + std::string(::strerror(spawned));
    return outcome;
  }

  std::thread feeder(feed, fds[1], std::cref(message.payload()));
  std::mutex mu;
  std::condition_variable wake;
  bool exited = false;
  std::thread renewer([&] {
    std::unique_lock<std::mutex> lock(mu);
    while (!wake.wait_for(lock, renewEvery, [&] { return exited; })) {
      lock.unlock();
      Result<void> renewed = message.inProgress();
      lock.lock();
      if (!renewed.ok()) {
        outcome.renewFailure = renewed.error();
        return;  // The message is no longer this consumer's to keep.
      }
    }
  });
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    exited = true;
  }
  wake.notify_all();
  renewer.join();
  feeder.join();
  outcome.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return outcome;
}

}  // namespace sluice::cli
