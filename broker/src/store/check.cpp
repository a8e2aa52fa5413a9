#include "store/store.h"

#include <kj/exception.h>

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "store/codec.h"
#include "store/keys.h"
#include "store/lmdb_util.h"

// Env::check: an offline consistency check of every database (`sluiced --check`).

namespace sluice::store {
namespace {

// "<db>: <what> (topic=..., offset=...)"
Status violation(const char* db, const std::string& what, const std::string& topic = {},
                 std::optional<Offset> offset = std::nullopt) {
  std::string message = std::string(db) + ": " + what;
  if (!topic.empty() || offset) {
    message += " (";
    if (!topic.empty()) message += "topic=" + topic;
    if (offset)
      message += std::string(topic.empty() ? "" : ", ") + "offset=" + std::to_string(*offset);
    message += ")";
  }
  return Status(Code::kStorageFailed, message);
}

// Runs `decode`, turning a decoding exception into a violation.
template <typename Decode>
Status decodes(const char* db, const std::string& topic, std::optional<Offset> offset,
               Decode&& decode) {
  try {
    decode();
    return Status();
  } catch (const kj::Exception& e) {
    return violation(db, std::string("record does not decode: ") + e.getDescription().cStr(), topic,
                     offset);
  }
}

class Checker {
 public:
  Checker(const Env& env, MDB_txn* txn) : env_(env), txn_(txn) {}

  Status run() {
    for (Status (Checker::*step)() :
         {&Checker::meta, &Checker::topics, &Checker::messages, &Checker::groups, &Checker::pending,
          &Checker::due, &Checker::dedup, &Checker::txns, &Checker::auth}) {
      Status status = (this->*step)();
      if (!status.ok()) return status;
    }
    return Status();
  }

 private:
  std::string nameOf(TopicId id) const {
    auto it = topics_.find(id);
    return it != topics_.end() ? it->second.name : "#" + std::to_string(id);
  }

  Status meta() {
    std::string_view value;
    if (!getValue(txn_, env_.meta, keys::kFormatVersion, &value)) {
      return violation("meta", "format_version is missing");
    }
    if (value.size() != 4 || keys::readU32(value.data()) != keys::kCurrentFormatVersion) {
      return violation("meta",
                       "format_version is not " + std::to_string(keys::kCurrentFormatVersion));
    }
    if (getValue(txn_, env_.meta, keys::kNextTopicId, &value)) {
      if (value.size() != 4) return violation("meta", "next_topic_id is not 4 bytes");
      nextTopicId_ = keys::readU32(value.data());
    }
    return Status();
  }

  Status topics() {
    Cursor cursor(txn_, env_.topics);
    for (bool ok = cursor.first(); ok; ok = cursor.next()) {
      std::string name(cursor.key());
      TopicRecord topic;
      Status decoded = decodes("topics", name, std::nullopt,
                               [&] { topic = codec::decodeTopic(name, cursor.value()); });
      if (!decoded.ok()) return decoded;
      if (topics_.count(topic.id) != 0) {
        return violation(
            "topics",
            "id " + std::to_string(topic.id) + " is also used by " + topics_[topic.id].name, name);
      }
      if (topic.id == 0 || topic.id >= nextTopicId_) {
        return violation("topics",
                         "id " + std::to_string(topic.id) +
                             " is not in [1, next_topic_id=" + std::to_string(nextTopicId_) + ")",
                         name);
      }
      if (topic.firstOffset == 0 || topic.firstOffset > topic.nextOffset) {
        return violation("topics",
                         "firstOffset " + std::to_string(topic.firstOffset) +
                             " is not in [1, nextOffset=" + std::to_string(topic.nextOffset) + "]",
                         name);
      }
      if (topic.messages == 0 && topic.firstOffset != topic.nextOffset) {
        return violation("topics", "empty topic with firstOffset != nextOffset", name);
      }
      topics_.emplace(topic.id, std::move(topic));
    }
    return Status();
  }

  Status messages() {
    struct Seen {
      uint64_t count = 0;
      uint64_t bytes = 0;
      int64_t lastTimestampMs = 0;
    };
    std::map<TopicId, Seen> seen;
    Cursor cursor(txn_, env_.messages);
    for (bool ok = cursor.first(); ok; ok = cursor.next()) {
      auto key = keys::parseMessage(cursor.key());
      if (!key)
        return violation("messages",
                         "malformed key of " + std::to_string(cursor.key().size()) + " bytes");
      auto it = topics_.find(key->topic);
      if (it == topics_.end()) {
        return violation("messages", "message of an unknown topic id", nameOf(key->topic),
                         key->offset);
      }
      const TopicRecord& topic = it->second;
      StoredMessageData message;
      Status decoded = decodes("messages", topic.name, key->offset, [&] {
        message = codec::decodeMessage(key->offset, cursor.value());
      });
      if (!decoded.ok()) return decoded;
      if (key->offset < topic.firstOffset || key->offset >= topic.nextOffset) {
        return violation("messages",
                         "offset is not in [firstOffset=" + std::to_string(topic.firstOffset) +
                             ", nextOffset=" + std::to_string(topic.nextOffset) + ")",
                         topic.name, key->offset);
      }
      Seen& s = seen[key->topic];
      if (s.count == 0 && key->offset != topic.firstOffset) {
        return violation(
            "messages",
            "first retained message is not at firstOffset=" + std::to_string(topic.firstOffset),
            topic.name, key->offset);
      }
      if (message.timestampMs < s.lastTimestampMs) {
        return violation("messages", "timestamp goes backwards", topic.name, key->offset);
      }
      if (message.timestampMs > topic.lastTimestampMs) {
        return violation("messages", "timestamp is after the topic's lastTimestampMs", topic.name,
                         key->offset);
      }
      s.lastTimestampMs = message.timestampMs;
      s.count += 1;
      s.bytes += message.data.accountedBytes();
    }
    for (const auto& [id, topic] : topics_) {
      const Seen& s = seen[id];
      if (s.count != topic.messages || s.bytes != topic.bytes) {
        return violation("messages",
                         "found " + std::to_string(s.count) + " messages of " +
                             std::to_string(s.bytes) + " bytes; the topic record says " +
                             std::to_string(topic.messages) + " of " + std::to_string(topic.bytes),
                         topic.name);
      }
    }
    return Status();
  }

  Status groups() {
    Cursor cursor(txn_, env_.groups);
    for (bool ok = cursor.first(); ok; ok = cursor.next()) {
      auto key = keys::parseGroup(cursor.key());
      if (!key) return violation("groups", "malformed key");
      if (topics_.count(key->topic) == 0) {
        return violation("groups", "group \"" + key->name + "\" of an unknown topic id",
                         nameOf(key->topic));
      }
      GroupRecord group;
      Status decoded = decodes("groups", nameOf(key->topic), std::nullopt, [&] {
        group = codec::decodeGroup(key->topic, key->name, cursor.value());
      });
      if (!decoded.ok()) return decoded;
      groups_.emplace(std::make_pair(key->topic, key->name), group.pending);
      scheduledCounted_.emplace(std::make_pair(key->topic, key->name), group.scheduled);
    }
    return Status();
  }

  // Held and waiting entries: known topic and group, below nextOffset, decodable. A held entry
  // is at visibleAtMs 0 and not also waiting; a waiting one is later and has its due entry,
  // unless it is parked (never due).
  Status pending() {
    for (MDB_dbi dbi : {env_.held, env_.pending}) {
      Cursor cursor(txn_, dbi);
      for (bool ok = cursor.first(); ok; ok = cursor.next()) {
        Status status = entry(dbi == env_.held, cursor);
        if (!status.ok()) return status;
      }
    }
    for (const auto& [group, count] : groups_) {
      uint64_t seen = pendingSeen_[group];
      if (seen != count) {
        return violation("groups",
                         "group \"" + group.second + "\" counts " + std::to_string(count) +
                             " pending entries; found " + std::to_string(seen),
                         nameOf(group.first));
      }
      uint64_t scheduled = scheduledSeen_[group];
      if (scheduled != scheduledCounted_[group]) {
        return violation("groups",
                         "group \"" + group.second + "\" counts " +
                             std::to_string(scheduledCounted_[group]) +
                             " scheduled entries; found " + std::to_string(scheduled),
                         nameOf(group.first));
      }
    }
    return Status();
  }

  Status entry(bool held, const Cursor& cursor) {
    const char* db = held ? "held" : "pending";
    auto key = keys::parsePending(cursor.key());
    if (!key) return violation(db, "malformed key");
    auto it = topics_.find(key->topic);
    if (it == topics_.end()) {
      return violation(db, "entry of an unknown topic id", nameOf(key->topic), key->offset);
    }
    const std::string& topic = it->second.name;
    if (groups_.count(std::make_pair(key->topic, key->group)) == 0) {
      return violation(db, "entry of unknown group \"" + key->group + "\"", topic, key->offset);
    }
    if (key->offset >= it->second.nextOffset) {
      return violation(db,
                       "offset is not below nextOffset=" + std::to_string(it->second.nextOffset),
                       topic, key->offset);
    }
    PendingRecord record;
    Status decoded = decodes(db, topic, key->offset, [&] {
      record = codec::decodePending(key->topic, key->group, key->offset, cursor.value());
    });
    if (!decoded.ok()) return decoded;
    if (held != (record.visibleAtMs == 0)) {
      return violation(db,
                       std::string(held ? "held entry" : "waiting entry") + " of group \"" +
                           key->group + "\" has visibleAtMs=" + std::to_string(record.visibleAtMs),
                       topic, key->offset);
    }
    if (held && getValue(txn_, env_.pending, cursor.key(), nullptr)) {
      return violation("held", "entry of group \"" + key->group + "\" is also waiting", topic,
                       key->offset);
    }
    std::string_view due;
    const bool parked = record.visibleAtMs == core::kParkedMs;
    if (parked &&
        getValue(txn_, env_.due, keys::due(key->topic, key->group, record.visibleAtMs, key->offset),
                 nullptr)) {
      return violation("due", "a parked entry of group \"" + key->group + "\" has a due entry",
                       topic, key->offset);
    }
    if (!held && !parked &&
        (!getValue(txn_, env_.due,
                   keys::due(key->topic, key->group, record.visibleAtMs, key->offset), &due) ||
         due != cursor.value())) {
      return violation("due",
                       "no due entry matching the pending entry of group \"" + key->group +
                           "\" (visibleAtMs=" + std::to_string(record.visibleAtMs) + ")",
                       topic, key->offset);
    }
    ++pendingSeen_[{key->topic, key->group}];
    if (!held && core::isScheduled(record)) ++scheduledSeen_[{key->topic, key->group}];
    if (!held && !parked) ++waiting_;
    return Status();
  }

  // Every due entry has its waiting entry (the reverse was checked above).
  Status due() {
    Cursor cursor(txn_, env_.due);
    uint64_t entries = 0;
    for (bool ok = cursor.first(); ok; ok = cursor.next()) {
      auto key = keys::parseDue(cursor.key());
      if (!key) return violation("due", "malformed key");
      ++entries;
    }
    if (entries != waiting_) {
      return violation("due", std::to_string(entries) + " entries for " + std::to_string(waiting_) +
                                  " waiting entries");
    }
    return Status();
  }

  Status dedup() {
    Cursor cursor(txn_, env_.dedup);
    for (bool ok = cursor.first(); ok; ok = cursor.next()) {
      auto key = keys::parseDedup(cursor.key());
      if (!key) return violation("dedup", "malformed key");
      auto it = topics_.find(key->topic);
      if (it == topics_.end())
        return violation("dedup", "entry of an unknown topic id", nameOf(key->topic));
      codec::DedupEntry entry;
      Status decoded = decodes("dedup", it->second.name, std::nullopt,
                               [&] { entry = codec::decodeDedup(cursor.value()); });
      if (!decoded.ok()) return decoded;
      if (entry.offset >= it->second.nextOffset) {
        return violation("dedup", "id \"" + key->id + "\" names an offset not below nextOffset",
                         it->second.name, entry.offset);
      }
    }
    Cursor expiry(txn_, env_.dedupExpiry);
    for (bool ok = expiry.first(); ok; ok = expiry.next()) {
      auto key = keys::parseDedupExpiry(expiry.key());
      if (!key) return violation("dedupExpiry", "malformed key");
      if (topics_.count(key->topic) == 0) {
        return violation("dedupExpiry", "entry of an unknown topic id", nameOf(key->topic));
      }
    }
    return Status();
  }

  // Every transaction record decodes and has exactly its one expiry entry.
  Status txns() {
    uint64_t records = 0;
    Cursor cursor(txn_, env_.txns);
    for (bool ok = cursor.first(); ok; ok = cursor.next()) {
      std::string id(cursor.key());
      core::TxnEntry entry;
      Status decoded =
          decodes("txns", {}, std::nullopt, [&] { entry = codec::decodeTxn(cursor.value()); });
      if (!decoded.ok()) return decoded;
      std::string_view none;
      std::string expiryKey =
          keys::txnExpiry(static_cast<uint64_t>(std::max<int64_t>(entry.expiresMs, 0)), id);
      if (!getValue(txn_, env_.txnExpiry, expiryKey, &none)) {
        return violation("txns", "transaction \"" + id + "\" has no expiry entry");
      }
      ++records;
    }
    uint64_t expiries = 0;
    Cursor expiry(txn_, env_.txnExpiry);
    for (bool ok = expiry.first(); ok; ok = expiry.next()) {
      if (!keys::parseTxnExpiry(expiry.key())) return violation("txnExpiry", "malformed key");
      ++expiries;
    }
    if (expiries != records) {
      return violation("txnExpiry", std::to_string(expiries) + " entries for " +
                                        std::to_string(records) + " transactions");
    }
    return Status();
  }

  // Principals and credentials decode under their keys; every credential's principal exists
  // and its id is below the next credential id.
  Status auth() {
    std::set<std::string> principals;
    std::vector<CredentialRecord> credentials;
    Cursor cursor(txn_, env_.auth);
    for (bool ok = cursor.first(); ok; ok = cursor.next()) {
      std::string_view key = cursor.key();
      if (key.size() > 1 && key[0] == keys::kPrincipalTag) {
        PrincipalRecord principal;
        Status decoded = decodes("auth", {}, std::nullopt,
                                 [&] { principal = codec::decodePrincipal(cursor.value()); });
        if (!decoded.ok()) return decoded;
        if (principal.name != key.substr(1))
          return violation("auth", "principal record under another name's key");
        principals.insert(principal.name);
      } else if (key.size() == 9 && key[0] == keys::kCredentialTag) {
        CredentialRecord credential;
        Status decoded = decodes("auth", {}, std::nullopt,
                                 [&] { credential = codec::decodeCredential(cursor.value()); });
        if (!decoded.ok()) return decoded;
        if (credential.id != keys::readU64(key.data() + 1))
          return violation("auth", "credential record under another id's key");
        credentials.push_back(std::move(credential));
      } else {
        return violation("auth", "malformed key");
      }
    }
    uint64_t next = 1;
    std::string_view value;
    if (getValue(txn_, env_.meta, keys::kNextCredentialId, &value) && value.size() == 8)
      next = keys::readU64(value.data());
    for (const CredentialRecord& credential : credentials) {
      if (principals.count(credential.principal) == 0) {
        return violation("auth", "credential " + std::to_string(credential.id) +
                                     " of a missing principal \"" + credential.principal + "\"");
      }
      if (credential.id >= next) {
        return violation("auth", "credential " + std::to_string(credential.id) +
                                     " is not below next_credential_id " + std::to_string(next));
      }
    }
    return Status();
  }

  const Env& env_;
  MDB_txn* txn_;
  uint32_t nextTopicId_ = 1;
  std::map<TopicId, TopicRecord> topics_;
  std::map<std::pair<TopicId, std::string>, uint64_t> groups_;       // -> its pending count
  std::map<std::pair<TopicId, std::string>, uint64_t> pendingSeen_;  // held and waiting
  std::map<std::pair<TopicId, std::string>, uint64_t> scheduledCounted_;
  std::map<std::pair<TopicId, std::string>, uint64_t> scheduledSeen_;
  uint64_t waiting_ = 0;
};

}  // namespace

Status Env::check() const {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn);
  if (rc != 0) return lmdbStatus(rc, "check: begin read transaction");
  Status status;
  try {
    status = Checker(*this, txn).run();
  } catch (const LmdbError& e) {
    status = Status(Code::kStorageFailed, "check: " + e.status().message());
  }
  mdb_txn_abort(txn);
  return status;
}

}  // namespace sluice::store
