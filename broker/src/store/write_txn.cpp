#include "store/store.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "store/codec.h"
#include "store/keys.h"
#include "store/lmdb_util.h"
#include "store/topic_ops.h"

// WriteTxn: topics, groups, pending entries and dedup expiry. Appends and retention are in
// append.cpp.

namespace sluice::store {
namespace {

Status noTopic(std::string_view name) {
  return Status(Code::kTopicNotFound, "no topic named \"" + std::string(name) + "\"");
}

// Removes the topic's messages, pending and dedup entries (and groups if `withGroups`).
// Returns the number of messages removed.
uint64_t removeTopicData(MDB_txn* txn, const Env& env, TopicId topic, bool withGroups) {
  std::string prefix = keys::topicPrefix(topic);
  uint64_t removed = deletePrefix(txn, env.messages, prefix);
  deletePrefix(txn, env.pending, prefix);
  if (withGroups) deletePrefix(txn, env.groups, prefix);
  deletePrefix(txn, env.dedup, prefix);
  // dedupExpiry is ordered by time, not topic; a full scan is fine for a rare operation.
  Cursor cursor(txn, env.dedupExpiry);
  for (bool ok = cursor.first(); ok; ok = cursor.next()) {
    auto key = keys::parseDedupExpiry(cursor.key());
    if (key && key->topic == topic) cursor.del();
  }
  return removed;
}

}  // namespace

std::optional<TopicRecord> loadTopic(MDB_txn* txn, const Env& env, std::string_view name) {
  std::string_view value;
  if (!getValue(txn, env.topics, name, &value)) return std::nullopt;
  return codec::decodeTopic(name, value);
}

void storeTopic(MDB_txn* txn, const Env& env, const TopicRecord& topic) {
  putValue(txn, env.topics, topic.name, codec::bytesOf(codec::encodeTopic(topic)));
}

Result<TopicRecord> createTopicIn(MDB_txn* txn, const Env& env, std::string_view name,
                                  const TopicSettings& settings, int64_t nowMs) {
  if (getValue(txn, env.topics, name, nullptr)) {
    return Status(Code::kTopicExists, "topic \"" + std::string(name) + "\" already exists");
  }
  TopicId id = 1;
  std::string_view stored;
  if (getValue(txn, env.meta, keys::kNextTopicId, &stored) && stored.size() == 4) {
    id = keys::readU32(stored.data());
  }
  if (id == std::numeric_limits<TopicId>::max()) {
    return Status(Code::kLimitExceeded, "all topic ids have been used");
  }
  putValue(txn, env.meta, keys::kNextTopicId, keys::u32(id + 1));
  TopicRecord topic;
  topic.name = std::string(name);
  topic.id = id;
  topic.settings = settings;
  topic.createdMs = nowMs;
  storeTopic(txn, env, topic);
  return topic;
}

void dropPendingBelow(MDB_txn* txn, const Env& env, TopicId topic, Offset below) {
  std::string prefix = keys::topicPrefix(topic);
  std::vector<std::string> groups;
  {
    Cursor cursor(txn, env.groups);
    for (bool ok = cursor.seek(prefix); ok && startsWith(cursor.key(), prefix);
         ok = cursor.next()) {
      groups.emplace_back(cursor.key().substr(prefix.size()));
    }
  }
  for (const std::string& group : groups) {
    deletePrefix(txn, env.pending, keys::pendingPrefix(topic, group),
                 keys::pending(topic, group, below));
  }
}

std::optional<TopicRecord> WriteTxn::topic(std::string_view name) {
  return recordingErrors(errorRc_, error_, [&] { return loadTopic(txn_, env_, name); });
}

Result<TopicRecord> WriteTxn::createTopic(std::string_view name, const TopicSettings& settings) {
  return resultRecordingErrors<TopicRecord>(
      errorRc_, error_, [&] { return createTopicIn(txn_, env_, name, settings, nowMs_); });
}

Result<uint64_t> WriteTxn::deleteTopic(std::string_view name) {
  return resultRecordingErrors<uint64_t>(errorRc_, error_, [&]() -> Result<uint64_t> {
    auto topic = loadTopic(txn_, env_, name);
    if (!topic) return noTopic(name);
    uint64_t removed = removeTopicData(txn_, env_, topic->id, /*withGroups=*/true);
    deleteKey(txn_, env_.topics, name);
    return removed;
  });
}

Result<uint64_t> WriteTxn::purgeTopic(std::string_view name) {
  return resultRecordingErrors<uint64_t>(errorRc_, error_, [&]() -> Result<uint64_t> {
    auto topic = loadTopic(txn_, env_, name);
    if (!topic) return noTopic(name);
    uint64_t removed = removeTopicData(txn_, env_, topic->id, /*withGroups=*/false);
    topic->firstOffset = topic->nextOffset;
    topic->messages = 0;
    topic->bytes = 0;
    storeTopic(txn_, env_, *topic);
    return removed;
  });
}

uint64_t WriteTxn::expireDedup() {
  return recordingErrors(errorRc_, error_, [&] {
    uint64_t removed = 0;
    Cursor cursor(txn_, env_.dedupExpiry);
    for (bool ok = cursor.first(); ok; ok = cursor.next()) {
      auto key = keys::parseDedupExpiry(cursor.key());
      if (!key) continue;  // Env::check reports it.
      if (key->expiresMs > static_cast<uint64_t>(std::max<int64_t>(nowMs_, 0))) break;
      // The id may have been published again after this entry expired; keep the newer entry.
      std::string dedupKey = keys::dedup(key->topic, key->id);
      std::string_view value;
      if (getValue(txn_, env_.dedup, dedupKey, &value) &&
          codec::decodeDedup(value).expiresMs <= nowMs_) {
        deleteKey(txn_, env_.dedup, dedupKey);
        ++removed;
      }
      cursor.del();
    }
    return removed;
  });
}

std::optional<GroupRecord> WriteTxn::group(TopicId topic, std::string_view name) {
  return recordingErrors(errorRc_, error_, [&]() -> std::optional<GroupRecord> {
    std::string_view value;
    if (!getValue(txn_, env_.groups, keys::group(topic, name), &value)) return std::nullopt;
    return codec::decodeGroup(topic, name, value);
  });
}

void WriteTxn::putGroup(const GroupRecord& group) {
  recordingErrors(errorRc_, error_, [&] {
    putValue(txn_, env_.groups, keys::group(group.topicId, group.name),
             codec::bytesOf(codec::encodeGroup(group)));
  });
}

uint64_t WriteTxn::deleteGroup(TopicId topic, std::string_view name) {
  return recordingErrors(errorRc_, error_, [&] {
    deleteKey(txn_, env_.groups, keys::group(topic, name));
    return deletePrefix(txn_, env_.pending, keys::pendingPrefix(topic, name));
  });
}

void WriteTxn::putPending(const PendingRecord& pending) {
  recordingErrors(errorRc_, error_, [&] {
    putValue(txn_, env_.pending, keys::pending(pending.topicId, pending.group, pending.offset),
             codec::bytesOf(codec::encodePending(pending)));
  });
}

bool WriteTxn::deletePending(TopicId topic, std::string_view group, Offset offset) {
  return recordingErrors(errorRc_, error_, [&] {
    return deleteKey(txn_, env_.pending, keys::pending(topic, group, offset));
  });
}

uint64_t WriteTxn::clearPending(TopicId topic, std::string_view group) {
  return recordingErrors(errorRc_, error_, [&] {
    return deletePrefix(txn_, env_.pending, keys::pendingPrefix(topic, group));
  });
}

std::optional<StoredMessageData> WriteTxn::readMessage(TopicId topic, Offset offset) {
  return recordingErrors(errorRc_, error_, [&]() -> std::optional<StoredMessageData> {
    std::string_view value;
    if (!getValue(txn_, env_.messages, keys::message(topic, offset), &value)) return std::nullopt;
    return codec::decodeMessage(offset, value);
  });
}

}  // namespace sluice::store
