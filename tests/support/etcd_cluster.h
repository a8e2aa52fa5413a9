#pragma once

// A real etcd cluster for tests: N members of Debian's etcd (etcd-server) on loopback, on free
// ports, each with its data in a fresh temporary directory, started together and stopped (or
// killed one by one) by the test. Throws std::runtime_error when etcd is missing or the cluster
// does not become healthy within 30 s.

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "support/temp_dir.h"

namespace sluice::test {

class EtcdCluster {
 public:
  explicit EtcdCluster(int members = 3);
  ~EtcdCluster();  // SIGKILLs what still runs.
  EtcdCluster(const EtcdCluster&) = delete;
  EtcdCluster& operator=(const EtcdCluster&) = delete;

  // "127.0.0.1:PORT" of each member's client URL.
  std::vector<std::string> endpoints() const;
  int clientPort(int member) const { return members_[member].clientPort; }
  // kill -9 of one member; waits for it to be gone.
  void kill(int member);
  // Starts a killed member again on its ports and data; does not wait for it to serve.
  void restart(int member);
  bool running(int member) const { return members_[member].pid > 0; }

 private:
  struct Member {
    int clientPort = 0;
    int peerPort = 0;
    pid_t pid = -1;
    std::vector<std::string> argv;
  };
  // Starts every member on new free ports under dir_/attempt<N>; false (all stopped) if one of
  // them exited, e.g. because another process took its port in the meantime.
  bool start(int attempt, const std::string& log);
  void spawn(Member& member, int logFd);
  TempDir dir_;
  std::string log_;
  std::vector<Member> members_;
};

// A TCP port on 127.0.0.1 that nothing listened on a moment ago.
int freeLoopbackPort();

}  // namespace sluice::test
