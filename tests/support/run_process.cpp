#include "support/run_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "support/child_process.h"

namespace sluice::test {

RunResult runProcess(std::vector<std::string> argv, std::string stdinData,
                     std::map<std::string, std::string> env, std::chrono::milliseconds timeout) {
  // A child that exits without reading its stdin must not kill us with SIGPIPE.
  ::signal(SIGPIPE, SIG_IGN);

  std::vector<std::string> environment;
  for (auto& entry : detail::currentEnvironment()) {
    auto eq = entry.find('=');
    if (env.count(entry.substr(0, eq)) == 0) environment.push_back(std::move(entry));
  }
  for (const auto& [key, value] : env)
    environment.push_back(key + "=" + value);

  int in[2], out[2], err[2];
  detail::makePipe(in);
  detail::makePipe(out);
  detail::makePipe(err);
  pid_t pid;
  try {
    pid = detail::spawn(argv, environment, {in[0], out[1], err[1]});
  } catch (...) {
    for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]})
      ::close(fd);
    throw;
  }
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  ::fcntl(in[1], F_SETFL, O_NONBLOCK);

  RunResult result;
  int stdinFd = in[1];
  size_t written = 0;
  if (stdinData.empty()) {
    ::close(stdinFd);
    stdinFd = -1;
  }
  int readFds[2] = {out[0], err[0]};
  std::string* sinks[2] = {&result.stdoutText, &result.stderrText};
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (readFds[0] >= 0 || readFds[1] >= 0 || stdinFd >= 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      result.timedOut = true;
      break;
    }
    pollfd fds[3] = {{readFds[0], POLLIN, 0}, {readFds[1], POLLIN, 0}, {stdinFd, POLLOUT, 0}};
    int ready = ::poll(fds, 3, static_cast<int>(left.count()));
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (readFds[i] < 0 || fds[i].revents == 0) continue;
      char buffer[65536];
      ssize_t n = ::read(readFds[i], buffer, sizeof buffer);
      if (n > 0) {
        sinks[i]->append(buffer, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        ::close(readFds[i]);
        readFds[i] = -1;
      }
    }
    if (stdinFd >= 0 && fds[2].revents != 0) {
      ssize_t n = ::write(stdinFd, stdinData.data() + written, stdinData.size() - written);
      if (n > 0) written += static_cast<size_t>(n);
      if ((n < 0 && errno != EAGAIN && errno != EINTR) || written == stdinData.size()) {
        ::close(stdinFd);
        stdinFd = -1;
      }
    }
  }
  for (int fd : {readFds[0], readFds[1], stdinFd}) {
    if (fd >= 0) ::close(fd);
  }
  if (result.timedOut) {
    ::kill(pid, SIGKILL);
    detail::waitWithDeadline(pid, std::chrono::seconds(10));
    result.exitCode = -1;
    return result;
  }
  // Output is closed; the child exits now (or soon, if it closed its stdout early).
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  int status = detail::waitWithDeadline(pid, std::max(left, std::chrono::milliseconds(1)));
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL &&
      std::chrono::steady_clock::now() >= deadline) {
    result.timedOut = true;
    result.exitCode = -1;
    return result;
  }
  result.exitCode = detail::exitCodeOf(status);
  return result;
}

}  // namespace sluice::test
