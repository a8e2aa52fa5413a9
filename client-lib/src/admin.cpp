// Admin: each method is one call on the broker's Admin capability.

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

}  // namespace sluice
