// Admin: each method is one call on the broker's Admin capability, or on its Auth capability
// (Broker.auth, pipelined, so still one round trip).

#include <utility>

#include "connection.h"
#include "convert.h"

namespace sluice {
namespace {

using detail::asText;
using detail::fromWire;
using detail::IoState;

// Runs `start` on the I/O thread of `connection` and waits for its result.
template <typename T, typename Start>
Result<T> call(const std::shared_ptr<detail::Connection>& connection, const char* what,
               Start start) {
  if (!connection) {
    return Error{ErrorCode::kDisconnected,
                 "this Admin has no connection (it was "
                 "default-constructed or moved from)"};
  }
  return connection->call<T>(what, std::move(start));
}

// The Auth capability of the connection's Broker (the restricted one when it authenticated).
// Pipelined: the call made on it goes out at once, with no round trip of its own.
wire::Auth::Client authOf(IoState& io) {
  return io.broker.authRequest().send().getAuth();
}

Result<PrincipalInfo> putPrincipal(const std::shared_ptr<detail::Connection>& connection,
                                   const char* what, std::string_view name, std::vector<Rule> rules,
                                   bool create) {
  if (auto problem = detail::checkWireable(rules)) return *problem;
  return call<PrincipalInfo>(
      connection, what, [name = std::string(name), rules = std::move(rules), create](IoState& io) {
        auto request = authOf(io).putPrincipalRequest();
        request.setName(asText(name));
        detail::toWire(rules, request.initRules(static_cast<unsigned>(rules.size())));
        request.setCreate(create);
        return request.send().then([](auto&& response) -> Result<PrincipalInfo> {
          return fromWire(response.getResult());
        });
      });
}

}  // namespace

Result<TopicInfo> Admin::createTopic(std::string_view name, const TopicSettings& settings) {
  if (auto problem = detail::checkWireable(settings)) return *problem;
  return call<TopicInfo>(
      connection_, "createTopic", [name = std::string(name), settings](IoState& io) {
        auto request = io.admin.createTopicRequest();
        request.setName(asText(name));
        detail::toWire(settings, request.initSettings());
        return request.send().then(
            [](auto&& response) -> Result<TopicInfo> { return fromWire(response.getResult()); });
      });
}

Result<std::vector<TopicInfo>> Admin::listTopics() {
  return call<std::vector<TopicInfo>>(connection_, "listTopics", [](IoState& io) {
    return io.admin.listTopicsRequest().send().then(
        [](auto&& response) -> Result<std::vector<TopicInfo>> {
          return fromWire(response.getResult());
        });
  });
}

Result<TopicInfo> Admin::describeTopic(std::string_view name) {
  return call<TopicInfo>(connection_, "describeTopic", [name = std::string(name)](IoState& io) {
    auto request = io.admin.describeTopicRequest();
    request.setName(asText(name));
    return request.send().then(
        [](auto&& response) -> Result<TopicInfo> { return fromWire(response.getResult()); });
  });
}

Result<uint64_t> Admin::deleteTopic(std::string_view name) {
  return call<uint64_t>(connection_, "deleteTopic", [name = std::string(name)](IoState& io) {
    auto request = io.admin.deleteTopicRequest();
    request.setName(asText(name));
    return request.send().then(
        [](auto&& response) -> Result<uint64_t> { return fromWire(response.getResult()); });
  });
}

Result<uint64_t> Admin::purgeTopic(std::string_view name) {
  return call<uint64_t>(connection_, "purgeTopic", [name = std::string(name)](IoState& io) {
    auto request = io.admin.purgeTopicRequest();
    request.setName(asText(name));
    return request.send().then(
        [](auto&& response) -> Result<uint64_t> { return fromWire(response.getResult()); });
  });
}

Result<GroupInfo> Admin::createGroup(std::string_view topic, std::string_view group,
                                     StartPosition start, bool keyOrdered,
                                     std::vector<std::string> filter) {
  return call<GroupInfo>(
      connection_, "createGroup",
      [topic = std::string(topic), group = std::string(group), start, keyOrdered,
       filter = std::move(filter)](IoState& io) {
        auto request = io.admin.createGroupRequest();
        request.setTopic(asText(topic));
        request.setGroup(asText(group));
        request.setKeyOrdered(keyOrdered);
        detail::toWire(filter, request.initFilter(static_cast<unsigned>(filter.size())));
        detail::toWire(start, request.initStart());
        return request.send().then(
            [](auto&& response) -> Result<GroupInfo> { return fromWire(response.getResult()); });
      });
}

Result<TopicInfo> Admin::changeSubjects(std::string_view topic, std::vector<std::string> add,
                                        std::vector<std::string> remove) {
  return call<TopicInfo>(
      connection_, "changeSubjects",
      [topic = std::string(topic), add = std::move(add), remove = std::move(remove)](IoState& io) {
        auto request = io.admin.changeSubjectsRequest();
        request.setName(asText(topic));
        detail::toWire(add, request.initAdd(static_cast<unsigned>(add.size())));
        detail::toWire(remove, request.initRemove(static_cast<unsigned>(remove.size())));
        return request.send().then(
            [](auto&& response) -> Result<TopicInfo> { return fromWire(response.getResult()); });
      });
}

Result<std::vector<std::string>> Admin::route(std::string_view subject) {
  return call<std::vector<std::string>>(
      connection_, "route", [subject = std::string(subject)](IoState& io) {
        auto request = io.admin.routeRequest();
        request.setSubject(asText(subject));
        return request.send().then([](auto&& response) -> Result<std::vector<std::string>> {
          auto result = response.getResult();
          if (result.isError()) return fromWire(result.getError());
          return fromWire(result.getTopics());
        });
      });
}

Result<std::vector<GroupInfo>> Admin::listGroups(std::string_view topic) {
  return call<std::vector<GroupInfo>>(
      connection_, "listGroups", [topic = std::string(topic)](IoState& io) {
        auto request = io.admin.listGroupsRequest();
        request.setTopic(asText(topic));
        return request.send().then([](auto&& response) -> Result<std::vector<GroupInfo>> {
          return fromWire(response.getResult());
        });
      });
}

Result<GroupInfo> Admin::describeGroup(std::string_view topic, std::string_view group) {
  return call<GroupInfo>(connection_, "describeGroup",
                         [topic = std::string(topic), group = std::string(group)](IoState& io) {
                           auto request = io.admin.describeGroupRequest();
                           request.setTopic(asText(topic));
                           request.setGroup(asText(group));
                           return request.send().then([](auto&& response) -> Result<GroupInfo> {
                             return fromWire(response.getResult());
                           });
                         });
}

Result<GroupInfo> Admin::resetGroup(std::string_view topic, std::string_view group,
                                    StartPosition to) {
  return call<GroupInfo>(connection_, "resetGroup",
                         [topic = std::string(topic), group = std::string(group), to](IoState& io) {
                           auto request = io.admin.resetGroupRequest();
                           request.setTopic(asText(topic));
                           request.setGroup(asText(group));
                           detail::toWire(to, request.initTo());
                           return request.send().then([](auto&& response) -> Result<GroupInfo> {
                             return fromWire(response.getResult());
                           });
                         });
}

Result<uint64_t> Admin::deleteGroup(std::string_view topic, std::string_view group) {
  return call<uint64_t>(connection_, "deleteGroup",
                        [topic = std::string(topic), group = std::string(group)](IoState& io) {
                          auto request = io.admin.deleteGroupRequest();
                          request.setTopic(asText(topic));
                          request.setGroup(asText(group));
                          return request.send().then([](auto&& response) -> Result<uint64_t> {
                            return fromWire(response.getResult());
                          });
                        });
}

Result<std::vector<Message>> Admin::peek(std::string_view topic, uint64_t fromOffset,
                                         uint32_t count) {
  return call<std::vector<Message>>(
      connection_, "peek", [topic = std::string(topic), fromOffset, count](IoState& io) {
        auto request = io.admin.peekRequest();
        request.setTopic(asText(topic));
        request.setFromOffset(fromOffset);
        request.setCount(count);
        return request.send().then([topic](auto&& response) -> Result<std::vector<Message>> {
          return fromWire(response.getResult(), topic);
        });
      });
}

Result<BrokerStats> Admin::stats() {
  return call<BrokerStats>(connection_, "stats", [](IoState& io) {
    return io.admin.statsRequest().send().then(
        [](auto&& response) -> Result<BrokerStats> { return fromWire(response.getStats()); });
  });
}

Result<ClusterStatus> Admin::clusterStatus() {
  return call<ClusterStatus>(connection_, "clusterStatus", [](IoState& io) {
    return io.admin.clusterStatusRequest().send().then(
        [](auto&& response) -> Result<ClusterStatus> { return fromWire(response.getResult()); });
  });
}

Result<Identity> Admin::whoami() {
  return call<Identity>(connection_, "whoami", [](IoState& io) {
    return authOf(io).whoamiRequest().send().then(
        [](capnp::Response<wire::Auth::WhoamiResults>&& response) -> Result<Identity> {
          return fromWire(response);
        });
  });
}

Result<PrincipalInfo> Admin::createPrincipal(std::string_view name, std::vector<Rule> rules) {
  return putPrincipal(connection_, "createPrincipal", name, std::move(rules), /*create=*/true);
}

Result<PrincipalInfo> Admin::setRules(std::string_view name, std::vector<Rule> rules) {
  return putPrincipal(connection_, "setRules", name, std::move(rules), /*create=*/false);
}

Result<uint64_t> Admin::deletePrincipal(std::string_view name) {
  return call<uint64_t>(connection_, "deletePrincipal", [name = std::string(name)](IoState& io) {
    auto request = authOf(io).deletePrincipalRequest();
    request.setName(asText(name));
    return request.send().then(
        [](auto&& response) -> Result<uint64_t> { return fromWire(response.getResult()); });
  });
}

Result<std::vector<PrincipalInfo>> Admin::listPrincipals() {
  return call<std::vector<PrincipalInfo>>(connection_, "listPrincipals", [](IoState& io) {
    return authOf(io).listPrincipalsRequest().send().then(
        [](auto&& response) -> Result<std::vector<PrincipalInfo>> {
          return fromWire(response.getResult());
        });
  });
}

Result<Secret> Admin::createToken(std::string_view principal, std::string_view note,
                                  std::chrono::milliseconds ttl) {
  if (auto problem = detail::checkTtl("a token's ttl (0: no expiry)", ttl)) return *problem;
  return call<Secret>(connection_, "createToken",
                      [principal = std::string(principal), note = std::string(note),
                       ttlMs = static_cast<uint64_t>(ttl.count())](IoState& io) {
                        auto request = authOf(io).createTokenRequest();
                        request.setPrincipal(asText(principal));
                        request.setNote(asText(note));
                        request.setTtlMs(ttlMs);
                        return request.send().then([](auto&& response) -> Result<Secret> {
                          return fromWire(response.getResult());
                        });
                      });
}

Result<Secret> Admin::mintGrant(std::vector<Rule> scope, std::chrono::milliseconds ttl,
                                std::string_view note) {
  if (auto problem = detail::checkWireable(scope)) return *problem;
  // The range (1 s to 1 year, within the issuer's expiry) is the broker's to check.
  if (auto problem = detail::checkTtl("a grant's ttl", ttl)) return *problem;
  return call<Secret>(
      connection_, "mintGrant",
      [scope = std::move(scope), ttlMs = static_cast<uint64_t>(ttl.count()),
       note = std::string(note)](IoState& io) {
        auto request = authOf(io).mintGrantRequest();
        detail::toWire(scope, request.initScope(static_cast<unsigned>(scope.size())));
        request.setTtlMs(ttlMs);
        request.setNote(asText(note));
        return request.send().then(
            [](auto&& response) -> Result<Secret> { return fromWire(response.getResult()); });
      });
}

Result<uint64_t> Admin::revoke(uint64_t credentialId) {
  return call<uint64_t>(connection_, "revoke", [credentialId](IoState& io) {
    auto request = authOf(io).revokeRequest();
    request.setId(credentialId);
    return request.send().then(
        [](auto&& response) -> Result<uint64_t> { return fromWire(response.getResult()); });
  });
}

Result<std::vector<CredentialInfo>> Admin::listCredentials(std::string_view principal) {
  return call<std::vector<CredentialInfo>>(
      connection_, "listCredentials", [principal = std::string(principal)](IoState& io) {
        auto request = authOf(io).listCredentialsRequest();
        request.setPrincipal(asText(principal));
        return request.send().then([](auto&& response) -> Result<std::vector<CredentialInfo>> {
          return fromWire(response.getResult());
        });
      });
}

}  // namespace sluice
