#include "support/etcd_cluster.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>
#include <chrono>
#include <stdexcept>
#include <thread>

#include "support/child_process.h"
#include "support/http_get.h"

namespace sluice::test {

int freeLoopbackPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket() failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot bind a loopback port");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

EtcdCluster::EtcdCluster(int members) {
  members_.resize(static_cast<size_t>(members));
  log_ = dir_.path() + "/etcd.log";
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (start(attempt, log_)) return;
  }
  throw std::runtime_error("etcd did not start in three attempts; see " + log_);
}

void EtcdCluster::spawn(Member& member, int logFd) {
  try {
    member.pid = detail::spawn(member.argv, detail::currentEnvironment(), {-1, logFd, logFd});
  } catch (const std::exception& e) {
    ::close(logFd);
    throw std::runtime_error(std::string("cannot start etcd (Debian's etcd-server): ") + e.what());
  }
}

void EtcdCluster::restart(int member) {
  Member& m = members_[static_cast<size_t>(member)];
  if (m.pid > 0) return;
  int logFd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (logFd < 0) throw std::runtime_error("cannot open " + log_);
  spawn(m, logFd);  // Its data dir holds the cluster it belongs to; --initial-* are ignored.
  ::close(logFd);
}

bool EtcdCluster::start(int attempt, const std::string& log) {
  std::string initial;
  for (size_t i = 0; i < members_.size(); ++i) {
    members_[i].clientPort = freeLoopbackPort();
    members_[i].peerPort = freeLoopbackPort();
    if (!initial.empty()) initial += ",";
    initial +=
        "m" + std::to_string(i) + "=http://127.0.0.1:" + std::to_string(members_[i].peerPort);
  }
  int logFd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (logFd < 0) throw std::runtime_error("cannot open " + log);
  std::string dataDir = dir_.path() + "/attempt" + std::to_string(attempt);
  for (size_t i = 0; i < members_.size(); ++i) {
    std::string client = "http://127.0.0.1:" + std::to_string(members_[i].clientPort);
    std::string peer = "http://127.0.0.1:" + std::to_string(members_[i].peerPort);
    members_[i].argv = {
        "etcd",
        "--name=m" + std::to_string(i),
        "--data-dir=" + dataDir + "/m" + std::to_string(i),
        "--listen-client-urls=" + client,
        "--advertise-client-urls=" + client,
        "--listen-peer-urls=" + peer,
        "--initial-advertise-peer-urls=" + peer,
        "--initial-cluster=" + initial,
        "--initial-cluster-token=sluice-test",
        "--initial-cluster-state=new",
        "--heartbeat-interval=50",
        "--election-timeout=500",
        "--log-level=warn",
    };
    spawn(members_[i], logFd);
  }
  ::close(logFd);
  auto stopAll = [&] {
    for (size_t i = 0; i < members_.size(); ++i)
      kill(static_cast<int>(i));
    return false;
  };
  // Healthy: every member answers /health with "true" (it has a leader and can serve).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (auto& member : members_) {
    for (;;) {
      try {
        HttpReply reply = httpGet(member.clientPort, "/health");
        if (reply.status == 200 && reply.body.find("\"true\"") != std::string::npos) break;
      } catch (const std::exception&) {
        // Not listening yet.
      }
      for (auto& any : members_) {
        int status = 0;
        if (any.pid > 0 && ::waitpid(any.pid, &status, WNOHANG) == any.pid) {
          any.pid = -1;  // Exited: its ports were taken, most likely.
          return stopAll();
        }
      }
      if (std::chrono::steady_clock::now() > deadline) {
        stopAll();
        throw std::runtime_error("etcd did not become healthy in 30 s; see " + log);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  return true;
}

EtcdCluster::~EtcdCluster() {
  for (size_t i = 0; i < members_.size(); ++i) {
    if (members_[i].pid > 0) kill(static_cast<int>(i));
  }
}

std::vector<std::string> EtcdCluster::endpoints() const {
  std::vector<std::string> out;
  for (const auto& member : members_)
    out.push_back("127.0.0.1:" + std::to_string(member.clientPort));
  return out;
}

void EtcdCluster::kill(int member) {
  Member& m = members_[static_cast<size_t>(member)];
  if (m.pid <= 0) return;
  ::kill(m.pid, SIGKILL);
  detail::waitWithDeadline(m.pid, std::chrono::seconds(10));
  m.pid = -1;
}

}  // namespace sluice::test
