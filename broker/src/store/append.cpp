#include "store/store.h"

#include <algorithm>
#include <limits>

#include "store/codec.h"
#include "store/keys.h"
#include "store/lmdb_util.h"
#include "store/topic_ops.h"

// WriteTxn: appends and front-drop retention.

namespace sluice::store {
namespace {

Status noTopic(std::string_view name) {
  return Status(Code::kTopicNotFound, "no topic named \"" + std::string(name) + "\"");
}

int64_t saturatingAdd(int64_t base, uint64_t delta) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  if (base < 0) base = 0;
  if (delta > static_cast<uint64_t>(kMax - base)) return kMax;
  return base + static_cast<int64_t>(delta);
}

unsigned pageSize(const Env& env) {
  MDB_stat st;
  if (mdb_env_stat(env.raw(), &st) != 0) return 4096;
  return st.ms_psize;
}

// Roughly what the batch adds to the databases' pages: values past about half a page go to
// their own overflow pages; B-tree leaves run about two thirds full.
uint64_t estimateBytes(const std::vector<MessageData>& messages, unsigned pageSize) {
  uint64_t total = 0;
  for (const MessageData& m : messages) {
    uint64_t value = m.accountedBytes() + 16 * m.headers.size() + m.id.size() + 64;
    uint64_t node = value + 12 + 8;  // key + node header
    if (node > pageSize / 2 - 64) {
      total += (value + 16 + pageSize - 1) / pageSize * pageSize + 64;
    } else {
      total += node * 3 / 2;
    }
    if (!m.id.empty()) total += (2 * m.id.size() + 64) * 3 / 2;  // dedup + dedupExpiry
  }
  return total;
}

// MDB_APPEND requires the key to sort after every key of the database, which holds only while
// no topic with a higher id has messages.
bool appendIsValid(MDB_txn* txn, const Env& env, TopicId topic, Offset offset) {
  Cursor cursor(txn, env.messages);
  if (!cursor.last()) return true;
  return cursor.key() < keys::message(topic, offset);
}

Offset appendMessage(MDB_txn* txn, const Env& env, TopicRecord& topic, int64_t nowMs,
                     const MessageData& message, bool useAppend) {
  int64_t timestampMs = std::max(nowMs, topic.lastTimestampMs);
  Offset offset = topic.nextOffset;
  std::string key = keys::message(topic.id, offset);
  MDB_val k = toVal(key);
  // Encoded straight into the page LMDB reserves: no per-message buffer or copy.
  int rc = 0;
  codec::encodeMessageInto(timestampMs, message, [&](size_t bytes) -> kj::byte* {
    MDB_val v{bytes, nullptr};
    rc = mdb_put(txn, env.messages, &k, &v,
                 (useAppend ? MDB_APPEND : MDB_NOOVERWRITE) | MDB_RESERVE);
    return rc == 0 ? static_cast<kj::byte*>(v.mv_data) : nullptr;
  });
  if (rc == MDB_KEYEXIST) {
    brokenInvariant("messages: offset " + std::to_string(offset) + " of topic " + topic.name +
                    " (id " + std::to_string(topic.id) +
                    ") is already stored or not after the last key");
  }
  if (rc != 0) throw LmdbError(rc, "append message");
  if (topic.messages == 0) topic.firstOffset = offset;
  ++topic.messages;
  topic.bytes += message.accountedBytes();
  topic.nextOffset = offset + 1;
  topic.lastTimestampMs = timestampMs;
  return offset;
}

// Drops messages from the front of `topic` while any rule asks for it: offset < below,
// timestamp < olderThanMs, or the topic is past maxMessages / maxBytes. Updates the record
// (not stored). Returns the number dropped.
uint64_t dropFront(MDB_txn* txn, const Env& env, TopicRecord& topic,
                   std::optional<int64_t> olderThanMs, Offset below) {
  const TopicSettings& s = topic.settings;
  uint64_t dropped = 0;
  std::optional<Offset> kept;
  Cursor cursor(txn, env.messages);
  for (bool ok = cursor.seek(keys::message(topic.id, topic.firstOffset)); ok; ok = cursor.next()) {
    auto key = keys::parseMessage(cursor.key());
    if (!key || key->topic != topic.id) break;
    bool drop = key->offset < below || (s.maxMessages != 0 && topic.messages > s.maxMessages) ||
                (s.maxBytes != 0 && topic.bytes > s.maxBytes);
    if (!drop && !olderThanMs) {
      kept = key->offset;
      break;
    }
    codec::MessageMeta meta = codec::decodeMessageMeta(cursor.value());
    if (!drop && meta.timestampMs >= *olderThanMs) {
      kept = key->offset;
      break;
    }
    if (topic.messages == 0 || topic.bytes < meta.accountedBytes) {
      brokenInvariant("topics: stats of topic " + topic.name + " (messages=" +
                      std::to_string(topic.messages) + ", bytes=" + std::to_string(topic.bytes) +
                      ") are below its stored messages at offset " + std::to_string(key->offset));
    }
    cursor.del();
    --topic.messages;
    topic.bytes -= meta.accountedBytes;
    ++dropped;
  }
  if (dropped > 0) topic.firstOffset = kept ? *kept : topic.nextOffset;
  return dropped;
}

// Front-drop by maxMessages / maxBytes after an append, with the pending entries of what went.
void enforceLimits(MDB_txn* txn, const Env& env, TopicRecord& topic) {
  if (topic.settings.maxMessages == 0 && topic.settings.maxBytes == 0) return;
  if (dropFront(txn, env, topic, std::nullopt, 0) > 0) {
    dropPendingBelow(txn, env, topic.id, topic.firstOffset);
  }
}

}  // namespace

Result<std::vector<PublishAckData>> WriteTxn::append(std::string_view name,
                                                     const std::vector<MessageData>& messages) {
  using Acks = std::vector<PublishAckData>;
  return resultRecordingErrors<Acks>(errorRc_, error_, [&]() -> Result<Acks> {
    auto topic = loadTopic(txn_, env_, name);
    if (!topic) return noTopic(name);
    uint64_t used = usedBytesIn(txn_, env_);
    uint64_t batch = estimateBytes(messages, pageSize(env_));
    uint64_t limit = env_.publishLimitBytes();
    if (used + batch > limit) {
      return Status(Code::kStorageFull,
                    "storage is full: " + std::to_string(used) + " bytes in use + ~" +
                        std::to_string(batch) + " for this batch would pass the publish limit of " +
                        std::to_string(limit) + " bytes; consumers and acks still work");
    }
    bool useAppend = appendIsValid(txn_, env_, topic->id, topic->nextOffset);
    const uint64_t window = topic->settings.dedupWindowMs;  // 0: ids are not remembered
    Acks acks;
    acks.reserve(messages.size());
    for (const MessageData& message : messages) {
      if (message.id.empty() || window == 0) {
        acks.push_back({appendMessage(txn_, env_, *topic, nowMs_, message, useAppend), false});
        continue;
      }
      // The lookup sees this transaction's own puts, so a repeat within the batch is caught.
      std::string dedupKey = keys::dedup(topic->id, message.id);
      std::string_view stored;
      if (getValue(txn_, env_.dedup, dedupKey, &stored)) {
        codec::DedupEntry entry = codec::decodeDedup(stored);
        if (entry.expiresMs > nowMs_) {
          acks.push_back({entry.offset, true});
          continue;
        }
      }
      Offset offset = appendMessage(txn_, env_, *topic, nowMs_, message, useAppend);
      int64_t expiresMs = saturatingAdd(nowMs_, window);
      putValue(txn_, env_.dedup, dedupKey, codec::bytesOf(codec::encodeDedup({offset, expiresMs})));
      putValue(txn_, env_.dedupExpiry,
               keys::dedupExpiry(static_cast<uint64_t>(expiresMs), topic->id, message.id),
               std::string_view("", 0));
      acks.push_back({offset, false});
    }
    enforceLimits(txn_, env_, *topic);
    storeTopic(txn_, env_, *topic);
    return acks;
  });
}

Result<Offset> WriteTxn::appendInternal(std::string_view name, const MessageData& message) {
  return resultRecordingErrors<Offset>(errorRc_, error_, [&]() -> Result<Offset> {
    auto topic = loadTopic(txn_, env_, name);
    if (!topic) {
      auto created = createTopicIn(txn_, env_, name, TopicSettings{}, nowMs_);
      if (!created.ok()) return created.status();
      topic = std::move(created).value();
    }
    bool useAppend = appendIsValid(txn_, env_, topic->id, topic->nextOffset);
    Offset offset = appendMessage(txn_, env_, *topic, nowMs_, message, useAppend);
    enforceLimits(txn_, env_, *topic);
    storeTopic(txn_, env_, *topic);
    return offset;
  });
}

Result<uint64_t> WriteTxn::applyRetention(std::string_view name, Offset dropBelow) {
  return resultRecordingErrors<uint64_t>(errorRc_, error_, [&]() -> Result<uint64_t> {
    auto topic = loadTopic(txn_, env_, name);
    if (!topic) return noTopic(name);
    std::optional<int64_t> olderThanMs;
    uint64_t maxAgeMs = topic->settings.maxAgeMs;
    if (maxAgeMs != 0 && nowMs_ > 0 && maxAgeMs < static_cast<uint64_t>(nowMs_)) {
      olderThanMs = nowMs_ - static_cast<int64_t>(maxAgeMs);
    }
    uint64_t dropped = dropFront(txn_, env_, *topic, olderThanMs, dropBelow);
    if (dropped > 0) {
      dropPendingBelow(txn_, env_, topic->id, topic->firstOffset);
      storeTopic(txn_, env_, *topic);
    }
    return dropped;
  });
}

}  // namespace sluice::store
