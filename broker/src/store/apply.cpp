#include "store/apply.h"

#include <algorithm>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "store/codec.h"
#include "store/keys.h"
#include "store/lmdb_util.h"
#include "store/store.h"

namespace sluice::store {
namespace {

using GroupKey = std::pair<TopicId, std::string>;

// State of one batch's application.
class Applier {
 public:
  Applier(MDB_txn* txn, const Env& env)
      : txn_(txn), env_(env), spill_(env.options().logWindowBytes > 0) {}

  void apply(const core::WriteOp& op) {
    std::visit([this](const auto& o) { (*this)(o); }, op);
  }
  // Group records carry their pending count; changes are summed per group and written once.
  void flushCounts();

  void operator()(const core::CreateTopicOp& op);
  void operator()(const core::DeleteTopicOp& op);
  void operator()(const core::PurgeTopicOp& op);
  void operator()(const core::AppendOp& op);
  void operator()(const core::TrimOp& op);
  void operator()(const core::PutGroupOp& op);
  void operator()(const core::DeleteGroupOp& op);
  void operator()(const core::ClearPendingOp& op);
  void operator()(const core::PutPendingOp& op);
  void operator()(const core::RemovePendingOp& op);
  void operator()(const core::ExpireDedupOp& op);
  void operator()(const core::PutTxnOp& op);
  void operator()(const core::SetSubjectsOp& op);
  void operator()(const core::PutPrincipalOp& op);
  void operator()(const core::DeletePrincipalOp& op);
  void operator()(const core::PutCredentialOp& op);
  void operator()(const core::RevokeCredentialsOp& op);
  void operator()(const core::BeginEpochOp& op);

 private:
  TopicRecord requireTopic(TopicId id, const std::string& name, const char* op);
  void storeTopic(const TopicRecord& topic) {
    putValue(txn_, env_.topics, topic.name, codec::bytesOf(codec::encodeTopic(topic)));
  }
  // Keeps the body of a message about to be removed while the log holds its append.
  void spill(TopicId topic, Offset offset, std::string_view value);
  Offset logFloor(TopicId topic);
  // Removes the messages of `topic` with offset in [from, below); returns what they counted.
  void removeMessages(TopicRecord& topic, Offset below);
  // Removes the topic's held, pending and due entries with offset < below (all when below is
  // 0).
  void removePendingBelow(TopicId topic, Offset below);
  // Removes the waiting entry of `offset` and its due entry; false when there is none.
  std::optional<PendingRecord> removeWaiting(TopicId topic, const std::string& group,
                                             Offset offset);
  void removeDedup(TopicId topic);
  std::vector<std::string> groupNames(TopicId topic);

  // The batch's cursors on `held` and `pending`: consecutive entries of a batch are mostly
  // near each other (offset order), and LMDB starts a cursor's search on its last page.
  Cursor& held() {
    if (!held_) held_.emplace(txn_, env_.held);
    return *held_;
  }
  Cursor& waiting() {
    if (!waiting_) waiting_.emplace(txn_, env_.pending);
    return *waiting_;
  }
  // Removes the held entry of `key`; false when there is none.
  bool removeHeld(std::string_view key) {
    if (!held().find(key)) return false;
    held().del();
    return true;
  }

  MDB_txn* txn_;
  const Env& env_;
  std::optional<Cursor> held_;
  std::optional<Cursor> waiting_;
  bool spill_;
  // Per group, changes to its pending and scheduled counts.
  struct Counts {
    int64_t pending = 0;
    int64_t scheduled = 0;
    void removed(const PendingRecord& record) {
      --pending;
      if (core::isScheduled(record)) --scheduled;
    }
  };
  std::map<GroupKey, Counts> counts_;
  std::map<TopicId, Offset> floors_;
};

[[noreturn]] void mismatch(const std::string& what) {
  throw ApplyError(what);
}

TopicRecord Applier::requireTopic(TopicId id, const std::string& name, const char* op) {
  std::string_view value;
  if (!getValue(txn_, env_.topics, name, &value)) {
    mismatch(std::string(op) + ": no topic named " + name + " (id " + std::to_string(id) + ")");
  }
  TopicRecord topic = codec::decodeTopic(name, value);
  if (topic.id != id) {
    mismatch(std::string(op) + ": topic " + name + " has id " + std::to_string(topic.id) +
             ", the batch names id " + std::to_string(id));
  }
  return topic;
}

Offset Applier::logFloor(TopicId topic) {
  auto cached = floors_.find(topic);
  if (cached != floors_.end()) return cached->second;
  std::string_view value;
  Offset floor = 0;
  if (getValue(txn_, env_.wlogFloor, keys::u32(topic), &value) && value.size() == 8) {
    floor = keys::readU64(value.data());
  }
  floors_[topic] = floor;
  return floor;
}

void Applier::spill(TopicId topic, Offset offset, std::string_view value) {
  if (!spill_ || offset < logFloor(topic)) return;
  putValue(txn_, env_.wlogSpill, keys::message(topic, offset), value);
}

void Applier::removeMessages(TopicRecord& topic, Offset below) {
  Cursor cursor(txn_, env_.messages);
  for (bool ok = cursor.seek(keys::message(topic.id, topic.firstOffset)); ok; ok = cursor.next()) {
    auto key = keys::parseMessage(cursor.key());
    if (!key || key->topic != topic.id || key->offset >= below) break;
    codec::MessageMeta meta = codec::decodeMessageMeta(cursor.value());
    if (topic.messages == 0 || topic.bytes < meta.accountedBytes) {
      brokenInvariant("topics: stats of topic " + topic.name + " (messages=" +
                      std::to_string(topic.messages) + ", bytes=" + std::to_string(topic.bytes) +
                      ") are below its stored messages at offset " + std::to_string(key->offset));
    }
    spill(topic.id, key->offset, cursor.value());
    cursor.del();
    --topic.messages;
    topic.bytes -= meta.accountedBytes;
  }
  topic.firstOffset = std::max(topic.firstOffset, std::min(below, topic.nextOffset));
}

std::vector<std::string> Applier::groupNames(TopicId topic) {
  std::string prefix = keys::topicPrefix(topic);
  std::vector<std::string> names;
  Cursor cursor(txn_, env_.groups);
  for (bool ok = cursor.seek(prefix); ok && startsWith(cursor.key(), prefix); ok = cursor.next())
    names.emplace_back(cursor.key().substr(prefix.size()));
  return names;
}

void Applier::removePendingBelow(TopicId topic, Offset below) {
  for (const std::string& group : groupNames(topic)) {
    std::string prefix = keys::pendingPrefix(topic, group);
    std::string end = below == 0 ? std::string() : keys::pending(topic, group, below);
    auto removed = static_cast<int64_t>(deletePrefix(txn_, env_.held, prefix, end));
    int64_t scheduled = 0;
    Cursor cursor(txn_, env_.pending);
    for (bool ok = cursor.seek(prefix); ok; ok = cursor.next()) {
      std::string_view key = cursor.key();
      if (!startsWith(key, prefix) || (!end.empty() && key >= end)) break;
      auto parsed = keys::parsePending(key);
      if (!parsed) break;
      PendingRecord record = codec::decodePending(topic, group, parsed->offset, cursor.value());
      if (record.visibleAtMs != core::kParkedMs)
        deleteKey(txn_, env_.due, keys::due(topic, group, record.visibleAtMs, record.offset));
      cursor.del();
      ++removed;
      if (core::isScheduled(record)) --scheduled;
    }
    Counts& counts = counts_[{topic, group}];
    counts.pending -= removed;
    counts.scheduled += scheduled;
  }
}

std::optional<PendingRecord> Applier::removeWaiting(TopicId topic, const std::string& group,
                                                    Offset offset) {
  if (!waiting().find(keys::pending(topic, group, offset))) return std::nullopt;
  PendingRecord old = codec::decodePending(topic, group, offset, waiting().value());
  if (old.visibleAtMs != core::kParkedMs)
    deleteKey(txn_, env_.due, keys::due(topic, group, old.visibleAtMs, offset));
  waiting().del();
  return old;
}

void Applier::removeDedup(TopicId topic) {
  deletePrefix(txn_, env_.dedup, keys::topicPrefix(topic));
  // dedupExpiry is ordered by time, not topic; a full scan is fine for a rare operation.
  Cursor cursor(txn_, env_.dedupExpiry);
  for (bool ok = cursor.first(); ok; ok = cursor.next()) {
    auto key = keys::parseDedupExpiry(cursor.key());
    if (key && key->topic == topic) cursor.del();
  }
}

void Applier::flushCounts() {
  for (const auto& entry : counts_) {
    const GroupKey& key = entry.first;  // Not structured bindings: the lambda below uses them.
    const Counts& delta = entry.second;
    if (delta.pending == 0 && delta.scheduled == 0) continue;
    std::string groupKey = keys::group(key.first, key.second);
    std::string_view value;
    if (!getValue(txn_, env_.groups, groupKey, &value)) continue;  // Deleted in this batch.
    GroupRecord group = codec::decodeGroup(key.first, key.second, value);
    auto add = [&](uint64_t& count, int64_t change, const char* what) {
      if (change < 0 && count < static_cast<uint64_t>(-change)) {
        brokenInvariant(std::string("groups: ") + what + " count of group " + key.second +
                        " (topic id " + std::to_string(key.first) + ") would go below zero");
      }
      count = static_cast<uint64_t>(static_cast<int64_t>(count) + change);
    };
    add(group.pending, delta.pending, "pending");
    add(group.scheduled, delta.scheduled, "scheduled");
    putValue(txn_, env_.groups, groupKey, codec::bytesOf(codec::encodeGroup(group)));
  }
  counts_.clear();
}

void Applier::operator()(const core::CreateTopicOp& op) {
  if (getValue(txn_, env_.topics, op.name, nullptr)) {
    mismatch("create topic: topic " + op.name + " already exists");
  }
  TopicId next = 1;
  std::string_view stored;
  if (getValue(txn_, env_.meta, keys::kNextTopicId, &stored) && stored.size() == 4) {
    next = keys::readU32(stored.data());
  }
  if (op.id < next) {
    mismatch("create topic: id " + std::to_string(op.id) + " of topic " + op.name +
             " was already used (next free id " + std::to_string(next) + ")");
  }
  putValue(txn_, env_.meta, keys::kNextTopicId, keys::u32(op.id + 1));
  TopicRecord topic;
  topic.name = op.name;
  topic.id = op.id;
  topic.settings = op.settings;
  topic.createdMs = op.createdMs;
  storeTopic(topic);
}

void Applier::operator()(const core::DeleteTopicOp& op) {
  flushCounts();
  TopicRecord topic = requireTopic(op.id, op.name, "delete topic");
  removeMessages(topic, topic.nextOffset);
  std::string prefix = keys::topicPrefix(topic.id);
  deletePrefix(txn_, env_.held, prefix);
  deletePrefix(txn_, env_.pending, prefix);
  deletePrefix(txn_, env_.due, prefix);
  deletePrefix(txn_, env_.groups, prefix);
  removeDedup(topic.id);
  deleteKey(txn_, env_.topics, op.name);
}

void Applier::operator()(const core::PurgeTopicOp& op) {
  flushCounts();
  TopicRecord topic = requireTopic(op.id, op.name, "purge topic");
  removeMessages(topic, topic.nextOffset);
  removePendingBelow(topic.id, 0);
  removeDedup(topic.id);
  topic.firstOffset = topic.nextOffset;
  topic.messages = 0;
  topic.bytes = 0;
  storeTopic(topic);
}

void Applier::operator()(const core::AppendOp& op) {
  TopicRecord topic = requireTopic(op.id, op.topic, "append");
  if (op.firstOffset != topic.nextOffset) {
    mismatch("append: topic " + op.topic + " is at offset " + std::to_string(topic.nextOffset) +
             ", the batch appends at " + std::to_string(op.firstOffset));
  }
  // MDB_APPEND needs the key to sort after every key of the database, which holds only while
  // no topic with a higher id has messages.
  bool useAppend = true;
  {
    Cursor cursor(txn_, env_.messages);
    if (cursor.last()) useAppend = cursor.key() < keys::message(topic.id, topic.nextOffset);
  }
  for (const core::AppendedMessage& message : op.messages) {
    if (message.timestampMs < topic.lastTimestampMs) {
      mismatch("append: timestamp " + std::to_string(message.timestampMs) + " at topic " +
               op.topic + " is before the last one (" + std::to_string(topic.lastTimestampMs) +
               ")");
    }
    Offset offset = topic.nextOffset;
    std::string key = keys::message(topic.id, offset);
    MDB_val k = toVal(key);
    // Encoded straight into the page LMDB reserves: no per-message buffer or copy.
    int rc = 0;
    codec::encodeMessageInto(message.timestampMs, message.data, [&](size_t bytes) -> kj::byte* {
      MDB_val v{bytes, nullptr};
      rc = mdb_put(txn_, env_.messages, &k, &v,
                   (useAppend ? MDB_APPEND : MDB_NOOVERWRITE) | MDB_RESERVE);
      return rc == 0 ? static_cast<kj::byte*>(v.mv_data) : nullptr;
    });
    if (rc == MDB_KEYEXIST) {
      mismatch("append: offset " + std::to_string(offset) + " of topic " + topic.name +
               " is already stored");
    }
    if (rc != 0) throw LmdbError(rc, "append message");
    if (topic.messages == 0) topic.firstOffset = offset;
    ++topic.messages;
    topic.bytes += message.data.accountedBytes();
    topic.nextOffset = offset + 1;
    topic.lastTimestampMs = message.timestampMs;
    if (message.dedupExpiresMs > 0 && !message.data.id.empty()) {
      putValue(txn_, env_.dedup, keys::dedup(topic.id, message.data.id),
               codec::bytesOf(codec::encodeDedup({offset, message.dedupExpiresMs})));
      putValue(txn_, env_.dedupExpiry,
               keys::dedupExpiry(static_cast<uint64_t>(message.dedupExpiresMs), topic.id,
                                 message.data.id),
               std::string_view("", 0));
    }
  }
  storeTopic(topic);
}

void Applier::operator()(const core::TrimOp& op) {
  TopicRecord topic = requireTopic(op.id, op.topic, "trim");
  if (op.below > topic.nextOffset) {
    mismatch("trim: topic " + op.topic + " ends before offset " + std::to_string(op.below));
  }
  if (op.below <= topic.firstOffset) return;
  removeMessages(topic, op.below);
  removePendingBelow(topic.id, op.below);
  storeTopic(topic);
}

void Applier::operator()(const core::PutGroupOp& op) {
  flushCounts();
  const GroupRecord& g = op.group;
  std::string key = keys::group(g.topicId, g.name);
  GroupRecord record = g;
  record.pending = 0;
  record.scheduled = 0;
  std::string_view value;
  if (getValue(txn_, env_.groups, key, &value)) {
    GroupRecord stored = codec::decodeGroup(g.topicId, g.name, value);
    record.pending = stored.pending;
    record.scheduled = stored.scheduled;
  }
  putValue(txn_, env_.groups, key, codec::bytesOf(codec::encodeGroup(record)));
}

void Applier::operator()(const core::DeleteGroupOp& op) {
  flushCounts();
  deleteKey(txn_, env_.groups, keys::group(op.topic, op.group));
  deletePrefix(txn_, env_.held, keys::pendingPrefix(op.topic, op.group));
  deletePrefix(txn_, env_.pending, keys::pendingPrefix(op.topic, op.group));
  deletePrefix(txn_, env_.due, keys::duePrefix(op.topic, op.group));
}

void Applier::operator()(const core::ClearPendingOp& op) {
  flushCounts();
  std::string prefix = keys::pendingPrefix(op.topic, op.group);
  auto removed = static_cast<int64_t>(deletePrefix(txn_, env_.held, prefix) +
                                      deletePrefix(txn_, env_.pending, prefix));
  deletePrefix(txn_, env_.due, keys::duePrefix(op.topic, op.group));
  Counts& counts = counts_[{op.topic, op.group}];
  counts.pending -= removed;
  std::string_view value;
  if (getValue(txn_, env_.groups, keys::group(op.topic, op.group), &value))
    counts.scheduled -=
        static_cast<int64_t>(codec::decodeGroup(op.topic, op.group, value).scheduled);
}

// A held entry lives in `held` alone; a waiting one in `pending` and `due`. The common path,
// a first delivery and its ack, is one write each.
void Applier::operator()(const core::PutPendingOp& op) {
  std::string key = keys::pending(op.topic, op.group, op.offset);
  PendingRecord record{op.topic,      op.group,       op.offset,
                       op.deliveries, op.visibleAtMs, static_cast<uint8_t>(op.cause)};
  auto encoded = codec::encodePending(record);
  std::string_view value = codec::bytesOf(encoded);
  Counts& counts = counts_[{op.topic, op.group}];
  if (op.visibleAtMs == 0) {
    if (auto old = removeWaiting(op.topic, op.group, op.offset)) counts.removed(*old);
    if (held().put(key, value, MDB_NOOVERWRITE)) {
      ++counts.pending;
    } else {
      held().put(key, value);
    }
    return;
  }
  if (removeHeld(key)) --counts.pending;
  if (!waiting().put(key, value, MDB_NOOVERWRITE)) {
    PendingRecord old = codec::decodePending(op.topic, op.group, op.offset, waiting().value());
    if (old.visibleAtMs != core::kParkedMs)
      deleteKey(txn_, env_.due, keys::due(op.topic, op.group, old.visibleAtMs, op.offset));
    counts.removed(old);
    waiting().put(key, value);
  }
  if (op.visibleAtMs != core::kParkedMs)
    putValue(txn_, env_.due, keys::due(op.topic, op.group, op.visibleAtMs, op.offset), value);
  ++counts.pending;
  if (core::isScheduled(record)) ++counts.scheduled;
}

void Applier::operator()(const core::RemovePendingOp& op) {
  // Trimmed or purged meanwhile: nothing to remove.
  if (removeHeld(keys::pending(op.topic, op.group, op.offset))) {
    counts_[{op.topic, op.group}].pending -= 1;
  } else if (auto old = removeWaiting(op.topic, op.group, op.offset)) {
    counts_[{op.topic, op.group}].removed(*old);
  }
}

void Applier::operator()(const core::ExpireDedupOp& op) {
  uint64_t now = static_cast<uint64_t>(std::max<int64_t>(op.nowMs, 0));
  Cursor cursor(txn_, env_.dedupExpiry);
  for (bool ok = cursor.first(); ok; ok = cursor.next()) {
    auto key = keys::parseDedupExpiry(cursor.key());
    if (!key) continue;  // Env::check reports it.
    if (key->expiresMs > now) break;
    // The id may have been published again after this entry expired; keep the newer entry.
    std::string dedupKey = keys::dedup(key->topic, key->id);
    std::string_view value;
    if (getValue(txn_, env_.dedup, dedupKey, &value) &&
        codec::decodeDedup(value).expiresMs <= op.nowMs) {
      deleteKey(txn_, env_.dedup, dedupKey);
    }
    cursor.del();
  }
  Cursor txns(txn_, env_.txnExpiry);
  for (bool ok = txns.first(); ok; ok = txns.next()) {
    auto key = keys::parseTxnExpiry(txns.key());
    if (!key) continue;  // Env::check reports it.
    if (key->expiresMs > now) break;
    // As for dedup ids: an id applied again after this entry expired keeps its newer record.
    std::string_view value;
    if (getValue(txn_, env_.txns, key->id, &value) &&
        codec::decodeTxn(value).expiresMs <= op.nowMs) {
      deleteKey(txn_, env_.txns, key->id);
    }
    txns.del();
  }
}

void Applier::operator()(const core::PutTxnOp& op) {
  core::TxnEntry entry{op.fingerprint, op.expiresMs, op.outputs};
  std::string_view old;
  if (getValue(txn_, env_.txns, op.id, &old)) {
    // Replaced after its window: its expiry entry must not remove the new record's.
    int64_t oldExpiry = codec::decodeTxn(old).expiresMs;
    deleteKey(txn_, env_.txnExpiry,
              keys::txnExpiry(static_cast<uint64_t>(std::max<int64_t>(oldExpiry, 0)), op.id));
  }
  putValue(txn_, env_.txns, op.id, codec::bytesOf(codec::encodeTxn(entry)));
  putValue(txn_, env_.txnExpiry,
           keys::txnExpiry(static_cast<uint64_t>(std::max<int64_t>(op.expiresMs, 0)), op.id), {});
}

void Applier::operator()(const core::SetSubjectsOp& op) {
  TopicRecord topic = requireTopic(op.id, op.topic, "set subjects");
  topic.settings.subjects = op.subjects;
  storeTopic(topic);
}

void Applier::operator()(const core::PutPrincipalOp& op) {
  putValue(txn_, env_.auth, keys::principal(op.principal.name),
           codec::bytesOf(codec::encodePrincipal(op.principal)));
}

void Applier::operator()(const core::DeletePrincipalOp& op) {
  deleteKey(txn_, env_.auth, keys::principal(op.name));
}

void Applier::operator()(const core::PutCredentialOp& op) {
  putValue(txn_, env_.auth, keys::credential(op.credential.id),
           codec::bytesOf(codec::encodeCredential(op.credential)));
  std::string_view stored;
  uint64_t next = 1;
  if (getValue(txn_, env_.meta, keys::kNextCredentialId, &stored) && stored.size() == 8)
    next = keys::readU64(stored.data());
  if (op.credential.id >= next) {
    std::string value;
    keys::appendU64(value, op.credential.id + 1);
    putValue(txn_, env_.meta, keys::kNextCredentialId, value);
  }
}

void Applier::operator()(const core::RevokeCredentialsOp& op) {
  for (uint64_t id : op.ids)
    deleteKey(txn_, env_.auth, keys::credential(id));
}

void Applier::operator()(const core::BeginEpochOp& op) {
  std::string value;
  keys::appendU64(value, op.epoch);
  value += op.leader;
  putValue(txn_, env_.meta, keys::kLeaderEpoch, value);
  putValue(txn_, env_.meta, keys::kClusterId, op.cluster);
}

}  // namespace

void applyBatch(MDB_txn* txn, const Env& env, const core::WriteBatch& batch) {
  Applier applier(txn, env);
  for (const core::WriteOp& op : batch.ops)
    applier.apply(op);
  applier.flushCounts();
}

}  // namespace sluice::store
