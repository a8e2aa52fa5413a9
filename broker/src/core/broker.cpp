#include "core/broker.h"

#include <map>

#include "core/log.h"

namespace sluice::core {

Broker::Broker(Store& store, kj::Timer& timer, Metrics& metrics, BrokerOptions options)
    : tasks_(kj::heap<kj::TaskSet>(static_cast<kj::TaskSet::ErrorHandler&>(*this))),
      ctx_(store, metrics, std::move(options), *tasks_),
      log_(ctx_, TopicLog::Events{
                     [this](Topic& topic) {
                       for (auto& [name, group] : topic.groups)
                         delivery_.schedulePump(*group);
                     },
                     [this](Group& group, const Status& why) { delivery_.close(group, why); },
                     [this](Topic& topic, WriteBatch& batch) {
                       for (auto& [name, group] : topic.groups) {
                         if (group->keyOrdered) delivery_.forgetTrimmed(*group, batch);
                         // Matching messages ahead of it are gone: counted again when asked.
                         if (group->position < topic.firstOffset) group->matchedAhead.reset();
                       }
                     }}),
      groups_(ctx_),
      delivery_(ctx_, groups_, log_, timer),
      expiry_(ctx_, delivery_, log_, timer),
      views_(ctx_),
      auth_(ctx_, ctx_.options.authentication),
      timer_(timer) {}

Broker::~Broker() = default;

void Broker::taskFailed(kj::Exception&& exception) {
  coreLog()->error("background task failed: {}", exception.getDescription().cStr());
}

void Broker::start() {
  ctx_.startedMs = wallClockMs();
  StoredState state = ctx_.store.load();
  ctx_.nextTopicId = state.nextTopicId;
  std::map<TopicId, Topic*> byId;
  for (const TopicRecord& record : state.topics)
    byId[record.id] = &ctx_.adoptTopic(record);
  uint64_t held = 0, pending = 0;
  for (const StoredGroupState& stored : state.groups) {
    auto topic = byId.find(stored.record.topicId);
    if (topic == byId.end()) continue;  // `sluiced --check` reports orphans.
    auto group = Group::fromRecord(*topic->second, stored.record);
    group->heldAtStop = stored.heldAtStop;
    group->nextDueMs = stored.nextDueMs;
    if (group->keyOrdered) delivery_.restoreKeys(*group, stored.keyed);
    held += stored.heldAtStop;
    pending += stored.record.pending;
    topic->second->groups.emplace(stored.record.name, std::move(group));
  }
  coreLog()->info("loaded topics={} groups={} pending={} held_at_stop={} seq={}",
                  state.topics.size(), state.groups.size(), pending, held, state.lastSeq);
  auth_.load(std::move(state.principals), std::move(state.credentials), state.nextCredentialId);
  expiry_.start();
  if (auth_.enabled()) authSweep_ = sweepAuth().eagerlyEvaluate(nullptr);
}

kj::Promise<void> Broker::sweepAuth() {
  // Credentials that expire close the subscriptions they hold within a second.
  return timer_.afterDelay(1 * kj::SECONDS).then([this]() {
    if (ctx_.stopped) return kj::Promise<void>(kj::READY_NOW);
    auth_.sweep(wallClockMs());
    return sweepAuth();
  });
}

void Broker::shutdown() {
  if (ctx_.stopped) return;
  ctx_.stopped = true;
  expiry_.stop();
  authSweep_ = nullptr;
  Status why(Code::kShuttingDown, "the broker is shutting down");
  for (auto& [name, topic] : ctx_.topics) {
    for (auto& [groupName, group] : topic->groups)
      delivery_.close(*group, why);
  }
}

kj::Promise<Result<TopicView>> Broker::createTopic(std::string name, RequestedSettings settings) {
  return log_.createTopic(name, std::move(settings))
      .then([this, name](Result<Done> created) -> Result<TopicView> {
        if (!created.ok()) return created.status();
        return views_.describeTopic(name);
      });
}

kj::Promise<Result<GroupView>> Broker::createGroup(std::string topic, std::string group,
                                                   StartAt start, bool keyOrdered,
                                                   std::vector<std::string> filter) {
  return groups_.create(topic, group, start, keyOrdered, std::move(filter))
      .then([this, topic, group](Result<Done> created) -> Result<GroupView> {
        if (!created.ok()) return created.status();
        return views_.describeGroup(topic, group);
      });
}

kj::Promise<Result<TopicView>> Broker::changeSubjects(std::string topic,
                                                      std::vector<std::string> add,
                                                      std::vector<std::string> remove) {
  return log_.changeSubjects(topic, std::move(add), std::move(remove))
      .then([this, topic](Result<Done> changed) -> Result<TopicView> {
        if (!changed.ok()) return changed.status();
        return views_.describeTopic(topic);
      });
}

kj::Promise<Result<GroupView>> Broker::resetGroup(std::string topic, std::string group,
                                                  StartAt to) {
  return groups_.reset(topic, group, to)
      .then([this, topic, group](Result<Done> reset) -> Result<GroupView> {
        if (!reset.ok()) return reset.status();
        return views_.describeGroup(topic, group);
      });
}

Result<std::unique_ptr<BackupCopy>> Broker::startBackup() {
  auto copy = ctx_.store.backup();
  if (copy.ok()) coreLog()->info("backup started used={}", ctx_.store.usedBytes());
  return copy;
}

}  // namespace sluice::core
