#pragma once

// Topics as logs: creating, deleting and purging topics, and publishing to them. Decides every
// offset, timestamp, dedup outcome and size-retention cut before it builds the append, so the
// store only applies. Thread: kj.

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <kj/async.h>

#include "core/context.h"

namespace sluice::core {

// The messages one batch appends to one topic, for its completion (appended()).
struct AppendTicket {
  std::string topic;
  TopicId id = 0;
  Offset first = 0;
  Offset end = 0;                // One past the last offset.
  std::vector<std::string> ids;  // Producer ids it registered as uncommitted.
  uint64_t estimatedBytes = 0;   // Counted in Context::uncommittedAppendBytes until then.
  std::string subject;           // Of its messages (one per append); empty: the topic's name.
};

// A routed publish's answer for one of the topics that captured it.
struct RoutedAcks {
  std::string topic;
  std::vector<PublishAckData> acks;  // One per message, in request order.
};

class TopicLog {
 public:
  // What the topic log tells the group side: new messages are deliverable, a group is going
  // away with its topic, or messages below the topic's firstOffset are being removed by
  // `batch` (the group side may add to it).
  struct Events {
    std::function<void(Topic&)> appended;
    std::function<void(Group&, const Status&)> closing;
    std::function<void(Topic&, WriteBatch&)> trimmed;
  };
  TopicLog(Context& ctx, Events events) : ctx_(ctx), events_(std::move(events)) {}

  // The message-count rule of publish(), for checking a request before copying it.
  Status checkBatchCount(size_t count) const;
  // Stores the batch (creating the topic with --auto-create-topics) and answers one ack per
  // message after the commit. Errors: kInvalidArgument, kTopicNotFound, kMessageTooLarge,
  // kLimitExceeded, kStorageFull, kStorageFailed, kShuttingDown.
  kj::Promise<Result<std::vector<PublishAckData>>> publish(std::string topic,
                                                           std::vector<MessageData> messages);

  // Stores the batch, with its subject, in every topic that captures `subject`, in one commit,
  // all or nothing; answers per topic (by name) after the commit. No capturing topic:
  // kNoRoute, or with --auto-create-topics a new topic named as the subject. Errors: those of
  // publish() (a rejection by any topic names it), kNoRoute.
  kj::Promise<Result<std::vector<RoutedAcks>>> publishSubject(std::string subject,
                                                              std::vector<MessageData> messages);
  // The names of the topics capturing `subject`, sorted. Errors: kInvalidArgument.
  Result<std::vector<std::string>> route(std::string_view subject);
  // Adds and removes subject patterns of a live topic in one commit. Errors: kInvalidArgument
  // (a bad pattern, removing one the topic does not have, nothing asked), kTopicNotFound,
  // kLimitExceeded (patterns per topic or in all), kStorageFailed, kShuttingDown.
  kj::Promise<Result<Done>> changeSubjects(std::string topic, std::vector<std::string> add,
                                           std::vector<std::string> remove);

  // publish() in steps, for a publish committed with other changes (a transaction):
  // checkPublish() changes nothing; prepare() adds a checked publish to `batch` (creating the
  // topic with --auto-create-topics) and decides its offsets; published() follows the commit.
  struct Prepared {
    AppendTicket ticket;
    std::vector<PublishAckData> acks;
    uint64_t fresh = 0;  // Messages appended (not duplicates) and their bytes.
    uint64_t freshBytes = 0;
  };
  Status checkPublish(std::string_view topic, const std::vector<MessageData>& messages,
                      uint64_t estimate) const;
  Prepared prepare(WriteBatch& batch, std::string topic, std::vector<MessageData> messages,
                   uint64_t estimate, int64_t nowMs);
  void published(const Prepared& prepared, bool committed);
  // Creates the topic (and its dead-letter topic when that does not exist). Answers after the
  // commit. Errors: kInvalidArgument, kTopicExists, kLimitExceeded, kStorageFailed.
  kj::Promise<Result<Done>> createTopic(std::string name, RequestedSettings settings);
  // Errors: kInvalidArgument, kTopicNotFound, kStorageFailed. Answers the messages removed.
  kj::Promise<Result<uint64_t>> deleteTopic(std::string name);
  kj::Promise<Result<uint64_t>> purgeTopic(std::string name);

  // Adds to `batch` an append of `message` to `topic` at its next offset (with the size
  // retention it triggers); `snapshot` serves the sizes of committed messages.
  AppendTicket appendInternal(WriteBatch& batch, Topic& topic, MessageData message, int64_t nowMs,
                              const StoreSnapshot& snapshot);
  // Adds a trim of `topic` to `below` (if that drops anything) and keeps the live counts.
  void trimTo(WriteBatch& batch, Topic& topic, Offset below, const StoreSnapshot& snapshot);
  // After the commit holding `ticket` (committed: its offsets are deliverable) or its failure.
  void appended(const AppendTicket& ticket, bool committed);

  // kLimitExceeded when `adding` more topics would pass maxTopics or the ids run out.
  Status topicRoom(uint32_t adding) const;

 private:
  // Validation, limits and the storage check of a publish; ok to go ahead.
  Status admit(std::string_view topic, const std::vector<MessageData>& messages, Topic* found,
               uint64_t estimate) const;
  // Gives each message its offset, timestamp and dedup outcome; fills `op` with the new ones.
  std::vector<PublishAckData> assign(Topic& topic, std::vector<MessageData> messages, int64_t now,
                                     AppendOp& op, AppendTicket& ticket);
  // maxMessages / maxBytes after an append.
  void trimBySize(WriteBatch& batch, Topic& topic, const StoreSnapshot& snapshot);
  uint64_t sizeAt(const Topic& topic, Offset offset, const StoreSnapshot& snapshot) const;
  // The live topics capturing `subject`, by name.
  std::vector<Topic*> captured(std::string_view subject);
  // kLimitExceeded when the broker would hold more than maxSubjectPatterns patterns.
  Status patternRoom(size_t removing, size_t adding) const;
  Status validateBatch(std::string_view topic, const std::vector<MessageData>& messages,
                       uint32_t maxSize) const;

  Context& ctx_;
  Events events_;
};

}  // namespace sluice::core
