#pragma once

// The Cap'n Proto servers. Each validates what only the wire can get wrong, calls core, and maps
// the result to the wire once. Thread: kj.

#include <memory>
#include <string>

#include <capnp/capability.h>
#include <kj/async-io.h>
#include <kj/async.h>

#include "core/broker.h"
#include "sluice/schemas/rpc.capnp.h"

namespace sluice::rpc {

// What the services of one connection share.
struct ConnectionInfo {
  std::string peer;
  uint32_t subscriptions = 0;
};

struct ServiceLimits {
  uint32_t maxSubscriptionsPerConnection = 1024;
};

// The bootstrap capability of one connection.
class BrokerService final : public wire::Broker::Server {
 public:
  // `lowLevelIo` reads the pipe of Admin.backup; null: backup answers kStorageFailed.
  BrokerService(core::Broker& broker, std::shared_ptr<ConnectionInfo> connection,
                ServiceLimits limits, kj::LowLevelAsyncIoProvider* lowLevelIo = nullptr);

 protected:
  kj::Promise<void> publish(PublishContext context) override;
  kj::Promise<void> subscribe(SubscribeContext context) override;
  kj::Promise<void> admin(AdminContext context) override;
  kj::Promise<void> publishSubject(PublishSubjectContext context) override;

 private:
  // The batch's messages, copied out of the request once its count and header counts are
  // checked (before anything is copied).
  Result<std::vector<MessageData>> copyMessages(
      capnp::List<wire::PublishMessage>::Reader list) const;

  core::Broker& broker_;
  std::shared_ptr<ConnectionInfo> connection_;
  ServiceLimits limits_;
  kj::LowLevelAsyncIoProvider* lowLevelIo_;
};

class AdminService final : public wire::Admin::Server {
 public:
  explicit AdminService(core::Broker& broker, kj::LowLevelAsyncIoProvider* lowLevelIo = nullptr)
      : broker_(broker), lowLevelIo_(lowLevelIo) {}

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

 private:
  core::Broker& broker_;
  kj::LowLevelAsyncIoProvider* lowLevelIo_;
};

}  // namespace sluice::rpc
