#pragma once

// The Cap'n Proto servers. Each validates what only the wire can get wrong, calls core, and maps
// the result to the wire once. Thread: kj.

#include <memory>
#include <string>
#include <type_traits>

#include <capnp/capability.h>
#include <kj/async-io.h>
#include <kj/async.h>

#include "common/log.h"
#include "core/broker.h"
#include "sluice/schemas/rpc.capnp.h"

namespace sluice::rpc {

// What the services of one connection share.
struct ConnectionInfo {
  std::string peer;
  uint32_t subscriptions = 0;
  kj::Timer* timer = nullptr;  // Holds the answers to a peer that keeps failing to authenticate.
};

struct ServiceLimits {
  uint32_t maxSubscriptionsPerConnection = 1024;
};

// The bootstrap capability of one connection (as `identity`: anonymous when authentication is
// off, else not authenticated or its certificate's principal), and the capability that
// authenticate() answers. Every call is checked against the identity's rights.
class BrokerService final : public wire::Broker::Server {
 public:
  // `lowLevelIo` reads the pipe of Admin.backup; null: backup answers kStorageFailed.
  BrokerService(core::Broker& broker, std::shared_ptr<ConnectionInfo> connection,
                ServiceLimits limits, kj::LowLevelAsyncIoProvider* lowLevelIo = nullptr,
                core::Identity identity = anonymous());

  static core::Identity anonymous() {
    core::Identity identity;
    identity.anonymous = true;
    identity.principal = "anonymous";
    return identity;
  }

 protected:
  kj::Promise<void> publish(PublishContext context) override;
  kj::Promise<void> subscribe(SubscribeContext context) override;
  kj::Promise<void> admin(AdminContext context) override;
  kj::Promise<void> publishSubject(PublishSubjectContext context) override;
  kj::Promise<void> authenticate(AuthenticateContext context) override;
  kj::Promise<void> auth(AuthContext context) override;
  kj::Promise<void> hello(HelloContext context) override;

 private:
  Status allowed(uint8_t action, std::string_view topic);

  // The batch's messages, copied out of the request once its count and header counts are
  // checked (before anything is copied).
  Result<std::vector<MessageData>> copyMessages(
      capnp::List<wire::PublishMessage>::Reader list) const;

  core::Broker& broker_;
  std::shared_ptr<ConnectionInfo> connection_;
  ServiceLimits limits_;
  kj::LowLevelAsyncIoProvider* lowLevelIo_;
  core::Identity identity_;
};

class AdminService final : public wire::Admin::Server {
 public:
  AdminService(core::Broker& broker, kj::LowLevelAsyncIoProvider* lowLevelIo,
               core::Identity identity)
      : broker_(broker), lowLevelIo_(lowLevelIo), identity_(std::move(identity)) {}

 protected:
  kj::Promise<void> createTopic(CreateTopicContext context) override;
  kj::Promise<void> listTopics(ListTopicsContext context) override;
  kj::Promise<void> describeTopic(DescribeTopicContext context) override;
  kj::Promise<void> deleteTopic(DeleteTopicContext context) override;
  kj::Promise<void> purgeTopic(PurgeTopicContext context) override;
  kj::Promise<void> createGroup(CreateGroupContext context) override;
  kj::Promise<void> listGroups(ListGroupsContext context) override;
  kj::Promise<void> describeGroup(DescribeGroupContext context) override;
  kj::Promise<void> resetGroup(ResetGroupContext context) override;
  kj::Promise<void> deleteGroup(DeleteGroupContext context) override;
  kj::Promise<void> peek(PeekContext context) override;
  kj::Promise<void> stats(StatsContext context) override;
  kj::Promise<void> backup(BackupContext context) override;
  kj::Promise<void> changeSubjects(ChangeSubjectsContext context) override;
  kj::Promise<void> route(RouteContext context) override;
  kj::Promise<void> clusterStatus(ClusterStatusContext context) override;

 private:
  // ok, or the refusal (auth.h) of `actions` on `topic` (any of them).
  Status allowed(uint8_t actions, std::string_view topic);
  core::Broker& broker_;
  kj::LowLevelAsyncIoProvider* lowLevelIo_;
  core::Identity identity_;
};

// Principals and credentials (core/auth.h), as the identity may manage them.
class AuthService final : public wire::Auth::Server {
 public:
  AuthService(core::Broker& broker, core::Identity identity)
      : broker_(broker), identity_(std::move(identity)) {}

 protected:
  kj::Promise<void> whoami(WhoamiContext context) override;
  kj::Promise<void> putPrincipal(PutPrincipalContext context) override;
  kj::Promise<void> deletePrincipal(DeletePrincipalContext context) override;
  kj::Promise<void> listPrincipals(ListPrincipalsContext context) override;
  kj::Promise<void> createToken(CreateTokenContext context) override;
  kj::Promise<void> mintGrant(MintGrantContext context) override;
  kj::Promise<void> revoke(RevokeContext context) override;
  kj::Promise<void> listCredentials(ListCredentialsContext context) override;

 private:
  core::Broker& broker_;
  core::Identity identity_;
};

// Logs an exception escaping `body` in full and hands the client a short one of the same type.
template <typename Body>
kj::Promise<void> guarded(const char* method, Body&& body) {
  auto run = [&body]() -> kj::Promise<void> {
    if constexpr (std::is_void_v<decltype(body())>) {
      body();
      return kj::READY_NOW;
    } else {
      return body();
    }
  };
  return kj::evalNow(run).catch_([method](kj::Exception&& e) -> kj::Promise<void> {
    namedLog("rpc")->error("{} failed: {}", method, e.getDescription().cStr());
    return kj::Exception(e.getType(), __FILE__, __LINE__,
                         kj::str("internal error in ", method, "; see broker log"));
  });
}

}  // namespace sluice::rpc
