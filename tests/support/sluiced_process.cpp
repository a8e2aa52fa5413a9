#include "support/sluiced_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <exception>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>

#include <catch2/catch.hpp>

#include "support/child_process.h"
#include "support/run_process.h"

namespace sluice::test {
namespace {

constexpr auto kReadyTimeout = std::chrono::seconds(20);
constexpr auto kExitTimeout = std::chrono::seconds(20);

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string tail(const std::string& text, size_t bytes = 4000) {
  return text.size() <= bytes ? text : "..." + text.substr(text.size() - bytes);
}

// The value of `key=<digits>` in a whitespace-separated line, or 0.
int portField(const std::string& line, const std::string& key) {
  std::istringstream words(line);
  std::string word;
  while (words >> word) {
    if (word.rfind(key + "=", 0) == 0) {
      try {
        return std::stoi(word.substr(key.size() + 1));
      } catch (const std::exception&) {
        return 0;
      }
    }
  }
  return 0;
}

bool hasOption(const std::vector<std::string>& args, const std::string& name) {
  for (const auto& arg : args) {
    if (arg == name || arg.rfind(name + "=", 0) == 0) return true;
  }
  return false;
}

// The flag that sets this sluiced's admin HTTP address, or "" when it has none. Asked once.
const std::string& adminFlag() {
  static const std::string flag = [] {
    std::string help;
    try {
      auto result = runProcess({sluicedPath(), "--help"}, "", {}, std::chrono::seconds(10));
      help = result.stdoutText + result.stderrText;
    } catch (const std::exception&) {
      return std::string();
    }
    for (const char* candidate : {"--admin-listen", "--admin"}) {
      auto at = help.find(candidate);
      if (at == std::string::npos) continue;
      auto end = at + std::strlen(candidate);
      // Whole word only: "--admin" must not match "--admin-token".
      if (end < help.size() && (std::isalnum(static_cast<unsigned char>(help[end])) ||
                                help[end] == '-' || help[end] == '_')) {
        continue;
      }
      return std::string(candidate);
    }
    return std::string();
  }();
  return flag;
}

}  // namespace

std::string sluicedPath() {
  return SLUICED_PATH;
}

std::string sluiceCliPath() {
#ifdef SLUICE_CLI_PATH
  return SLUICE_CLI_PATH;
#else
  throw std::runtime_error("this build has no sluice CLI (no sluice_cli target)");
#endif
}

std::unique_ptr<SluicedProcess> SluicedProcess::start(const std::string& dataDir,
                                                      std::vector<std::string> extraArgs) {
  std::unique_ptr<SluicedProcess> process(new SluicedProcess());
  process->dataDir_ = dataDir;
  process->stderrPath_ = process->logDir_.path() + "/sluiced.stderr";

  std::vector<std::string> argv = {sluicedPath()};
  auto addDefault = [&](const std::string& name, const std::string& value) {
    if (!hasOption(extraArgs, name)) {
      argv.push_back(name);
      argv.push_back(value);
    }
  };
  addDefault("--data", dataDir);
  addDefault("--listen", "127.0.0.1:0");
  addDefault("--log-level", "warn");
  if (!adminFlag().empty()) addDefault(adminFlag(), "127.0.0.1:0");
  argv.insert(argv.end(), extraArgs.begin(), extraArgs.end());
  std::string commandLine;
  for (const auto& arg : argv)
    commandLine += (commandLine.empty() ? "" : " ") + arg;

  int errFd = ::open(process->stderrPath_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (errFd < 0) {
    throw std::runtime_error("cannot create " + process->stderrPath_ + ": " + std::strerror(errno));
  }
  int out[2];
  try {
    detail::makePipe(out);
  } catch (...) {
    ::close(errFd);
    throw;
  }
  try {
    process->pid_ = detail::spawn(argv, detail::currentEnvironment(), {-1, out[1], errFd});
  } catch (...) {
    ::close(errFd);
    ::close(out[0]);
    ::close(out[1]);
    throw;
  }
  ::close(errFd);
  ::close(out[1]);
  process->stdoutFd_ = out[0];

  // Read stdout until the ready line, the child's exit (EOF) or the deadline.
  auto deadline = std::chrono::steady_clock::now() + kReadyTimeout;
  std::string received;  // Not yet parsed.
  std::string everything;
  std::string problem;
  while (true) {
    auto newline = received.find('\n');
    if (newline != std::string::npos) {
      std::string line = received.substr(0, newline);
      if (line.rfind("ready ", 0) == 0) {
        process->rpcPort_ = portField(line, "rpc");
        process->adminPort_ = portField(line, "admin");
        process->tlsPort_ = portField(line, "tls");
        process->replicationPort_ = portField(line, "replication");
        // A static follower serves no clients ("ready follower=<id>"), and a cluster member
        // ("ready broker=<id> cluster=<id>") listens on its fixed port, serving only while it
        // leads.
        bool noClients =
            line.rfind("ready follower=", 0) == 0 || line.rfind("ready broker=", 0) == 0;
        if (process->rpcPort_ <= 0 && !noClients) problem = "malformed ready line: " + line;
        break;
      }
      received.erase(0, newline + 1);  // Anything else on stdout is not ours to judge here.
      continue;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      problem = "no ready line within 20 s";
      break;
    }
    pollfd fd{process->stdoutFd_, POLLIN, 0};
    int ready = ::poll(&fd, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno != EINTR) {
      problem = std::string("poll failed: ") + std::strerror(errno);
      break;
    }
    if (ready <= 0) continue;
    char buffer[4096];
    ssize_t n = ::read(process->stdoutFd_, buffer, sizeof buffer);
    if (n > 0) {
      received.append(buffer, static_cast<size_t>(n));
      everything.append(buffer, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      problem = "sluiced exited before printing its ready line";
      break;
    }
  }
  {
    std::lock_guard<std::mutex> lock(process->stdoutMu_);
    process->stdout_ = everything;
  }
  if (!problem.empty()) {
    int status = process->kill(SIGKILL);
    process->logOnUnwind_ = false;
    throw std::runtime_error(problem + " (" + commandLine + "; wait status " +
                             std::to_string(status) + ")\nstderr:\n" + tail(process->stderrText()));
  }
  // Keep reading so that the child can never block on a full stdout pipe.
  process->stdoutDrainer_ = std::thread([p = process.get()] { p->drainStdout(); });
  return process;
}

void SluicedProcess::drainStdout() {
  char buffer[4096];
  while (true) {
    ssize_t n = ::read(stdoutFd_, buffer, sizeof buffer);
    if (n > 0) {
      std::lock_guard<std::mutex> lock(stdoutMu_);
      stdout_.append(buffer, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      return;
    }
  }
}

SluicedProcess::~SluicedProcess() {
  if (std::uncaught_exceptions() > 0 && logOnUnwind_ && pid_ > 0) {
    std::cerr << "---- sluiced (pid " << pid_ << ", data " << dataDir_ << ") stderr tail ----\n"
              << tail(stderrText()) << "\n---- end of sluiced stderr ----" << std::endl;
  }
  if (pid_ > 0 && !reaped_) {
    ::kill(pid_, SIGKILL);
    int status;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  // The child is gone, so the drainer sees EOF.
  if (stdoutDrainer_.joinable()) stdoutDrainer_.join();
  if (stdoutFd_ >= 0) ::close(stdoutFd_);
}

std::string SluicedProcess::address() const {
  return "127.0.0.1:" + std::to_string(rpcPort_);
}

int SluicedProcess::kill(int signal) {
  if (reaped_) return waitStatus_;
  ::kill(pid_, signal);
  waitStatus_ = detail::waitWithDeadline(pid_, kExitTimeout);
  reaped_ = true;
  return waitStatus_;
}

int SluicedProcess::stop() {
  return detail::exitCodeOf(kill(SIGTERM));
}

bool SluicedProcess::running() {
  if (reaped_) return false;
  int status;
  pid_t done = ::waitpid(pid_, &status, WNOHANG);
  if (done == pid_) {
    reaped_ = true;
    waitStatus_ = status;
    return false;
  }
  return true;
}

std::string SluicedProcess::stderrText() const {
  return readFile(stderrPath_);
}

std::string SluicedProcess::stdoutText() const {
  std::lock_guard<std::mutex> lock(stdoutMu_);
  return stdout_;
}

sluice::Client connectTo(const SluicedProcess& broker, sluice::Options options) {
  auto client = sluice::Client::connect(broker.address(), options);
  INFO("connecting to sluiced at " << broker.address() << ": "
                                   << (client.ok() ? "ok" : client.error().toString()));
  REQUIRE(client.ok());
  return std::move(client).value();
}

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return condition();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace sluice::test
