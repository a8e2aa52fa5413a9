#include "support/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace sluice::test::detail {
namespace {

std::vector<char*> cStrings(const std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (const auto& s : strings)
    out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

// Reports errno to the parent through `errorFd` and exits. Async-signal-safe.
[[noreturn]] void failChild(int errorFd) {
  int error = errno;
  ssize_t ignored = ::write(errorFd, &error, sizeof error);
  (void)ignored;
  ::_exit(127);
}

// Runs in the forked child: only async-signal-safe calls until exec.
[[noreturn]] void execChild(pid_t parent, char* const* argv, char* const* envp,
                            const ChildStdio& stdio, int devNull, int errorFd) {
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) failChild(errorFd);
  // The parent may have died between fork and prctl; then nobody would ever kill us.
  if (::getppid() != parent) ::_exit(127);
  // Ignored signals stay ignored across exec (KJ ignores SIGPIPE, for one): reset them all.
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig)
    ::sigaction(sig, &dfl, nullptr);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  const int fds[3] = {stdio.in, stdio.out, stdio.err};
  for (int target = 0; target < 3; ++target) {
    int source = fds[target] >= 0 ? fds[target] : devNull;
    if (::dup2(source, target) < 0) failChild(errorFd);  // dup2 clears FD_CLOEXEC on `target`.
  }
  ::execvpe(argv[0], argv, envp);
  failChild(errorFd);
}

}  // namespace

void makePipe(int fds[2]) {
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    throw std::runtime_error(std::string("pipe2 failed: ") + std::strerror(errno));
  }
}

std::vector<std::string> currentEnvironment() {
  std::vector<std::string> out;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    out.emplace_back(*entry);
  }
  return out;
}

pid_t spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env,
            const ChildStdio& stdio) {
  if (argv.empty()) throw std::runtime_error("spawn: empty argv");
  std::vector<char*> cArgv = cStrings(argv);
  std::vector<char*> cEnv = cStrings(env);
  int devNull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devNull < 0) throw std::runtime_error(std::string("open /dev/null: ") + std::strerror(errno));
  // The child reports a failed exec through this pipe; a successful exec closes it silently.
  int errorPipe[2];
  try {
    makePipe(errorPipe);
  } catch (...) {
    ::close(devNull);
    throw;
  }
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) execChild(parent, cArgv.data(), cEnv.data(), stdio, devNull, errorPipe[1]);
  int forkErrno = errno;
  ::close(devNull);
  ::close(errorPipe[1]);
  if (pid < 0) {
    ::close(errorPipe[0]);
    throw std::runtime_error(std::string("fork failed: ") + std::strerror(forkErrno));
  }
  int childErrno = 0;
  ssize_t n;
  do {
    n = ::read(errorPipe[0], &childErrno, sizeof childErrno);
  } while (n < 0 && errno == EINTR);
  ::close(errorPipe[0]);
  if (n > 0) {
    int status;
    ::waitpid(pid, &status, 0);
    throw std::runtime_error("cannot run " + argv[0] + ": " + std::strerror(childErrno));
  }
  return pid;
}

int waitWithDeadline(pid_t pid, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (true) {
    pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) return status;
    if (done < 0 && errno != EINTR) {
      throw std::runtime_error(std::string("waitpid failed: ") + std::strerror(errno));
    }
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ::kill(pid, SIGKILL);
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

int exitCodeOf(int waitStatus) {
  if (WIFEXITED(waitStatus)) return WEXITSTATUS(waitStatus);
  if (WIFSIGNALED(waitStatus)) return 128 + WTERMSIG(waitStatus);
  return -1;
}

}  // namespace sluice::test::detail
